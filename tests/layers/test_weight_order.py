"""Keras 3's weight order for a user's layer: the weights made trainable first, then those made
non-trainable, each in the order made (Keras keeps ``_trainable_variables`` and
``_non_trainable_variables`` and reads them in turn for ``weights``, ``get_weights`` and the
``vars/0, vars/1...`` of a ``.keras`` file), whatever order ``build`` made them in."""

import io
import zipfile

import numpy as np
import pytest

from convolab import keras


class CountingDense(keras.layers.Layer):
    """A non-trainable counter made before the kernel, as people write it. (A .keras file
    names a layer's group by its class, snake_cased, as Keras does.)"""

    def build(self, input_shape):
        self.count = self.add_weight(shape=(), initializer="zeros", trainable=False, name="count")
        self.w = self.add_weight(shape=(input_shape[-1], 2), initializer="ones", name="w")
        self.total = self.add_weight(shape=(2,), initializer="zeros", trainable=False, name="total")
        self.b = self.add_weight(shape=(2,), initializer="zeros", name="b")

    def call(self, x):
        return keras.ops.matmul(x, self.w) + self.b


def test_trainable_weights_come_first_in_the_order_made():
    layer = CountingDense()
    layer(np.zeros((1, 3), "float32"))
    assert [v.name for v in layer.weights] == ["w", "b", "count", "total"]
    assert [v.name for v in layer.trainable_weights] == ["w", "b"]
    assert [v.name for v in layer.non_trainable_weights] == ["count", "total"]
    assert [w.shape for w in layer.get_weights()] == [(3, 2), (2,), (), (2,)]
    assert layer.weights[0] is layer.w and layer.weights[2] is layer.count


def test_a_keras_file_stores_them_in_that_order(tmp_path):
    h5py = pytest.importorskip("h5py")
    keras.saving.get_custom_objects()["CountingDense"] = CountingDense
    try:
        model = keras.Sequential([keras.Input((3,)), CountingDense(name="cd")])
        model.layers[0].count.assign(7.0)
        path = str(tmp_path / "m.keras")
        model.save(path)
        with zipfile.ZipFile(path) as z, h5py.File(io.BytesIO(z.read("model.weights.h5"))) as f:
            shapes = [f[f"layers/counting_dense/vars/{i}"].shape for i in range(4)]
            count = f["layers/counting_dense/vars/2"][()]
        assert shapes == [(3, 2), (2,), (), (2,)] and count == 7.0
        loaded = keras.saving.load_model(path)
        np.testing.assert_array_equal(loaded.layers[0].count.numpy(), 7.0)
    finally:
        del keras.saving.get_custom_objects()["CountingDense"]
