"""convolab.zoo's functional architectures: parameter counts worked out by hand, shapes, training, files, ONNX."""

import numpy as np
import pytest

import convolab
from convolab import keras, zoo

L = keras.layers


# --- parameter arithmetic, by Keras's rules -------------------------------------------------------
def conv(k, cin, cout, bias=True):
    """A k x k Conv2D: kernel k*k*cin*cout, plus one bias per filter."""
    return k * k * cin * cout + (cout if bias else 0)


def dense(n_in, n_out):
    return n_in * n_out + n_out


def bn(c):
    """BatchNormalization: gamma, beta trainable; moving mean, moving variance not. Returns (trainable, frozen)."""
    return 2 * c, 2 * c


def tally(rows):
    """Sum a list of ints (trainable weights) and (trainable, frozen) pairs into (trainable, frozen)."""
    trainable = sum(r[0] if isinstance(r, tuple) else r for r in rows)
    frozen = sum(r[1] for r in rows if isinstance(r, tuple))
    return trainable, frozen


def resnet20_rows():
    rows = [conv(3, 3, 16), bn(16)]  # stem: 448 + 64
    rows += 3 * [conv(3, 16, 16), bn(16), conv(3, 16, 16), bn(16)]  # stage 1: 3 x (2320 + 64) x 2
    rows += [
        conv(3, 16, 32),
        bn(32),
        conv(3, 32, 32),
        bn(32),  # stage 2 block 1: 4640 + 128 + 9248 + 128
        conv(1, 16, 32),
    ]  #   projection (option B, no BN): 544
    rows += 2 * [conv(3, 32, 32), bn(32), conv(3, 32, 32), bn(32)]  # stage 2 blocks 2, 3
    rows += [
        conv(3, 32, 64),
        bn(64),
        conv(3, 64, 64),
        bn(64),  # stage 3 block 1: 18496 + 256 + 36928 + 256
        conv(1, 32, 64),
    ]  #   projection: 2112
    rows += 2 * [conv(3, 64, 64), bn(64), conv(3, 64, 64), bn(64)]  # stage 3 blocks 2, 3
    rows += [dense(64, 10)]  # head: 650
    return rows


def vgg_rows():
    rows = [
        conv(3, 3, 32),
        bn(32),
        conv(3, 32, 32),
        bn(32),  # block 1, 32x32 -> 16x16
        conv(3, 32, 64),
        bn(64),
        conv(3, 64, 64),
        bn(64),  # block 2, -> 8x8
        conv(3, 64, 128),
        bn(128),
        conv(3, 128, 128),
        bn(128),
    ]  # block 3, -> 4x4
    rows += [dense(4 * 4 * 128, 128), bn(128), dense(128, 10)]  # Flatten 2048 - Dense 128 - BN - Dense 10
    return rows


def inception_block_rows(cin, f1, f3r, f3, f5r, f5, fp):
    return [
        conv(1, cin, f1),
        bn(f1),
        conv(1, cin, f3r),
        bn(f3r),
        conv(3, f3r, f3),
        bn(f3),
        conv(1, cin, f5r),
        bn(f5r),
        conv(5, f5r, f5),
        bn(f5),
        conv(1, cin, fp),
        bn(fp),
    ]


def inception_rows():
    rows = [conv(3, 3, 32), bn(32)]
    rows += inception_block_rows(32, 16, 16, 24, 4, 8, 8)  # out 16 + 24 + 8 + 8 = 56 channels
    rows += inception_block_rows(56, 32, 32, 48, 8, 16, 16)  # out 32 + 48 + 16 + 16 = 112
    rows += inception_block_rows(112, 48, 48, 64, 8, 16, 16)  # out 48 + 64 + 16 + 16 = 144
    return rows + [dense(144, 10)]


def separable_rows(cin, cout):
    """Depthwise 3x3 (9 per channel, no bias) - BN - pointwise 1x1 (no bias) - BN."""
    return [9 * cin, bn(cin), cin * cout, bn(cout)]


