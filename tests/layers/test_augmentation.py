"""Augmentation and spatial reshaping layers: Keras's names and defaults, hand-computed answers,
seeds, identity at inference, models of every kind, saving and ONNX export."""

from __future__ import annotations

import numpy as np
import pytest

from convolab import keras
from support.layer_gradients import check_layer_gradients

L = keras.layers
IMG = np.arange(9.0).reshape(1, 3, 3, 1)


def test_defaults_and_names():
    keras.backend.clear_session()
    assert L.ZeroPadding2D().padding == ((1, 1), (1, 1))
    assert L.ZeroPadding2D(((1, 2), (3, 4))).padding == ((1, 2), (3, 4))
    assert L.Cropping2D().cropping == ((0, 0), (0, 0)) and L.Cropping2D((1, 2)).cropping == ((1, 1), (2, 2))
    up = L.UpSampling2D()
    assert up.size == (2, 2) and up.interpolation == "nearest" and up.name == "up_sampling2d"
    assert L.RandomFlip().mode == "horizontal_and_vertical"
    r = L.RandomRotation(0.1)
    assert (r.fill_mode, r.interpolation, r.fill_value, r.seed) == ("reflect", "bilinear", 0.0, None)
    assert L.RandomZoom(0.1).width_factor is None
    assert L.RandomBrightness(0.1).value_range == (0.0, 255.0)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: L.ZeroPadding2D(-1), "padding"),
        (lambda: L.Cropping2D((1, 2, 3)), "cropping"),
        (lambda: L.UpSampling2D(interpolation="bicubic"), "bicubic"),
        (lambda: L.UpSampling2D(0), "size"),
        (lambda: L.RandomFlip("diagonal"), "mode"),
        (lambda: L.RandomRotation(0.1, fill_mode="mirror"), "fill_mode"),
        (lambda: L.RandomTranslation(1.5, 0.1), "height_factor"),
        (lambda: L.RandomZoom((0.3, 0.1)), "lower <= upper"),
        (lambda: L.RandomContrast(1.5), "factor"),
        (lambda: L.RandomBrightness(0.1, value_range=(1, 0)), "value_range"),
        (lambda: L.RandomCrop(0, 3), "height"),
        (lambda: L.RandomFlip(seed=-1), "seed"),
    ],
)
def test_bad_arguments_name_the_layer(make, match):
    with pytest.raises(ValueError, match=match) as e:
        make()
    assert "'" in str(e.value)  # the layer's name


def test_cropping_too_much_names_layer_and_shape():
    with pytest.raises(ValueError, match=r"Cropping2D 'c'.*removes 3 of 3.*\(None, 3, 3, 1\)"):
        L.Cropping2D(((2, 1), (0, 0)), name="c").build((None, 3, 3, 1))


def test_layers_call_and_gradients():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 4, 2))
    for layer in (
        L.ZeroPadding2D(((0, 1), (2, 0)), dtype="float64"),
        L.Cropping2D(((1, 0), (1, 2)), dtype="float64"),
        L.UpSampling2D((2, 1), dtype="float64"),
        L.UpSampling2D(interpolation="bilinear", dtype="float64"),
        L.RandomCrop(5, 3, dtype="float64"),
    ):  # smaller input: centre crop and resize, also in training
        layer.build((None, 4, 4, 2))
        check_layer_gradients(layer, x, rng)
    # random layers draw anew at every call, so their ops are gradient-checked directly
    # (tests/nn/test_padding_resize.py); a forced draw makes the layer's backward checkable too
    rot = L.RandomRotation((0.1, 0.1), dtype="float64")
    rot.build((None, 4, 4, 2))
    check_layer_gradients(rot, x, rng)


