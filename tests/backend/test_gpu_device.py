"""On a real NVIDIA GPU: every kernel and a full training step against the NumPy reference.

Run with ``pytest -m gpu`` (``benchmarks/gpu_check.sh`` does, then times the benchmark). Every
test here skips cleanly where CuPy or a CUDA device is missing, so plain ``pytest`` passes on
CPU-only machines.
"""

import sys

import numpy as np
import pytest

from convolab import _gpu, backend, keras
from convolab.nn import conv, im2col as im2col_ops, pool
from convolab.nn.activations import activation_backward
from support.paths import BENCHMARKS

pytestmark = pytest.mark.gpu

if not _gpu.usable():
    pytest.skip('no CuPy or no CUDA device (pip install "convolab[gpu]" on a GPU machine)', allow_module_level=True)

sys.path.insert(0, str(BENCHMARKS))
from peers import SHAPES, lesson_layers  # noqa: E402


@pytest.fixture
def gpu():
    cp = _gpu.activate()
    backend.set_device("gpu")
    yield cp
    backend.set_device("cpu")


CASES = [
    ((4, 12, 11, 3), (3, 3), (1, 1), "valid", (1, 1)),
    ((4, 12, 11, 3), (5, 5), (2, 1), "same", (1, 1)),
    ((2, 13, 13, 2), (3, 2), (1, 2), "same", (2, 3)),
    ((32, 28, 28, 1), (5, 5), (1, 1), "valid", (1, 1)),
]


@pytest.mark.parametrize("shape, k, s, pad, d", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_im2col_col2im_kernels(gpu, shape, k, s, pad, d, dtype):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    cols, _ = im2col_ops.im2col(x, k, s, pad, ones_column=True, dilation=d)
    gcols, _ = im2col_ops.im2col(gpu.asarray(x), k, s, pad, ones_column=True, dilation=d)
    np.testing.assert_array_equal(gpu.asnumpy(gcols), cols)
    c = np.random.default_rng(1).standard_normal((cols.shape[0], cols.shape[1] - 1)).astype(dtype)
    want = im2col_ops.col2im(c, shape, k, s, pad, d)
    got = gpu.asnumpy(im2col_ops.col2im(gpu.asarray(c), shape, k, s, pad, d))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "shape, p, s, pad", [((8, 24, 24, 10), (2, 2), (2, 2), "valid"), ((3, 7, 5, 2), (3, 3), (2, 2), "same")]
)
def test_pooling_kernels(gpu, shape, p, s, pad):
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    y, cache = pool.max_pool_forward(x, p, s, pad)
    gy, gcache = pool.max_pool_forward(gpu.asarray(x), p, s, pad)
    np.testing.assert_array_equal(gpu.asnumpy(gy), y)
    dy = np.random.default_rng(3).standard_normal(y.shape).astype(np.float32)
    np.testing.assert_allclose(
        gpu.asnumpy(pool.max_pool_backward(gpu.asarray(dy), gcache)),
        pool.max_pool_backward(dy, cache),
        rtol=1e-6,
        atol=1e-6,
    )
    a, acache = pool.avg_pool_forward(x, p, s, pad)
    ga, gacache = pool.avg_pool_forward(gpu.asarray(x), p, s, pad)
    np.testing.assert_allclose(gpu.asnumpy(ga), a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        gpu.asnumpy(pool.avg_pool_backward(gpu.asarray(dy), gacache)),
        pool.avg_pool_backward(dy, acache),
        rtol=1e-5,
        atol=1e-6,
    )


def test_conv_and_relu(gpu):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((16, 28, 28, 3)).astype(np.float32)
    w = rng.standard_normal((5, 5, 3, 9)).astype(np.float32)
    b = rng.standard_normal(9).astype(np.float32)
    y, cache = conv.conv2d_forward(x, w, b)
    gy, gcache = conv.conv2d_forward(gpu.asarray(x), gpu.asarray(w), gpu.asarray(b))
    np.testing.assert_allclose(gpu.asnumpy(gy), y, rtol=1e-4, atol=1e-4)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    for got, want in zip(conv.conv2d_backward(gpu.asarray(dy), gcache), conv.conv2d_backward(dy, cache)):
        np.testing.assert_allclose(gpu.asnumpy(got), want, rtol=1e-3, atol=1e-3)
    r = np.maximum(y, 0)
    np.testing.assert_array_equal(
        gpu.asnumpy(activation_backward("relu", gpu.asarray(dy), gpu.asarray(r))), activation_backward("relu", dy, r)
    )