def mobilenet_rows(a):
    w = [int(f * a) for f in (32, 64, 128, 256)]
    rows = [conv(3, 3, w[0], bias=False), bn(w[0])]
    for cin, cout in ((w[0], w[1]), (w[1], w[2]), (w[2], w[2]), (w[2], w[3]), (w[3], w[3])):
        rows += separable_rows(cin, cout)
    return rows + [dense(w[3], 10)]


# (builder kwargs, (trainable, non-trainable)) on 32x32x3, 10 classes
EXPECTED = {
    "vgg": ({}, tally(vgg_rows())),
    "resnet20": ({}, tally(resnet20_rows())),
    "inception": ({}, tally(inception_rows())),
    "mobilenet": ({}, tally(mobilenet_rows(1.0))),
    "mobilenet_0.5": ({"alpha": 0.5}, tally(mobilenet_rows(0.5))),
}
NAMES = ["vgg", "resnet20", "inception", "mobilenet"]


def trainable_count(model):
    return sum(w.size for w in model.trainable_weights)


def test_hand_arithmetic_totals():
    # the sums above, written out once so a slip in the helpers shows
    assert EXPECTED["vgg"][1] == (552874 - 1152, 1152)
    assert EXPECTED["resnet20"][1] == (273066, 1376)
    assert EXPECTED["inception"][1] == (76518 - 920, 920)
    assert EXPECTED["mobilenet"][1] == (139722 - 2944, 2944)
    assert EXPECTED["mobilenet_0.5"][1] == (38634 - 1472, 1472)


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_parameter_counts(key):
    kwargs, (trainable, frozen) = EXPECTED[key]
    model = zoo.get(key.split("_")[0], **kwargs)
    assert (trainable_count(model), model.count_params() - trainable_count(model)) == (trainable, frozen)
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    for label, n in (("Total", trainable + frozen), ("Trainable", trainable), ("Non-trainable", frozen)):
        assert f"{label} params: {n:,}" in text


def test_resnet20_matches_keras_cifar10_example():
    # Keras's CIFAR-10 ResNet example (resnet_v1, depth 20) prints exactly these three numbers
    model = zoo.resnet20()
    assert model.count_params() == 274442
    assert trainable_count(model) == 273066
    assert model.count_params() - trainable_count(model) == 1376


def test_resnet20_layout():
    model = zoo.resnet20()
    convs = [l for l in model.layers if isinstance(l, L.Conv2D)]
    three = [l for l in convs if l.kernel_size == (3, 3)]
    proj = [l for l in convs if l.kernel_size == (1, 1)]
    assert len(three) == 19 and len(proj) == 2  # 19 convs + the Dense = 20 weighted layers
    assert [l.filters for l in three] == [16] + [16] * 6 + [32] * 6 + [64] * 6
    assert [l.strides for l in three if l.strides != (1, 1)] == [(2, 2), (2, 2)]
    assert [(l.filters, l.strides) for l in proj] == [(32, (2, 2)), (64, (2, 2))]
    assert sum(isinstance(l, L.BatchNormalization) for l in model.layers) == 19
    assert sum(isinstance(l, L.Add) for l in model.layers) == 9
    assert model.get_layer("stage3_block3_out").output_shape == (None, 8, 8, 64)
    assert zoo.resnet20(n=5).name == "resnet32"


def test_architectures_use_their_building_blocks():
    inc = zoo.inception()
    concat = [l for l in inc.layers if isinstance(l, L.Concatenate)]
    assert [l.output_shape[-1] for l in concat] == [56, 112, 144]
    assert any(l.kernel_size == (5, 5) for l in inc.layers if isinstance(l, L.Conv2D))
    mob = zoo.mobilenet()
    dw = [l for l in mob.layers if isinstance(l, L.DepthwiseConv2D)]
    assert len(dw) == 5 and [l.strides for l in dw] == [(1, 1), (2, 2), (1, 1), (2, 2), (1, 1)]
    assert all(l.max_value == 6 for l in mob.layers if isinstance(l, L.ReLU))
    vgg = zoo.vgg(widths=(8, 16), convs_per_block=3, dropout=0)
    assert sum(isinstance(l, L.Conv2D) for l in vgg.layers) == 6
    assert not any(isinstance(l, L.Dropout) for l in vgg.layers)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape, classes", [((32, 32, 3), 10), ((16, 16, 1), 3)])
