"""Short seeded training runs on generated images: they learn, they repeat, their first losses are pinned."""

from __future__ import annotations

import numpy as np
import pytest

from convolab import keras
from convolab.callbacks import Callback

L = keras.layers


def bars(n=256, classes=2, seed=0):
    """8x8 images: noise in [0, 0.3) plus one bright bar (+0.7).

    Class 0: a vertical bar, 1: horizontal, 2: diagonal, 3: anti-diagonal, at a random offset.
    Generated with a private NumPy generator, so the data never depend on convolab's seed.
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 0.3, (n, 8, 8, 1))
    y = rng.integers(0, classes, n)
    r = np.arange(8)
    for i in range(n):
        p, k = rng.integers(1, 7), rng.integers(-2, 3)
        if y[i] == 0:
            x[i, :, p, 0] += 0.7
        elif y[i] == 1:
            x[i, p, :, 0] += 0.7
        else:
            c = r + k if y[i] == 2 else 7 - r + k
            ok = (c >= 0) & (c < 8)
            x[i, r[ok], c[ok], 0] += 0.7
    return x.astype(np.float32), y


def make_model(classes, dropout=False):
    layers = [L.Conv2D(8, 3, activation="relu", input_shape=(8, 8, 1)), L.MaxPooling2D(), L.Flatten()]
    if dropout:
        layers.append(L.Dropout(0.25))
    layers.append(L.Dense(classes, activation="softmax"))
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["acc"])
    return model


class BatchLosses(Callback):
    """Per-batch losses recovered from the running means fit reports (equal batch sizes)."""

    def __init__(self):
        super().__init__()
        self.running = []

    def on_train_batch_end(self, batch, logs=None):
        self.running.append(logs["loss"])

    def losses(self, per_epoch_steps):
        out = []
        for e in range(len(self.running) // per_epoch_steps):
            r = self.running[e * per_epoch_steps : (e + 1) * per_epoch_steps]
            out += [r[0]] + [(k + 1) * r[k] - k * r[k - 1] for k in range(1, len(r))]
        return out


@pytest.mark.parametrize("classes,epochs", [(2, 10), (4, 15)])
def test_bars_are_learned(classes, epochs):
    x, y = bars(classes=classes)
    keras.utils.set_random_seed(0)
    model = make_model(classes)
    hist = model.fit(x[:192], y[:192], validation_data=(x[192:], y[192:]), epochs=epochs, batch_size=32, verbose=0)
    h = hist.history
    # A fresh softmax classifier starts near log(classes).
    assert abs(h["loss"][0] - np.log(classes)) < 0.25
    assert h["loss"][-1] < 0.3 and h["val_loss"][-1] < 0.3
    assert h["loss"][-1] < 0.5 * h["loss"][0]
    assert h["acc"][-1] > 0.9 and h["val_acc"][-1] > 0.9
    assert model.evaluate(x[192:], y[192:], verbose=0)[1] > 0.9


def test_learning_with_sgd_and_logits():
    x, y = bars(classes=2, seed=5)
    keras.utils.set_random_seed(1)
    model = keras.Sequential([L.Conv2D(4, 3, activation="relu", input_shape=(8, 8, 1)), L.Flatten(), L.Dense(2)])
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    hist = model.fit(x, y, epochs=10, batch_size=16, validation_split=0.25, verbose=0)
    assert hist.history["val_accuracy"][-1] > 0.9


def _run(seed, dropout=True, x=None, y=None):
    if x is None:
        x, y = bars(classes=4)
    keras.utils.set_random_seed(seed)
    model = make_model(4, dropout=dropout)
    hist = model.fit(x, y, epochs=3, batch_size=32, validation_split=0.25, verbose=0)
    return model.get_weights(), hist.history


def test_same_seed_gives_bitwise_identical_runs():
    w1, h1 = _run(0)
    w2, h2 = _run(0)
    assert len(w1) == len(w2) == 4
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)
    assert h1 == h2  # exact float equality of every logged value


def test_different_seed_gives_a_different_run():
    w1, h1 = _run(0)
    w3, h3 = _run(1)
    assert not np.array_equal(w1[0], w3[0])
    assert h1["loss"] != h3["loss"]


def test_seed_fixes_initial_weights_and_shuffle_order():
    x, y = bars(classes=4)
    keras.utils.set_random_seed(7)
    a = make_model(4)
    wa = a.get_weights()
    ha = a.fit(x, y, epochs=1, batch_size=16, verbose=0).history
    keras.utils.set_random_seed(7)
    c = make_model(4)
    for w1, w2 in zip(wa, c.get_weights()):
        np.testing.assert_array_equal(w1, w2)
    hc = c.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0).history
    # Same start, different batch order: shuffle=True really reorders the samples.
    assert hc["loss"] != ha["loss"]


# Regression pin: the first three batch losses of this fixed seeded run on fixed data, recorded
# once from convolab itself (not derived from Keras). A change to initialisation, shuffling,
# the conv/pool/dense math, the fused loss or Adam shows up here first. If a deliberate change
# moves them, re-record them and say why in the commit.
PINNED_FIRST_LOSSES = [1.4167941, 1.3855805, 1.3685369]


def test_first_batch_losses_are_pinned():
    x, y = bars(classes=4)
    keras.utils.set_random_seed(0)
    model = make_model(4)
    rec = BatchLosses()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[rec])
    got = rec.losses(per_epoch_steps=8)[:3]
    np.testing.assert_allclose(got, PINNED_FIRST_LOSSES, rtol=1e-5)


def test_uint8_images_are_cast_not_scaled():
    x, y = bars(classes=2)
    x8 = np.round(x * 255).astype(np.uint8)
    w8, h8 = _run(3, dropout=False, x=x8, y=y)
    wf, hf = _run(3, dropout=False, x=x8.astype(np.float32), y=y)
    ws, hs = _run(3, dropout=False, x=x8.astype(np.float32) / 255.0, y=y)
    for a, b in zip(w8, wf):
        np.testing.assert_array_equal(a, b)
    assert h8 == hf
    assert hs["loss"] != h8["loss"]
    assert all(w.dtype == np.float32 for w in w8)


def test_float64_input_is_cast_to_float32():
    x, y = bars(classes=2)
    x64 = x.astype(np.float64) + 1e-12  # differs from x only below float32 resolution
    w64, h64 = _run(4, dropout=False, x=x64, y=y)
    w32, h32 = _run(4, dropout=False, x=x, y=y)
    for a, b in zip(w64, w32):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)
    assert h64 == h32
    keras.utils.set_random_seed(4)
    model = make_model(2)
    out = model.predict(x64)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, model.predict(x))


def test_thread_count_does_not_change_the_result():
    """fit runs a batch as shards on threads; the summed update equals the whole-batch one (up to rounding)."""
    from convolab.models import parallel

    x, y = bars(classes=4)
    results = []
    try:
        for n in (1, 3):
            parallel.set_num_threads(n)
            w, h = _run(2, dropout=False, x=x, y=y)
            results.append((w, h))
    finally:
        parallel.set_num_threads(None)
    (w1, h1), (w3, h3) = results
    for a, b in zip(w1, w3):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(h1["loss"], h3["loss"], rtol=1e-5)
    np.testing.assert_allclose(h1["val_loss"], h3["val_loss"], rtol=1e-5)
