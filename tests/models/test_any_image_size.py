"""A Sequential built for any image size (``keras.Input((None, None, C))``), as fully convolutional nets are.

Its work per sample is unknown until data comes, so the shard planner must not multiply by ``None``
(``models/parallel.py``'s ``forward_flops_per_sample`` did: a TypeError in fit and predict).
"""

import numpy as np
import pytest

from convolab import keras


@pytest.mark.parametrize("batch", [8, 64])
def test_sequential_for_any_image_size_trains_and_predicts_each_size(batch):
    model = keras.Sequential(
        [
            keras.Input((None, None, 3)),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    for size in (16, 24):
        x = rng.random((batch, size, size, 3), dtype=np.float32)
        y = rng.integers(0, 2, batch)
        model.fit(x, y, epochs=1, batch_size=32, verbose=0)
        whole = model.predict(x, batch_size=32, verbose=0)
        one_by_one = np.concatenate([model.predict(x[i : i + 1], verbose=0) for i in range(batch)])
        assert whole.shape == (batch, 2)
        np.testing.assert_allclose(whole, one_by_one, rtol=1e-5, atol=1e-6)
