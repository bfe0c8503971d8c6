"""A user's layer whose build() never sets ``self.built`` (Keras sets it after build) (issue 21)."""

import numpy as np

from convolab import layers, models


class _NoBuiltFlag(layers.Layer):
    def build(self, input_shape):  # no self.built = True, no super().build: Keras accepts this
        self.w = self.add_weight(name="w", shape=(input_shape[-1], 3), initializer="ones")

    def call(self, x, training=False):
        return x @ self.w


def test_sequential_builds_a_user_layer_once():
    layer = _NoBuiltFlag()
    model = models.Sequential([layers.Input((4,)), layer])
    model.build((None, 4))  # the second build used to run the layer's build again: "already has a weight 'w'"
    assert layer.built and layer.input_shape == (None, 4)
    np.testing.assert_allclose(model(np.ones((2, 4), "float32")), np.full((2, 3), 4.0))
    assert len(layer.weights) == 1


def test_direct_build_marks_the_layer_built():
    layer = _NoBuiltFlag()
    layer.build((None, 5))
    assert layer.built
    np.testing.assert_allclose(layer(np.ones((1, 5), "float32")), np.full((1, 3), 5.0))