def _train(name, optimizer, device):
    backend.set_device(device)
    keras.utils.set_random_seed(5)
    shape = SHAPES[name]
    model = keras.Sequential([keras.Input(shape=shape)] + lesson_layers(keras.layers, name))
    model.compile(
        optimizer=optimizer(), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["acc"]
    )
    rng = np.random.default_rng(0)
    x, y = rng.random((256,) + shape, dtype=np.float32), rng.integers(0, 10, 256)
    hist = model.fit(x, y, batch_size=32, epochs=2, verbose=0).history
    return model, hist, x


OPTIMIZERS = {
    "adam": lambda: keras.optimizers.Adam(),
    "rmsprop": lambda: keras.optimizers.RMSprop(),
    "sgd": lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    "adamw": lambda: keras.optimizers.AdamW(),
    "nadam": lambda: keras.optimizers.Nadam(),
}


@pytest.mark.parametrize("name", ["simple", "multi", "lenet"])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_training_matches_the_cpu(gpu, name, optimizer):
    cpu_model, cpu_hist, x = _train(name, OPTIMIZERS[optimizer], "cpu")
    gpu_model, gpu_hist, _ = _train(name, OPTIMIZERS[optimizer], "gpu")
    assert isinstance(gpu_model.weights[0].value, gpu.ndarray)
    np.testing.assert_allclose(gpu_hist["loss"], cpu_hist["loss"], rtol=1e-3)
    for got, want in zip(gpu_model.get_weights(), cpu_model.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-2, atol=1e-4)
    pred = gpu_model.predict(x, verbose=0)
    assert type(pred) is np.ndarray


def test_seeded_runs_repeat_on_the_gpu(gpu):
    def run():
        keras.utils.set_random_seed(9)
        model = keras.Sequential(
            [
                keras.Input(shape=(28, 28, 1)),
                keras.layers.Conv2D(8, 3, activation="relu"),
                keras.layers.MaxPooling2D(),
                keras.layers.Flatten(),
                keras.layers.Dropout(0.4),
                keras.layers.Dense(10),
            ]
        )
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        rng = np.random.default_rng(0)
        x, y = rng.random((256, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 256)
        return model.fit(x, y, batch_size=32, epochs=2, verbose=0).history["loss"], model.get_weights()

    (l1, w1), (l2, w2) = run(), run()
    assert l1 == l2
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)


def test_save_load_and_onnx_from_the_gpu(gpu, tmp_path):
    model, _, x = _train("lenet", OPTIMIZERS["adam"], "gpu")
    expected = model.predict(x, verbose=0)
    model.save(tmp_path / "m.convolab")
    loaded = keras.models.load_model(tmp_path / "m.convolab")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    assert isinstance(loaded.weights[0].value, gpu.ndarray)
    onnxruntime = pytest.importorskip("onnxruntime")
    model.export(tmp_path / "m.onnx")
    sess = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    got = sess.run(None, {sess.get_inputs()[0].name: x[:16]})[0]
    np.testing.assert_allclose(got, expected[:16], rtol=1e-4, atol=1e-5)


def test_out_of_memory_is_reported_with_advice(gpu):
    model = keras.Sequential(
        [
            keras.Input(shape=(256, 256, 3)),
            keras.layers.Conv2D(256, 3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10),
        ]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    batch = int(_gpu.free_bytes() // (254 * 254 * 256 * 4)) + 64  # one batch's conv output exceeds free memory
    x = np.zeros((batch, 256, 256, 3), np.float32)
    with pytest.raises(backend.GPUOutOfMemoryError, match="smaller batch_size"):
        model.predict(x, batch_size=batch, verbose=0)