def test_rotation_quarter_turn_flip_and_one_pixel_translation_by_hand():
    rot = L.RandomRotation((0.25, 0.25))  # the factor forces exactly +90 degrees
    np.testing.assert_allclose(rot(IMG, training=True)[0, :, :, 0], np.rot90(IMG[0, :, :, 0]), atol=1e-12)
    flip = L.RandomFlip("horizontal", seed=3)
    x = np.repeat(IMG, 8, axis=0)
    y = flip(x, training=True)
    for img in y[:, :, :, 0]:
        assert np.array_equal(img, IMG[0, :, :, 0]) or np.array_equal(img, IMG[0, :, ::-1, 0])
    assert 0 < sum(np.array_equal(i, IMG[0, :, ::-1, 0]) for i in y[:, :, :, 0]) < 8
    tr = L.RandomTranslation((1 / 3, 1 / 3), (0, 0), fill_mode="constant", fill_value=-1)  # exactly 1 pixel down
    np.testing.assert_allclose(tr(IMG, training=True)[0, :, :, 0], [[-1, -1, -1], [0, 1, 2], [3, 4, 5]], atol=1e-12)
    zoom = L.RandomZoom((-0.5, -0.5), interpolation="nearest")  # zoom in 2x about the centre
    assert zoom(IMG, training=True)[0, 1, 1, 0] == 4


def test_contrast_brightness_and_crop_by_hand():
    x = np.array([[10.0, 20.0], [30.0, 40.0]]).reshape(1, 2, 2, 1)
    np.testing.assert_allclose(L.RandomContrast((0, 0))(x, training=True), x)
    np.testing.assert_allclose(L.RandomContrast((0.0, 1.0), seed=0)(x, training=True).mean(), 25.0)
    np.testing.assert_allclose(
        L.RandomBrightness((0.5, 0.5))(x, training=True)[0, :, :, 0], [[137.5, 147.5], [157.5, 167.5]]
    )
    crop = L.RandomCrop(2, 2, seed=0)
    big = np.arange(16.0).reshape(1, 4, 4, 1)
    windows = {tuple(crop(big, training=True).ravel()) for _ in range(30)}
    assert len(windows) > 1 and all(
        w in {tuple(big[0, i : i + 2, j : j + 2, 0].ravel()) for i in range(3) for j in range(3)} for w in windows
    )
    # inference: the centred window of the target aspect ratio, resized (4x4 -> 2x2 halves exactly)
    np.testing.assert_allclose(crop(big, training=False)[0, :, :, 0], [[2.5, 4.5], [10.5, 12.5]])
    np.testing.assert_array_equal(L.RandomCrop(2, 4)(big)[0, :, :, 0], big[0, 1:3, :, 0])


AUGMENT = [
    lambda s: L.RandomFlip(seed=s),
    lambda s: L.RandomRotation(0.2, seed=s),
    lambda s: L.RandomTranslation(0.2, 0.3, seed=s),
    lambda s: L.RandomZoom(0.2, 0.3, seed=s),
    lambda s: L.RandomContrast(0.5, seed=s),
    lambda s: L.RandomBrightness(0.3, seed=s),
    lambda s: L.RandomCrop(4, 4, seed=s),
]


@pytest.mark.parametrize("make", AUGMENT)
def test_seeded_draws_repeat_differ_per_batch_and_inference_is_identity(make):
    x = np.random.default_rng(1).uniform(0, 255, (4, 6, 6, 3))
    a, b = make(5), make(5)
    first = a(x, training=True)
    np.testing.assert_array_equal(first, b(x, training=True))  # same seed, same draws
    assert not np.array_equal(first, a(x, training=True))  # the next batch draws anew
    if not isinstance(a, L.RandomCrop):
        assert a(x, training=False) is x  # a direct call without `training` augments (Keras 3)
    unseeded = make(None)
    keras.utils.set_random_seed(3)
    one = unseeded(x, training=True)
    keras.utils.set_random_seed(3)
    np.testing.assert_array_equal(one, unseeded(x, training=True))  # the global generator


def data_augmentation():
    return keras.Sequential(
        [L.RandomFlip("horizontal", seed=1), L.RandomRotation(0.1, seed=2), L.RandomZoom(0.1, seed=3)]
    )


