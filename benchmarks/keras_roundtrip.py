"""convolab's Keras files against real Keras 3: every zoo model, both ways.

    pip install tensorflow-cpu          # Keras 3 with its TensorFlow backend; not a convolab dependency
    python benchmarks/keras_roundtrip.py
    python benchmarks/keras_roundtrip.py --models resnet20,lenet

For each zoo model (the four functional architectures and the lesson's three Sequential networks),
plus a small two-output functional model (``heads``) whose per-output losses, metrics and
loss_weights exercise the compile settings of a multi-output model:

1. convolab -> Keras. The model is built in convolab, compiled (the lesson's models keep their own
   compile settings; the architectures get Adam and sparse categorical cross-entropy), and trained
   two steps on random data, so every weight has moved. BatchNormalization's moving statistics are
   then set to random values (mean in [-0.5, 0.5], variance in [0.5, 1.5]): after two steps with
   momentum 0.99 they are still close to 0 and 1, where a mean and a variance swapped in the file
   would hardly show. ``model.save('m.keras')`` writes the file; ``keras.saving.load_model`` reads
   it, compile settings included; both predict the same batch.
2. Keras -> convolab. The Keras model from step 1 trains two steps in Keras (its compile settings
   are the ones read from convolab's file), then Keras writes ``model.save('k.keras')`` and
   ``model.save_weights('k.weights.h5')``. convolab loads the ``.keras`` file with
   ``keras.models.load_model`` and the weights into a freshly built model of the same architecture
   with ``load_weights``; each predicts the batch that Keras predicts.

Predictions are compared in inference mode (moving statistics, no dropout) as ``max |a - b|``
over the batch. The table gives parameter counts (convolab / Keras) and the three differences.
Exit status 1 if any difference exceeds 1e-4 or any file fails to load.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

TOLERANCE = 1e-4
MODELS = ("vgg", "resnet20", "inception", "mobilenet", "simple", "multi", "lenet", "heads")
BATCH = 8


def _two_heads(cl):
    """A small two-output functional model, compiled with per-output losses, metrics and weights."""
    keras = cl.keras
    inputs = keras.Input((12, 12, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv")(inputs)
    x = keras.layers.BatchNormalization(
        name="bn", gamma_regularizer=keras.regularizers.L2(1e-3), beta_constraint=keras.constraints.MaxNorm(2.0)
    )(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    digit = keras.layers.Dense(5, activation="softmax", name="digit")(x)
    parity = keras.layers.Dense(1, activation="sigmoid", name="parity")(x)
    model = keras.Model(inputs, [digit, parity], name="heads")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss={"digit": "sparse_categorical_crossentropy", "parity": keras.losses.BinaryCrossentropy()},
        loss_weights={"digit": 1.0, "parity": 0.5},
        metrics={"digit": ["acc"], "parity": [keras.metrics.BinaryAccuracy()]},
    )
    return model


def build_convolab(cl, name):
    """The convolab model ``name``, compiled."""
    if name == "heads":
        return _two_heads(cl)
    model = cl.zoo.get(name)
    if not model.compiled:
        model.compile(optimizer=cl.keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["acc"])
    return model


def data_for(model, rng, n=2 * BATCH):
    shape = tuple(model.input_shape[1:])
    x = rng.random((n,) + shape, dtype=np.float32)
    outputs = model.output_shape if isinstance(model.output_shape, list) else [model.output_shape]
    ys = []
    for out in outputs:
        width = out[-1]
        ys.append(rng.integers(0, 2, n).astype(np.float32).reshape(n, 1) if width == 1 else rng.integers(0, width, n))
    return x, ys if len(ys) > 1 else ys[0]


def randomize_moving_statistics(model, rng):
    for layer in _all_layers(model):
        if type(layer).__name__ == "BatchNormalization":
            c = layer.params["moving_mean"].shape
            layer.params["moving_mean"][...] = rng.uniform(-0.5, 0.5, c)
            layer.params["moving_variance"][...] = rng.uniform(0.5, 1.5, c)


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def _outputs(pred):
    return [np.asarray(p) for p in pred] if isinstance(pred, (list, tuple)) else [np.asarray(pred)]


def max_diff(a, b):
    a, b = _outputs(a), _outputs(b)
    if len(a) != len(b):
        raise ValueError(f"{len(a)} outputs against {len(b)}")
    for u, v in zip(a, b):
        if u.shape != v.shape:
            raise ValueError(f"output shapes differ: {u.shape} and {v.shape}")
    return max(float(np.max(np.abs(u.astype(np.float64) - v.astype(np.float64)))) for u, v in zip(a, b))


def compile_summary(model):
    """(optimizer class, learning rate as float32, loss weights): what both libraries must agree on."""
    opt = model.optimizer
    if type(model).__module__.startswith("convolab"):
        names, weights = getattr(model.loss, "names", None), getattr(model.loss, "weights", None)
        weights = None if names is None else dict(zip(names, weights))
    else:  # Keras keeps the loss_weights compile was given
        weights = model._compile_loss._user_loss_weights
    return type(opt).__name__, float(np.float32(float(opt.learning_rate))), weights


def check_compile(ours, theirs, direction):
    a, b = compile_summary(ours), compile_summary(theirs)
    if a != b:
        raise RuntimeError(f"{direction}: the compile settings differ: {a} against {b}")


def run_one(name, cl, keras, folder, rng):
    row = {"model": name, "params": "-", "to_keras": None, "from_keras": None, "from_h5": None, "error": None}
    try:
        model = build_convolab(cl, name)
        x, y = data_for(model, rng)
        model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
        randomize_moving_statistics(model, rng)
        path = os.path.join(folder, f"{name}.convolab.keras")
        model.save(path)
        ours = model.predict(x[:BATCH], verbose=0)

        kmodel = keras.saving.load_model(path)
        row["params"] = f"{model.count_params():,} / {kmodel.count_params():,}"
        if not kmodel.compiled:
            raise RuntimeError("Keras loaded the model uncompiled: the compile settings were not read")
        check_compile(model, kmodel, "convolab -> Keras")
        row["to_keras"] = max_diff(ours, kmodel.predict(x[:BATCH], verbose=0))

        kmodel.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
        theirs = kmodel.predict(x[:BATCH], verbose=0)
        kpath, hpath = os.path.join(folder, f"{name}.keras"), os.path.join(folder, f"{name}.weights.h5")
        kmodel.save(kpath)
        kmodel.save_weights(hpath)

        loaded = cl.keras.models.load_model(kpath)
        if not loaded.compiled:
            raise RuntimeError("convolab loaded Keras's file uncompiled: the compile settings were not read")
        check_compile(loaded, kmodel, "Keras -> convolab")
        row["from_keras"] = max_diff(loaded.predict(x[:BATCH], verbose=0), theirs)
        fresh = build_convolab(cl, name)
        fresh.load_weights(hpath)
        row["from_h5"] = max_diff(fresh.predict(x[:BATCH], verbose=0), theirs)
    except Exception as e:  # noqa: BLE001 (every failure is a row of the table)
        row["error"] = f"{type(e).__name__}: {e}"
        traceback.print_exc(file=sys.stderr)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of " + ", ".join(MODELS))
    args = parser.parse_args(argv)
    names = [n for n in args.models.split(",") if n]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; expected some of {', '.join(MODELS)}")

    import keras

    import convolab as cl
    import convolab.zoo  # noqa: F401

    print(
        f"convolab {cl.__version__} from {os.path.dirname(cl.__file__)}; Keras {keras.__version__} "
        f"({keras.backend.backend()} backend)"
    )
    rng = np.random.default_rng(0)
    cl.keras.utils.set_random_seed(0)
    keras.utils.set_random_seed(0)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            rows.append(run_one(name, cl, keras, folder, rng))

    def cell(v):
        return "-" if v is None else f"{v:.2e}"

    print()
    print(
        "| model | params convolab / Keras | convolab -> Keras .keras | Keras -> convolab .keras "
        "| Keras -> convolab .weights.h5 |"
    )
    print("|---|---:|---:|---:|---:|")
    failed = []
    for r in rows:
        print(
            f"| {r['model']} | {r['params']} | {cell(r['to_keras'])} | {cell(r['from_keras'])} | {cell(r['from_h5'])} |"
        )
        diffs = [r[k] for k in ("to_keras", "from_keras", "from_h5")]
        if r["error"] or any(d is None or d > TOLERANCE for d in diffs):
            failed.append(r)
    print()
    for r in failed:
        print(f"FAIL {r['model']}: {r['error'] or 'a difference above ' + str(TOLERANCE)}")
    print(f"{len(rows) - len(failed)}/{len(rows)} models within max|diff| <= {TOLERANCE:g}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
