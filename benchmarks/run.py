"""Training and inference speed of convolab against PyTorch and Keras/TensorFlow, side by side.

    python benchmarks/run.py                      # the three lesson models, batch 32 and 128
    python benchmarks/run.py --models resnet20,mobilenet,vgg,inception   # the zoo's architectures
    python benchmarks/run.py --markdown out.md --json out.json
    python benchmarks/run.py --scaling            # convolab's epoch time against batch and image size
    python benchmarks/run.py --profile            # where convolab's time goes, per op
    python benchmarks/run.py --device gpu         # convolab on CuPy against PyTorch eager on CUDA

Every (framework, model, batch size) runs in its own subprocess, so peak memory is that
framework's alone, on identical data: the same seeded float32 images and labels for all
(NCHW copies for PyTorch, made before any timing). Each run trains one warm-up pass on
2,048 images, then times full epochs (60,000 images for the MNIST models, 50,000 for
LeNet) with Adam and shuffling, then inference passes over 50,000 images at batch 128,
and reports the median of --repeat (default 3) of each.
The zoo's architectures (``resnet20``, ``mobilenet``, ``vgg``, ``inception``: functional models with
BatchNormalization, 32x32x3 images) are timed on --samples images (default 4,096) and scaled to a
50,000-image epoch. Keras runs the very model convolab builds, loaded from the Keras 3 ``.keras``
file convolab writes; PyTorch runs its twin from ``zoo_torch.py`` (same layers and parameter counts,
checked by ``zoo_params.py``). All three use sparse cross-entropy on the softmax output (PyTorch on
the logits, the same math) and Adam.
A peer that is not installed is reported as missing (pip install torch==2.13.0;
pip install tensorflow-cpu); neither is a convolab dependency.

With ``--device gpu`` convolab runs on CuPy (``backend.set_device('gpu')``: its fit copies the
whole training set to the GPU once) and PyTorch eager on CUDA with the whole dataset moved to
the GPU before timing; Keras/TensorFlow is left out. Each timing ends after the GPU has
finished (PyTorch: ``torch.cuda.synchronize``; convolab's fit and predict return host values). Run on a quiet machine:
anything else loading the cores makes every figure meaningless.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from peers import SHAPES, keras_style_model, torch_model, torch_predict, torch_train_epoch  # noqa: E402

EPOCH_SIZE = {"simple": 60000, "multi": 60000, "lenet": 50000}
ZOO = ("resnet20", "mobilenet", "vgg", "inception")
for _name in ZOO:
    SHAPES[_name] = (32, 32, 3)
    EPOCH_SIZE[_name] = 50000
#: images timed for a zoo model unless --samples says otherwise (the epoch is scaled from them)
ZOO_SAMPLES = 4096
FRAMEWORKS = ("convolab", "torch", "keras")


def make_data(name, n, input_shape=None):
    h, w, c = input_shape or SHAPES[name]
    rng = np.random.default_rng(0)
    x = rng.random((n, h, w, c), dtype=np.float32)
    y = rng.integers(0, 10, n).astype(np.int64)
    return x, y


def _zoo_convolab(name):
    from convolab import keras, zoo

    model = zoo.get(name)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["acc"])
    return model


def _zoo_keras(name, keras_file):
    import keras

    model = keras.saving.load_model(keras_file, compile=False)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["acc"])
    return model


def write_keras_file(name, folder):
    """The zoo model as convolab writes it in Keras 3's ``.keras`` format (the Keras peer loads it)."""
    from convolab import keras

    keras.utils.set_random_seed(0)
    path = os.path.join(folder, f"{name}.keras")
    _zoo_convolab(name).save(path)
    return path


def convolab_model(name, input_shape):
    """The benchmark's convolab model (the profile uses it too)."""
    from convolab import keras

    return keras_style_model(keras, name, input_shape)


def worker(framework, name, batch, samples, infer, input_shape, repeat=1, device="cpu", keras_file=None):
    """Run one measurement in this process; print one JSON line (the median of ``repeat`` timed epochs)."""
    if framework == "convolab" and device == "gpu":
        import convolab

        convolab.backend.set_device("gpu")
    x, y = make_data(name, max(samples, infer), input_shape)
    xt, yt, xi = x[:samples], y[:samples], x[:infer]
    shape = input_shape or SHAPES[name]
    if framework in ("convolab", "keras"):  # the same Keras-style code times both
        if framework == "keras":
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
            import keras
        else:
            from convolab import keras

        keras.utils.set_random_seed(0)
        if name in ZOO:
            model = _zoo_keras(name, keras_file) if framework == "keras" else _zoo_convolab(name)
        else:
            model = keras_style_model(keras, name, shape)
        model.fit(xt[:2048], yt[:2048], batch_size=batch, epochs=1, verbose=0)
        train = _median_time(lambda: model.fit(xt, yt, batch_size=batch, epochs=1, verbose=0), repeat)
        model.predict(xi[:1024], batch_size=128, verbose=0)  # warm-up
        pred = _median_time(lambda: model.predict(xi, batch_size=128, verbose=0), repeat)
    else:
        import torch

        torch.manual_seed(0)
        dev = "cuda" if device == "gpu" else "cpu"
        xt_ = torch.from_numpy(np.ascontiguousarray(xt.transpose(0, 3, 1, 2))).to(dev)
        yt_ = torch.from_numpy(yt).to(dev)
        xi_ = torch.from_numpy(np.ascontiguousarray(xi.transpose(0, 3, 1, 2))).to(dev)
        if name in ZOO:
            from zoo_torch import BUILDERS

            model = BUILDERS[name]().to(dev)
        else:
            model = torch_model(name, shape).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
        torch_train_epoch(model, xt_[:2048], yt_[:2048], batch, opt)
        train = float(np.median([torch_train_epoch(model, xt_, yt_, batch, opt) for _ in range(repeat)]))
        model.eval()
        torch_predict(model, xi_[:1024], 128)  # warm-up, as for the others
        pred = float(np.median([torch_predict(model, xi_, 128) for _ in range(repeat)]))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "framework": framework,
                "model": name,
                "batch": batch,
                "samples": samples,
                "repeat": repeat,
                "device": device,
                "train_s": train,
                "epoch_s": train * EPOCH_SIZE[name] / samples,
                "infer_img_s": infer / pred,
                "peak_mb": peak_mb,
            }
        )
    )