def test_forward_shape(name, shape, classes):
    convolab.set_random_seed(0)
    model = zoo.get(name, input_shape=shape, classes=classes)
    x = np.random.default_rng(0).random((3,) + shape).astype(np.float32)
    y = model.predict(x, verbose=0)
    assert y.shape == (3, classes) and y.dtype == np.float32
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)  # softmax by default
    logits = zoo.get(name, input_shape=shape, classes=classes, classifier_activation=None)
    assert logits.layers[-1].activation in (None, "linear")


def bars(n=64, size=16, seed=0):
    """Class 0: a vertical bar, class 1: a horizontal bar, at random places on noise."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, size, size, 3)).astype(np.float32) * 0.2
    y = rng.integers(0, 2, n)
    for i in range(n):
        r, c = rng.integers(1, size - 9, 2)
        if y[i] == 0:
            x[i, r : r + 8, c : c + 2] = 1.0
        else:
            x[i, r : r + 2, c : c + 8] = 1.0
    return x, y


@pytest.mark.parametrize("name", NAMES)
def test_training_steps_lower_the_loss(name):
    convolab.set_random_seed(0)
    x, y = bars()
    model = zoo.get(name, input_shape=(16, 16, 3), classes=2)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="sparse_categorical_crossentropy")
    losses = [float(np.asarray(model.train_on_batch(x, y))) for _ in range(6)]
    assert all(np.isfinite(losses)), losses
    assert losses[-1] < 0.25 * losses[0], losses  # after 6 Adam steps: 0.001-0.05 of the first loss
    assert all(w.dtype == np.float32 for w in model.weights)


def trained(name, shape=(16, 16, 3)):
    """A model after two training steps, so BN moving statistics and weights are not their initial values."""
    convolab.set_random_seed(0)
    x, y = bars(size=shape[0])
    model = zoo.get(name, input_shape=shape, classes=2)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.train_on_batch(x, y)
    model.train_on_batch(x, y)
    return model, x[:8]


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip(tmp_path, name):
    model, x = trained(name)
    model.save(tmp_path / "m.convolab")
    loaded = keras.models.load_model(tmp_path / "m.convolab")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.count_params() == model.count_params()
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]


@pytest.mark.parametrize("name", NAMES)
def test_onnx_export_matches_predict(tmp_path, name):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model, x = trained(name)
    model.export(tmp_path / "m.onnx")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), opts, providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"input": x})
    expected = model.predict(x, verbose=0)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_get_by_name():
    assert zoo.get("lenet").count_params() == 62006
    assert zoo.get("simple", num_classes=3).output_shape == (None, 3)
    assert zoo.get("resnet20", classes=100).output_shape == (None, 100)
    with pytest.raises(ValueError, match="unknown zoo model 'resnet50'; expected one of .*resnet20, inception"):
        zoo.get("resnet50")


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: zoo.vgg(input_shape=(32, 32)), r"\(height, width, channels\).*got \(32, 32\)"),
        (lambda: zoo.vgg(input_shape=(4, 4, 3)), r"at least 8x8.*got input_shape=\(4, 4, 3\)"),
        (lambda: zoo.resnet20(classes=0), "`classes` must be a positive int; got 0"),
        (lambda: zoo.inception(blocks=((16, 16, 24),)), "six filter counts; got"),
        (lambda: zoo.mobilenet(alpha=0), "`alpha` must be a positive float; got 0"),
        (lambda: zoo.mobilenet(alpha=0.01), "alpha=0.01 leaves 32 filters as 0.32"),
        (lambda: zoo.vgg(dropout=1.0), r"`dropout` must be a float in \[0, 1\); got 1.0"),
    ],
)
def test_errors_name_what_was_expected_and_what_came(call, message):
    with pytest.raises(ValueError, match=message):
        call()
