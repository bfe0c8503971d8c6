"""A stand-in for CuPy on the CPU, so the tests can run convolab's GPU code path without a GPU.

Its arrays (:class:`ndarray`, a NumPy subclass) play GPU arrays: ``backend.get_array_module``
answers this module for them, so every op takes its GPU branch. It is strict where CuPy is:

- mixing a device array and a host NumPy array (other than a scalar) in arithmetic, in a
  module function, or as an index or an assigned value raises ``TypeError``, as CuPy does
  (only ``asarray``/``array`` copy host data in);
- reductions return 0-d device arrays, not NumPy scalars.

``RawModule(code).get_function(name)`` launches the NumPy twin of the named kernel
(``cuda_twins.py``) on the arrays' buffers: the launchers, their argument order and the twins'
index math all run, only the CUDA compiler does not (``test_cuda_sources.py`` runs nvcc).
"""
from __future__ import annotations

import types

import numpy as np

import cuda_twins

_HOST_IN = {"asarray", "array", "asanyarray"}


class ndarray(np.ndarray):
    """A 'device' array: NumPy memory, CuPy's rules."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        _refuse_host(inputs, f"{ufunc.__name__}")
        if "out" in kwargs:
            _refuse_host(kwargs["out"], f"{ufunc.__name__}(out=)")
            kwargs["out"] = tuple(_unwrap(o) for o in kwargs["out"])
        result = getattr(ufunc, method)(*(_unwrap(i) for i in inputs), **kwargs)
        return _wrap(result)

    def __getitem__(self, index):
        _refuse_host(index if isinstance(index, tuple) else (index,), "indexing")
        return _wrap(np.ndarray.__getitem__(self.view(np.ndarray), _unwrap_index(index)))

    def __setitem__(self, index, value):
        _refuse_host(index if isinstance(index, tuple) else (index,), "indexing")
        _refuse_host((value,), "assignment")
        np.ndarray.__setitem__(self.view(np.ndarray), _unwrap_index(index), _unwrap(value))

    def get(self):
        return np.array(self.view(np.ndarray))


def _is_host(a):
    return type(a) is np.ndarray and a.ndim > 0


def _refuse_host(items, what):
    for a in items:
        if isinstance(a, (list, tuple)):
            _refuse_host(a, what)
        elif _is_host(a):
            raise TypeError(f"fake CuPy: a host numpy.ndarray of shape {a.shape} reached {what} on the device "
                            "(CuPy refuses implicit host-device mixing)")


def _unwrap(a):
    if isinstance(a, ndarray):
        return a.view(np.ndarray)
    if isinstance(a, (list, tuple)):
        return type(a)(_unwrap(v) for v in a)
    return a


def _unwrap_index(index):
    return tuple(_unwrap(i) for i in index) if isinstance(index, tuple) else _unwrap(index)


def _wrap(a):
    if isinstance(a, np.ndarray) and not isinstance(a, ndarray):
        return a.view(ndarray)
    if isinstance(a, np.generic):
        return np.asarray(a).view(ndarray)
    if isinstance(a, tuple):
        return tuple(_wrap(v) for v in a)
    if isinstance(a, list):
        return [_wrap(v) for v in a]
    return a


def _function(name, fn):
    def call(*args, **kwargs):
        if name not in _HOST_IN:
            _refuse_host(args, f"cupy.{name}")
            _refuse_host(tuple(kwargs.values()), f"cupy.{name}")
        if "out" in kwargs:
            kwargs["out"] = _unwrap(kwargs["out"])
        result = fn(*(_unwrap(a) for a in args), **{k: _unwrap(v) for k, v in kwargs.items()})
        if name in _HOST_IN and isinstance(result, np.ndarray) and not isinstance(result, ndarray):
            result = np.array(result, copy=True)  # a transfer makes a new buffer
        return _wrap(result)

    call.__name__ = name
    return call


def asnumpy(a):
    return np.array(_unwrap(a), copy=True)


class _Function:
    def __init__(self, name):
        base = name.rsplit("_f", 1)[0]
        self.twin = cuda_twins.TWINS[base]
        self.launches = 0

    def __call__(self, grid, block, args):
        for a in args:
            if _is_host(a):
                raise TypeError("fake CuPy: a host array passed to a kernel")
        self.launches += 1
        self.twin(*(_unwrap(a).reshape(-1) if isinstance(a, ndarray) else (a.item() if isinstance(a, np.generic) else a)
                    for a in args))


class RawModule:
    """Compiles nothing: each function launches its NumPy twin."""

    compiled = []

    def __init__(self, code, **kwargs):
        self.code = code
        RawModule.compiled.append(code)

    def get_function(self, name):
        if name not in self.code:
            raise KeyError(f"fake CuPy: no kernel {name} in the module source")
        return _Function(name)


class OutOfMemoryError(MemoryError):
    pass


class _Device:
    mem_info = (1 << 34, 1 << 35)

    def __init__(self, index=0):
        self.index = index

    def use(self):
        pass


class _Pool:
    def free_bytes(self):
        return 0


class _RandomState:
    def __init__(self, seed):
        self._rng = np.random.default_rng(seed)

    def random_sample(self, size=None, dtype="float64"):
        return _wrap(self._rng.random(size, dtype=dtype))


def make_module(device_count=1):
    """A fresh fake ``cupy`` module (``device_count=0``: CuPy without a CUDA device)."""
    mod = types.ModuleType("cupy")

    def __getattr__(name):
        value = getattr(np, name)
        if isinstance(value, type) or not callable(value):
            return value
        return _function(name, value)

    def get_device_count():
        if device_count == 0:
            raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
        return device_count

    mod.__getattr__ = __getattr__
    mod.ndarray = ndarray
    mod.asnumpy = asnumpy
    mod.RawModule = RawModule
    mod.get_default_memory_pool = lambda: _Pool()
    mod.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=get_device_count),
                                     Device=_Device, memory=types.SimpleNamespace(OutOfMemoryError=OutOfMemoryError))
    mod.random = types.SimpleNamespace(RandomState=_RandomState)
    return mod