def _median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def run_one(
    framework, name, batch, samples, infer, input_shape=None, timeout=1800, repeat=1, device="cpu", keras_file=None
):
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        framework,
        name,
        str(batch),
        str(samples),
        str(infer),
        "--repeat",
        str(repeat),
        "--device",
        device,
    ]
    if keras_file:
        cmd += ["--keras-file", keras_file]
    if input_shape:
        cmd += ["--input-shape", ",".join(map(str, input_shape))]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"framework": framework, "model": name, "batch": batch, "error": f"over {timeout} s"}
    for line in reversed(proc.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"framework": framework, "model": name, "batch": batch, "error": err[:200]}


def available(framework):
    mod = {"convolab": "convolab", "torch": "torch", "keras": "tensorflow"}[framework]
    import importlib.util

    return importlib.util.find_spec(mod) is not None


def table(results, models, batches, frameworks):
    by = {(r["framework"], r["model"], r["batch"]): r for r in results}
    peers = [f for f in frameworks if f != "convolab"]
    head = ["model", "batch"] + [f"{f} s/epoch" for f in frameworks] + [f"{p}/convolab" for p in peers]
    head += [f"{f} infer img/s" for f in frameworks] + [f"{f} peak MB" for f in frameworks]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in models:
        for b in batches:
            row = [m, str(b)]
            mine = by.get(("convolab", m, b), {})
            for f in frameworks:
                r = by.get((f, m, b), {})
                row.append(f"{r['epoch_s']:.2f}" if "epoch_s" in r else r.get("error", "n/a")[:40])
            for p in peers:
                r = by.get((p, m, b), {})
                row.append(f"{r['epoch_s'] / mine['epoch_s']:.2f}x" if "epoch_s" in r and "epoch_s" in mine else "n/a")
            for f in frameworks:
                r = by.get((f, m, b), {})
                row.append(f"{r['infer_img_s']:,.0f}" if "infer_img_s" in r else "n/a")
            for f in frameworks:
                r = by.get((f, m, b), {})
                row.append(f"{r['peak_mb']:.0f}" if "peak_mb" in r else "n/a")
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="simple,multi,lenet")
    ap.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    ap.add_argument("--batch-sizes", default="32,128")
    ap.add_argument("--samples", type=int, default=0, help="training images timed (default: a full epoch)")
    ap.add_argument("--infer", type=int, default=50000, help="images for the inference timing")
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="timed epochs (and inference passes) per run; the median is reported (default 3)",
    )
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    ap.add_argument("--scaling", action="store_true", help="convolab epoch time against batch size and image size")
    ap.add_argument("--profile", action="store_true", help="per-op profile of convolab's training step")
    ap.add_argument(
        "--device",
        choices=("cpu", "gpu"),
        default="cpu",
        help="gpu: convolab on CuPy against PyTorch eager on CUDA (Keras left out)",
    )
    ap.add_argument("--timeout", type=int, default=1800, help="seconds allowed to each run")
    ap.add_argument(
        "--worker", nargs=5, metavar=("FRAMEWORK", "MODEL", "BATCH", "SAMPLES", "INFER"), help=argparse.SUPPRESS
    )
    ap.add_argument("--input-shape", help=argparse.SUPPRESS)
    ap.add_argument("--keras-file", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    shape = tuple(int(v) for v in args.input_shape.split(",")) if args.input_shape else None
    if args.worker:
        f, m, b, s, i = args.worker
        worker(f, m, int(b), int(s), int(i), shape, args.repeat, args.device, args.keras_file)
        return 0
    if args.profile:
        from profile_ops import profile_all

        print(profile_all())
        return 0
    if args.scaling:
        from scaling import scaling_tables

        text = scaling_tables(run_one)
        print(text)
        if args.markdown:
            with open(args.markdown, "w") as fh:
                fh.write(text + "\n")
        return 0
    models = args.models.split(",")
    batches = [int(b) for b in args.batch_sizes.split(",")]
    frameworks = [f for f in args.frameworks.split(",") if f]
    if args.device == "gpu":
        frameworks = [f for f in frameworks if f != "keras"]  # TensorFlow's GPU build is not a peer here
    unknown = [m for m in models if m not in EPOCH_SIZE]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(EPOCH_SIZE)}")
    results = []
    tmp = tempfile.mkdtemp(prefix="convolab-bench-")
    keras_files = {m: write_keras_file(m, tmp) for m in models if m in ZOO and "keras" in frameworks}
    for m in models:
        samples = args.samples or (ZOO_SAMPLES if m in ZOO else EPOCH_SIZE[m])
        for b in batches:
            for f in frameworks:
                if not available(f):
                    results.append({"framework": f, "model": m, "batch": b, "error": "not installed"})
                    continue
                r = run_one(
                    f,
                    m,
                    b,
                    samples,
                    args.infer,
                    repeat=args.repeat,
                    device=args.device,
                    timeout=args.timeout,
                    keras_file=keras_files.get(m),
                )
                print(json.dumps(r), file=sys.stderr, flush=True)
                results.append(r)
    text = table(results, models, batches, frameworks)
    print(text)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
