"""convolab's GPU code path, run on the CPU through a fake CuPy (``tests/support/fake_cupy.py``).

The fake's arrays refuse to mix with host arrays, as CuPy's do, and its kernels are the NumPy
twins of the CUDA ones: so a training step of each lesson model with each optimizer, predict,
evaluate, saving, loading and ONNX export all run the GPU branch of every op, and must agree
with the CPU in float32. What this cannot check (the CUDA compiler, cuBLAS, real memory) is
left to ``pytest -m gpu`` on a GPU machine.
"""

import numpy as np
import pytest

from support import fake_cupy
from convolab import _gpu, backend, keras, random
from convolab.kernels import cuda

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture
def fake_gpu(monkeypatch):
    mod = fake_cupy.make_module()
    monkeypatch.setattr(_gpu, "_import_cupy", lambda: mod)
    monkeypatch.setattr(cuda, "_modules", {})
    monkeypatch.setattr(random, "_device_generator", None)
    backend.set_device("gpu")
    try:
        yield mod
    finally:
        backend.set_device("cpu")
        _gpu.cupy = None


def _lesson(name, optimizer):
    import sys

    from support.paths import BENCHMARKS

    sys.path.insert(0, str(BENCHMARKS))
    from peers import SHAPES, lesson_layers

    shape = SHAPES[name]
    model = keras.Sequential([keras.Input(shape=shape)] + lesson_layers(keras.layers, name))
    model.compile(
        optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["acc"]
    )
    return model, shape


def _data(shape, n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n,) + shape, dtype=np.float32), rng.integers(0, 10, n)


def _train(name, optimizer, device_fixture=None):
    keras.utils.set_random_seed(1)
    model, shape = _lesson(name, optimizer)
    x, y = _data(shape, 32)
    hist = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    return model, hist.history, x


# every model and every optimizer, in six pairs rather than twelve (the suite's time budget);
# tests/backend/test_gpu_device.py runs the full product on a real GPU
@pytest.mark.parametrize(
    "name, optimizer",
    [
        ("simple", "rmsprop"),
        ("multi", "adam"),
        ("lenet", "adam"),
        ("multi", "sgd_momentum"),
        ("lenet", "rmsprop"),
        ("simple", "nadam"),
    ],
)
def test_training_on_the_device_matches_the_cpu(name, optimizer, fake_gpu):
    opt = (lambda: keras.optimizers.SGD(0.05, momentum=0.9)) if optimizer == "sgd_momentum" else (lambda: optimizer)
    backend.set_device("cpu")
    cpu_model, cpu_hist, x = _train(name, opt())
    backend.set_device("gpu")
    gpu_model, gpu_hist, _ = _train(name, opt())
    assert all(isinstance(v, float) for vals in gpu_hist.values() for v in vals)  # logs are floats
    np.testing.assert_allclose(gpu_hist["loss"], cpu_hist["loss"], rtol=2e-4)
    np.testing.assert_allclose(gpu_hist["acc"], cpu_hist["acc"])
    weights = gpu_model.get_weights()
    assert all(type(w) is np.ndarray for w in weights)  # get_weights comes back to the host
    for got, want in zip(weights, cpu_model.get_weights()):
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-5)
    assert all(isinstance(w.value, fake_cupy.ndarray) for w in gpu_model.weights)  # trained where the data was
    pred = gpu_model.predict(x, batch_size=32, verbose=0)
    assert type(pred) is np.ndarray
    np.testing.assert_allclose(pred, cpu_model.predict(x, batch_size=32, verbose=0), rtol=2e-3, atol=2e-4)


def test_kernels_were_launched_not_bypassed(fake_gpu, monkeypatch):
    launched = []
    real = cuda.launch
    monkeypatch.setattr(cuda, "launch", lambda name, *a, **k: (launched.append(name), real(name, *a, **k)))
    _train("multi", "adam")
    assert {"im2col", "col2im", "maxpool_fwd", "maxpool_bwd", "relu_bwd", "adam"} <= set(launched)


def test_rmsprop_and_sgd_use_their_fused_kernels(fake_gpu, monkeypatch):
    launched = []
    real = cuda.launch
    monkeypatch.setattr(cuda, "launch", lambda name, *a, **k: (launched.append(name), real(name, *a, **k)))
    _train("simple", "rmsprop")
    _train("simple", keras.optimizers.SGD(0.01, momentum=0.5))
    assert {"rmsprop", "sgd_momentum"} <= set(launched)


