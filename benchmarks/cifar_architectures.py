"""ResNet-20 with augmentation against the lesson's LeNet on the CIFAR-10 subset, in convolab and Keras 3.

    python benchmarks/cifar_architectures.py                       # convolab and Keras, seed 0
    python benchmarks/cifar_architectures.py --frameworks convolab --epochs 30 --seeds 0,1

Data: ``../shared/data/cifar10_subset/cifar10_subset.npz`` (5,085 training and 1,017 test images
of the real CIFAR-10; see that folder's README), scaled to [0, 1]. Two models, the same in both
frameworks:

- ``lenet``: the lesson's LeNet (``convolab.zoo.lenet``), Adam, sparse cross-entropy.
- ``resnet20+aug``: ``RandomFlip('horizontal')`` and ``RandomTranslation(0.1, 0.1)`` (active in
  training only) in front of ``convolab.zoo.resnet20()``. Keras trains the very network convolab
  built, with the same initial weights: convolab writes it as a Keras 3 ``.keras`` file and Keras
  loads it; the augmentation layers are Keras's own.

Each run: the same epochs (default 20), batch size (64), optimizer (Adam, learning rate 1e-3, then
1e-4 from epoch 15 on: without the drop the last epochs' test accuracy swings by 5 points from one
epoch to the next) and seed; the test set's accuracy after the last epoch is reported, with the
seconds the run took. A summary gives each framework's mean over the seeds. The subset is a
tenth of CIFAR-10, so compare the systems with each other, never with published CIFAR-10 figures.
Keras comes from ``pip install tensorflow-cpu`` (not a convolab dependency).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1] / "shared" / "data"


def load(data_dir):
    with np.load(Path(data_dir) / "cifar10_subset" / "cifar10_subset.npz", allow_pickle=False) as d:
        x_train, y_train, x_test, y_test = (d[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    return (
        x_train.astype(np.float32) / 255.0,
        y_train.astype(np.int64),
        x_test.astype(np.float32) / 255.0,
        y_test.astype(np.int64),
    )


def write_resnet(path, seed):
    """ResNet-20 as convolab initialises it for ``seed``, saved as a Keras 3 ``.keras`` file."""
    from convolab import keras, zoo

    keras.utils.set_random_seed(seed)
    zoo.resnet20().save(path)


def build(keras, model_name, seed, resnet_file):
    """The model in ``keras`` (``keras`` or ``convolab.keras``), compiled the same way in both."""
    keras.utils.set_random_seed(seed)
    L = keras.layers
    if model_name == "lenet":
        model = keras.Sequential(
            [
                keras.Input(shape=(32, 32, 3)),
                L.Conv2D(6, 5, activation="relu"),
                L.MaxPooling2D(2, 2),
                L.Conv2D(16, 5, activation="relu"),
                L.MaxPooling2D(2, 2),
                L.Flatten(),
                L.Dense(120, activation="relu"),
                L.Dense(84, activation="relu"),
                L.Dense(10, activation="softmax"),
            ]
        )
    else:
        base = keras.models.load_model(resnet_file, compile=False)
        inputs = keras.Input(shape=(32, 32, 3))
        x = L.RandomFlip("horizontal", seed=seed)(inputs)
        x = L.RandomTranslation(0.1, 0.1, seed=seed + 1)(x)
        model = keras.Model(inputs, base(x))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["acc"])
    return model


def worker(framework, model_name, seed, epochs, batch_size, data_dir, resnet_file, drop_at=0):
    if framework == "keras":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import keras
    else:
        from convolab import keras
    x_train, y_train, x_test, y_test = load(data_dir)
    model = build(keras, model_name, seed, resnet_file)
    callbacks = []
    if drop_at:  # the step schedule ResNets train with: the learning rate / 10 from epoch `drop_at` on
        callbacks.append(keras.callbacks.LearningRateScheduler(lambda epoch, lr: 1e-4 if epoch >= drop_at else 1e-3))
    t0 = time.perf_counter()
    hist = model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=epochs,
        validation_data=(x_test, y_test),
        callbacks=callbacks,
        verbose=0,
    )
    seconds = time.perf_counter() - t0
    val = [round(float(v), 4) for v in hist.history["val_acc"]]
    print(
        json.dumps(
            {
                "framework": framework,
                "model": model_name,
                "seed": seed,
                "epochs": epochs,
                "drop_at": drop_at,
                "batch_size": batch_size,
                "test_acc": val[-1],
                "val_acc": val,
                "seconds": round(seconds, 1),
            }
        )
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frameworks", default="convolab,keras")
    ap.add_argument("--models", default="lenet,resnet20+aug")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument(
        "--drop-at",
        type=int,
        default=15,
        help="from this epoch on (0-based) the learning rate is 1e-4 instead of 1e-3; 0: no drop",
    )
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA))
    ap.add_argument("--json", help="write every run's result here")
    ap.add_argument("--worker", nargs=3, metavar=("FRAMEWORK", "MODEL", "SEED"), help=argparse.SUPPRESS)
    ap.add_argument("--resnet-file", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        f, m, s = args.worker
        worker(f, m, int(s), args.epochs, args.batch_size, args.data_dir, args.resnet_file, args.drop_at)
        return 0
    results = []
    tmp = tempfile.mkdtemp(prefix="convolab-cifar-")
    for seed in (int(s) for s in args.seeds.split(",")):
        resnet_file = os.path.join(tmp, f"resnet20-seed{seed}.keras")
        write_resnet(resnet_file, seed)
        for m in args.models.split(","):
            for f in args.frameworks.split(","):
                cmd = [
                    sys.executable,
                    __file__,
                    "--worker",
                    f,
                    m,
                    str(seed),
                    "--epochs",
                    str(args.epochs),
                    "--drop-at",
                    str(args.drop_at),
                    "--batch-size",
                    str(args.batch_size),
                    "--data-dir",
                    args.data_dir,
                    "--resnet-file",
                    resnet_file,
                ]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
                r = (
                    json.loads(lines[-1])
                    if lines
                    else {
                        "framework": f,
                        "model": m,
                        "seed": seed,
                        "error": (proc.stderr.strip().splitlines() or ["?"])[-1],
                    }
                )
                print(json.dumps(r), flush=True)
                results.append(r)
    print("\n| model | framework | seed | epochs | test accuracy | seconds |\n|---|---|---|---|---|---|")
    for r in results:
        acc = f"{100 * r['test_acc']:.1f}%" if "test_acc" in r else r.get("error", "?")[:60]
        print(
            f"| {r['model']} | {r['framework']} | {r['seed']} | {r.get('epochs', '')} | {acc} | {r.get('seconds', '')} |"
        )
    print("\n| model | framework | mean test accuracy | seeds |\n|---|---|---|---|")
    for m in args.models.split(","):
        for f in args.frameworks.split(","):
            accs = [r["test_acc"] for r in results if r["model"] == m and r["framework"] == f and "test_acc" in r]
            if accs:
                print(f"| {m} | {f} | {100 * np.mean(accs):.1f}% | {len(accs)} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
