"""fit/evaluate/predict on a keras.utils.PyDataset (Sequence) and on generators, as Keras programs feed them."""

import math

import numpy as np
import pytest

from convolab import keras

L = keras.layers


class Batches(keras.utils.PyDataset):
    """The keras.io PyDataset example: batches by index, shuffled at each epoch's end."""

    def __init__(self, x, y, batch_size, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size = x, y, batch_size
        self.epochs_ended = 0
        self.order = np.arange(len(x))

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, idx):
        i = self.order[idx * self.batch_size : (idx + 1) * self.batch_size]
        return self.x[i], self.y[i]

    def on_epoch_end(self):
        self.epochs_ended += 1


def _data(n=40):
    rng = np.random.default_rng(0)
    return rng.random((n, 6)).astype("float32"), rng.integers(0, 3, n)


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input(shape=(6,)), L.Dense(8, activation="relu"), L.Dense(3)])
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        metrics=["acc"],
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def test_pydataset_trains_exactly_like_the_same_arrays_unshuffled():
    x, y = _data()
    a, b = _model(), _model()
    ds = Batches(x, y, 8)
    ha = a.fit(ds, epochs=3, verbose=0)
    hb = b.fit(x, y, batch_size=8, epochs=3, verbose=0, shuffle=False)
    assert ds.epochs_ended == 3
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-6)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-6)
    assert a.evaluate(ds, verbose=0) == pytest.approx(b.evaluate(x, y, batch_size=8, verbose=0), rel=1e-6)
    np.testing.assert_allclose(a.predict(ds, verbose=0), b.predict(x, verbose=0), rtol=1e-6)


def test_generator_with_steps_per_epoch_and_validation_generator():
    x, y = _data()

    def forever():
        while True:
            for i in range(0, len(x), 10):
                yield x[i : i + 10], y[i : i + 10]

    model = _model()
    hist = model.fit(forever(), steps_per_epoch=4, epochs=2, verbose=0, validation_data=forever(), validation_steps=2)
    assert model.optimizer.iterations == 8
    assert set(hist.history) == {"loss", "acc", "val_loss", "val_acc"}
    ref = _model()
    ref.fit(x, y, batch_size=10, epochs=2, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_finite_generator_runs_out_with_a_warning():
    x, y = _data(20)
    model = _model()
    gen = ((x[i : i + 5], y[i : i + 5]) for i in range(0, 20, 5))
    with pytest.warns(UserWarning, match="ran out of data"):
        hist = model.fit(gen, epochs=3, verbose=0)
    assert len(hist.history["loss"]) == 1 and model.optimizer.iterations == 4


def test_sample_weights_in_batches_and_a_functional_model():
    x, y = _data(12)
    w = np.linspace(0.5, 2.0, 12).astype("float32")
    inputs = keras.Input(shape=(6,))
    keras.utils.set_random_seed(1)
    model = keras.Model(inputs, L.Dense(3)(inputs))
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    gen = ((x[i : i + 4], y[i : i + 4], w[i : i + 4]) for i in range(0, 12, 4))
    model.fit(gen, epochs=1, verbose=0)
    keras.utils.set_random_seed(1)
    ref = keras.Model(inputs2 := keras.Input(shape=(6,)), L.Dense(3)(inputs2))
    ref.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ref.fit(x, y, sample_weight=w, batch_size=4, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_batch_sources_refuse_what_they_cannot_honour():
    x, y = _data()
    model = _model()
    ds = Batches(x, y, 8)
    with pytest.raises(ValueError, match="`y` and `sample_weight` must be None"):
        model.fit(ds, y, verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(ds, validation_split=0.2, verbose=0)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        model.fit(x, y, steps_per_epoch=3, verbose=0)
    with pytest.raises(ValueError, match="must carry targets"):
        model.fit((xb for xb in [x[:4]]), verbose=0)
    with pytest.raises(ValueError, match="use_multiprocessing"):
        Batches(x, y, 8, use_multiprocessing=True)
    assert keras.utils.Sequence is keras.utils.PyDataset