def test_seeded_runs_repeat_on_the_device_with_dropout(fake_gpu):
    def run():
        keras.utils.set_random_seed(3)
        model = keras.Sequential(
            [
                keras.Input(shape=(28, 28, 1)),
                keras.layers.Conv2D(4, 3, activation="relu"),
                keras.layers.AveragePooling2D(),
                keras.layers.Flatten(),
                keras.layers.Dropout(0.3),
                keras.layers.Dense(10),
            ]
        )
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        x, y = _data((28, 28, 1), 48)
        return model.fit(x, y, batch_size=16, epochs=2, verbose=0).history["loss"], model.get_weights()

    (l1, w1), (l2, w2) = run(), run()
    assert l1 == l2
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)


def test_save_load_and_export_from_the_device(fake_gpu, tmp_path):
    model, _, x = _train("lenet", "adam")
    expected = model.predict(x, verbose=0)
    model.save(tmp_path / "m.convolab")
    model.save_weights(tmp_path / "m.weights.safetensors")
    assert all(isinstance(w.value, fake_cupy.ndarray) for w in model.weights)  # back on the device after saving
    loaded = keras.models.load_model(tmp_path / "m.convolab")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    assert all(isinstance(w.value, fake_cupy.ndarray) for w in loaded.weights)  # predict placed them on the device
    loaded.fit(x, np.zeros(len(x), int), epochs=1, verbose=0)  # the loaded optimizer state moved along
    model.load_weights(tmp_path / "m.weights.safetensors")
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    onnxruntime = pytest.importorskip("onnxruntime")
    model.export(tmp_path / "m.onnx")
    sess = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    got = sess.run(None, {sess.get_inputs()[0].name: x[:8]})[0]
    np.testing.assert_allclose(got, expected[:8], rtol=1e-4, atol=1e-5)


def test_direct_calls_and_evaluate_on_the_device(fake_gpu):
    model, _, x = _train("multi", "adam")
    out = model(x[:4])
    assert isinstance(out, fake_cupy.ndarray)  # a direct call answers on the device, like a Keras tensor
    logs = model.evaluate(x, np.zeros(len(x), int), verbose=0, return_dict=True)
    assert all(isinstance(v, float) for v in logs.values())


def test_switching_back_to_the_cpu_moves_weights_and_optimizer_state(fake_gpu):
    model, _, x = _train("simple", "adam")
    before = model.get_weights()
    backend.set_device("cpu")
    model.fit(x, np.zeros(len(x), int), epochs=1, verbose=0)
    assert all(type(w.value) is np.ndarray for w in model.weights)
    state = model.optimizer.get_state(model.weights[0])
    assert state is not None and type(state["momentum"]) is np.ndarray and state["momentum"].any()
    assert not np.allclose(model.get_weights()[0], before[0])


def test_data_too_big_for_the_device_is_copied_per_batch(fake_gpu, monkeypatch):
    monkeypatch.setattr(_gpu, "DATA_FRACTION", 0.0)
    from convolab.models import data_adapter

    x, y = _data((28, 28, 1), 32)
    xs, ys, _, put = data_adapter.to_device_once(x, y)
    assert xs is x and put is backend.to_device
    model, _ = _lesson("simple", "adam")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert all(isinstance(w.value, fake_cupy.ndarray) for w in model.weights)


def test_out_of_memory_says_what_to_do(fake_gpu, monkeypatch):
    model, shape = _lesson("simple", "adam")
    x, y = _data(shape, 32)

    def boom(*a, **k):
        raise fake_gpu.cuda.memory.OutOfMemoryError("out of memory allocating 1,024 bytes")

    monkeypatch.setattr(type(model), "_train_step", boom)
    with pytest.raises(backend.GPUOutOfMemoryError, match="batch_size=16.*smaller batch_size"):
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)


def test_a_seeded_dropout_goes_on_with_its_gpu_stream_across_fits(fake_gpu):
    """The runner's replicas do the work, but a seeded Dropout's private GPU stream lives on the
    layer: a second fit draws new masks, as on the host, instead of the first fit's again."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(6), keras.layers.Dropout(0.5, seed=7), keras.layers.Dense(2)]
    )
    model.compile(optimizer=keras.optimizers.SGD(1e-30), loss="mse")  # the weights all but stay put
    x, y = np.ones((8, 6), "float32"), np.zeros((8, 2), "float32")
    drop = model.layers[1]
    first = model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False).history["loss"][0]
    stream = drop._device_rng
    assert stream is not None
    second = model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False).history["loss"][0]
    assert drop._device_rng is stream and first != second  # new masks from the same stream