def test_in_sequential_nested_and_functional_models():
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (16, 8, 8, 1)), rng.integers(0, 2, 16)
    keras.utils.set_random_seed(0)
    seq = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            L.RandomFlip("horizontal", seed=1),
            L.RandomRotation(0.1, seed=2),
            L.ZeroPadding2D(),
            L.Conv2D(2, 3),
            L.UpSampling2D(),
            L.Cropping2D(1),
            L.Flatten(),
            L.Dense(2, activation="softmax"),
        ]
    )
    seq.compile("adam", "sparse_categorical_crossentropy")
    h = seq.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert np.isfinite(h.history["loss"]).all()
    p = seq.predict(x, verbose=0)
    np.testing.assert_array_equal(p, seq.predict(x, verbose=0))  # inference is deterministic
    inputs = keras.Input((8, 8, 1))
    z = data_augmentation()(inputs)
    z = L.Conv2D(2, 3, activation="relu")(z)
    outputs = L.Dense(2, activation="softmax")(L.Flatten()(z))
    fn = keras.Model(inputs, outputs)
    fn.compile("adam", "sparse_categorical_crossentropy")
    h = fn.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert np.isfinite(h.history["loss"]).all()
    np.testing.assert_array_equal(fn.predict(x, verbose=0), fn.predict(x, verbose=0))
    fn.evaluate(x, y, verbose=0)


def test_save_load_keeps_config_seed_and_generator_state(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((6, 6, 3)),
            L.RandomFlip(seed=4),
            L.RandomTranslation((-0.1, 0.2), 0.1, seed=5),
            L.RandomRotation(0.1, fill_mode="constant", fill_value=1.0),
            L.RandomZoom(0.2, seed=6),
            L.RandomContrast((0.1, 0.3), seed=7),
            L.RandomBrightness(0.1, value_range=(0, 1), seed=8),
            L.ZeroPadding2D(((1, 0), (0, 2))),
            L.Cropping2D(1),
            L.UpSampling2D(interpolation="bilinear"),
            L.RandomCrop(5, 5, seed=9),
            L.Flatten(),
            L.Dense(2),
        ]
    )
    model.compile("sgd", "mse")
    x = np.random.default_rng(0).uniform(0, 1, (4, 6, 6, 3))
    model.fit(x, np.zeros((4, 2)), epochs=1, verbose=0)
    path = tmp_path / "m.convolab"
    model.save(path)
    loaded = keras.models.load_model(path)
    for a, b in zip(model.layers, loaded.layers):
        assert type(a) is type(b) and a.get_config() == b.get_config()
    assert loaded.layers[0].get_config()["seed"] == 4
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    # the seeded generators continue where they were
    for i in (0, 1, 4):
        np.testing.assert_array_equal(loaded.layers[i](x, training=True), model.layers[i](x, training=True))


def test_onnx_export_skips_augmentation_and_matches_predict(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model = keras.Sequential(
        [
            keras.Input((7, 6, 3)),
            L.RandomFlip(),
            L.RandomRotation(0.2),
            L.RandomContrast(0.2),
            L.ZeroPadding2D(((1, 2), (0, 1))),
            L.Conv2D(2, 3),
            L.Cropping2D(((0, 1), (1, 0))),
            L.UpSampling2D((2, 3)),
            L.UpSampling2D(interpolation="bilinear"),
            L.RandomCrop(9, 7),
            L.Flatten(),
            L.Dense(3),
        ]
    )
    path = tmp_path / "m.onnx"
    model.export(path)
    import onnx

    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert {"Pad", "Slice", "Resize"} <= set(ops) and not any(
        "random" in n.name
        for n in onnx.load(str(path)).graph.node
        if n.op_type not in ("Slice", "Resize", "Shape", "Concat")
    )
    x = np.random.default_rng(2).uniform(0, 1, (3, 7, 6, 3)).astype("float32")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"input": x})[0], model.predict(x, verbose=0), atol=1e-4)


def test_functional_model_with_seeded_augmentation_saves_and_resumes(tmp_path):
    inputs = keras.Input((6, 6, 1))
    z = L.RandomFlip(seed=3)(inputs)
    z = L.ZeroPadding2D()(z)
    outputs = L.Dense(2)(L.Flatten()(L.Conv2D(2, 3)(z)))
    model = keras.Model(inputs, outputs)
    model.compile("sgd", "mse")
    x = np.random.default_rng(0).uniform(0, 1, (4, 6, 6, 1))
    model.fit(x, np.zeros((4, 2)), epochs=1, verbose=0)
    path = tmp_path / "f.convolab"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    flip = next(l for l in model.layers if isinstance(l, L.RandomFlip))
    flip2 = next(l for l in loaded.layers if isinstance(l, L.RandomFlip))
    np.testing.assert_array_equal(flip2(x, training=True), flip(x, training=True))
