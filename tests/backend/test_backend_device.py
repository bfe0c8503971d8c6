"""Device selection and its errors, without a GPU (CuPy missing or faked)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from support import fake_cupy
from convolab import _gpu, backend


@pytest.fixture
def restore_cpu():
    yield
    backend.set_device("cpu")
    _gpu.cupy = None


def _no_cupy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` now raises ImportError


def test_cpu_is_the_default_and_numpy_is_the_door():
    assert backend.get_device() == "cpu"
    assert backend.xp is np
    a = np.arange(3.0)
    assert backend.get_array_module(a) is np
    assert backend.to_host(a) is a  # the identity on the host
    assert backend.to_device(a) is a


def test_gpu_without_cupy_says_how_to_install(monkeypatch, restore_cpu):
    _no_cupy(monkeypatch)
    with pytest.raises(backend.GPUUnavailableError, match=r'pip install "convolab\[gpu\]"'):
        backend.set_device("gpu")
    assert backend.get_device() == "cpu" and backend.xp is np  # nothing changed


def test_cupy_without_a_device_says_so(monkeypatch, restore_cpu):
    monkeypatch.setattr(_gpu, "_import_cupy", lambda: fake_cupy.make_module(device_count=0))
    with pytest.raises(backend.GPUUnavailableError, match="no CUDA device answers.*nvidia-smi"):
        backend.set_device("gpu")
    with pytest.raises(backend.GPUUnavailableError, match="CUDA device 3 .* sees 1 device"):
        monkeypatch.setattr(_gpu, "_import_cupy", lambda: fake_cupy.make_module(device_count=1))
        backend.set_device("gpu:3")


def test_auto_falls_back_to_the_cpu(monkeypatch, restore_cpu):
    _no_cupy(monkeypatch)
    assert backend.set_device("auto") == "cpu"
    monkeypatch.setattr(_gpu, "_import_cupy", lambda: fake_cupy.make_module())
    assert backend.set_device("auto") == "gpu"


@pytest.mark.parametrize("bad", ["tpu", "gpu:x", "cpu:1", ""])
def test_unknown_device_names_are_refused(bad):
    with pytest.raises(ValueError, match="unknown device"):
        backend.set_device(bad)


def test_a_device_must_be_named_by_a_string():
    with pytest.raises(TypeError, match="set_device expects a string"):
        backend.set_device(0)


def test_gpu_switch_changes_the_door_and_the_helpers(monkeypatch, restore_cpu):
    cp = fake_cupy.make_module()
    monkeypatch.setattr(_gpu, "_import_cupy", lambda: cp)
    assert backend.set_device("GPU") == "gpu" and backend.on_gpu()
    assert backend.xp is cp
    d = backend.to_device(np.arange(4, dtype=np.float32))
    assert isinstance(d, cp.ndarray) and backend.get_array_module(np.ones(2), d) is cp
    h = backend.to_host(d)
    assert type(h) is np.ndarray and h.tolist() == [0, 1, 2, 3]
    assert backend.get_array_module(np.ones(2)) is np  # host arrays stay NumPy's
    assert backend.set_device("cpu") == "cpu" and backend.xp is np


def test_environment_variable_chooses_at_start_up():
    code = "import convolab; print(convolab.backend.get_device())"
    env = dict(os.environ, CONVOLAB_DEVICE="cpu")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "cpu"
    # 'gpu' where CuPy is absent: the import fails with the install hint rather than quietly using the CPU
    env["CONVOLAB_DEVICE"] = "gpu"
    code = "import sys; sys.modules['cupy'] = None\nimport convolab"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and 'pip install "convolab[gpu]"' in out.stderr


def test_out_of_memory_error_is_a_memory_error_with_advice():
    err = _gpu.out_of_memory(RuntimeError("out of memory"), "running fit with batch_size=4096")
    assert isinstance(err, MemoryError)
    assert "batch_size=4096" in str(err) and "smaller batch_size" in str(err)
    assert backend.out_of_memory_errors() == ()  # nothing to catch on the CPU


def test_cupy_is_not_imported_on_the_cpu():
    code = "import sys, convolab; convolab.backend.get_array_module(); print('cupy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False"
