"""A stand-in for CuPy on the CPU, so the tests can run convolab's GPU code path without a GPU.

Its arrays (:class:`ndarray`) play GPU arrays: ``backend.get_array_module`` answers this module
for them, so every op takes its GPU branch. Like CuPy's, they are not NumPy arrays (a wrapper
around one, not a subclass), and the fake is strict where CuPy is:

- implicit conversion to NumPy raises ``TypeError`` with CuPy's message: ``np.asarray(a)``,
  ``np.array(a)``, assigning one into a NumPy array, or any C code that asks for a buffer
  (only ``a.get()`` and ``cupy.asnumpy(a)`` copy data back to the host);
- mixing a device array and a host NumPy array (other than a scalar) in arithmetic, in a
  module function, in a NumPy function or as an index or an assigned value raises
  ``TypeError``, as CuPy does (only ``asarray``/``array`` copy host data in);
- reductions return 0-d device arrays, not NumPy scalars.

``RawModule(code).get_function(name)`` launches the NumPy twin of the named kernel
(``cuda_twins.py``) on the arrays' buffers: the launchers, their argument order and the twins'
index math all run, only the CUDA compiler does not (``test_cuda_sources.py`` runs nvcc).
"""

from __future__ import annotations

import types

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

from support import cuda_twins

_HOST_IN = {"asarray", "array", "asanyarray"}

#: arguments that CuPy reads on the host (a list of split points may be a NumPy array)
_HOST_PARAMS = {"split": ("indices_or_sections", 1), "array_split": ("indices_or_sections", 1)}

#: CuPy's own words (``cupy/_core/core.pyx``, ``ndarray.__array__``)
IMPLICIT_CONVERSION = (
    "Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a NumPy array explicitly."
)

#: NumPy attributes a CuPy array does not have: each would hand host memory to C code
_NOT_ON_DEVICE = {"ctypes", "data", "tofile"}


class ndarray(NDArrayOperatorsMixin):
    """A 'device' array: NumPy memory inside, CuPy's rules outside.

    ``ndarray(shape, dtype)`` allocates, as ``cupy.ndarray`` does; the fake wraps results
    with :func:`_wrap`.
    """

    __array_priority__ = 100  # NumPy defers to us in mixed binary operations, as to CuPy

    def __init__(self, shape, dtype=float):
        object.__setattr__(self, "_a", np.empty(shape, dtype=dtype))

    @classmethod
    def _of(cls, a):
        self = object.__new__(cls)
        object.__setattr__(self, "_a", a)
        return self

    # -- what CuPy refuses ---------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError(IMPLICIT_CONVERSION)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        _refuse_host(inputs, f"{ufunc.__name__}")
        if "out" in kwargs:
            _refuse_host(kwargs["out"], f"{ufunc.__name__}(out=)")
            kwargs["out"] = tuple(_unwrap(o) for o in kwargs["out"])
        result = getattr(ufunc, method)(*(_unwrap(i) for i in inputs), **_unwrap_kwargs(kwargs))
        return _wrap(result)

    def __array_function__(self, func, types_, args, kwargs):
        # CuPy answers NumPy's functions with its own (np.concatenate of CuPy arrays works)
        _refuse_host_args(func.__name__, args, kwargs, f"numpy.{func.__name__}")
        return _wrap(func(*_unwrap(args), **_unwrap_kwargs(kwargs)))

    # -- indexing --------------------------------------------------------------------------
    def __getitem__(self, index):
        _refuse_host(index if isinstance(index, tuple) else (index,), "indexing")
        return _wrap(self._a[_unwrap_index(index)])

    def __setitem__(self, index, value):
        _refuse_host(index if isinstance(index, tuple) else (index,), "indexing")
        _refuse_host((value,), "assignment")
        self._a[_unwrap_index(index)] = _unwrap(value)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(row) for row in self._a)

    # -- what CuPy allows: an explicit copy, and Python scalars from 0-d arrays (a sync) --------
    def get(self):
        return np.array(self._a, copy=True)

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __complex__(self):
        return complex(self._a)

    def __bool__(self):
        return bool(self._a)

    def __index__(self):
        return self._a.__index__()

    def __format__(self, spec):
        return format(self._a.item() if self._a.ndim == 0 else self._a, spec)

    def __repr__(self):
        return repr(self._a).replace("array(", "fake_cupy.array(", 1)

    def __str__(self):
        return str(self._a)

    def __copy__(self):
        return ndarray._of(self._a.copy())

    def __deepcopy__(self, memo):
        return ndarray._of(self._a.copy())

    # -- everything else: NumPy's attribute, with device arrays in and out ------------------
    def __getattr__(self, name):
        if name in _NOT_ON_DEVICE or name.startswith("__"):
            raise AttributeError(f"fake CuPy: a device array has no attribute {name!r}")
        value = getattr(object.__getattribute__(self, "_a"), name)
        if not callable(value):
            return _wrap(value)

        def method(*args, **kwargs):
            _refuse_host(args, f"ndarray.{name}")
            _refuse_host(tuple(kwargs.values()), f"ndarray.{name}")
            return _wrap(value(*_unwrap(args), **_unwrap_kwargs(kwargs)))

        return method

    def __setattr__(self, name, value):  # a.shape = ... reshapes in place, as in NumPy
        setattr(self._a, name, value)


def _is_host(a):
    return type(a) is np.ndarray and a.ndim > 0


def _refuse_host(items, what):
    for a in items:
        if isinstance(a, (list, tuple)):
            _refuse_host(a, what)
        elif _is_host(a):
            raise TypeError(
                f"fake CuPy: a host numpy.ndarray of shape {a.shape} reached {what} on the device "
                "(CuPy refuses implicit host-device mixing)"
            )


def _refuse_host_args(name, args, kwargs, what):
    """:func:`_refuse_host` over a call's arguments, but for those CuPy reads on the host."""
    key, position = _HOST_PARAMS.get(name, (None, None))
    _refuse_host(tuple(a for i, a in enumerate(args) if i != position), what)
    _refuse_host(tuple(v for k, v in kwargs.items() if k != key), what)


def _unwrap(a):
    if isinstance(a, ndarray):
        return a._a
    if isinstance(a, (list, tuple)):
        return type(a)(_unwrap(v) for v in a)
    return a


def _unwrap_kwargs(kwargs):
    return {k: _unwrap(v) for k, v in kwargs.items()}


def _unwrap_index(index):
    return tuple(_unwrap(i) for i in index) if isinstance(index, tuple) else _unwrap(index)


def _wrap(a):
    if type(a) is np.ndarray:
        return ndarray._of(a)
    if isinstance(a, np.generic):
        return ndarray._of(np.asarray(a))
    if isinstance(a, tuple):
        return tuple(_wrap(v) for v in a)
    if isinstance(a, list):
        return [_wrap(v) for v in a]
    return a


def _function(name, fn):
    def call(*args, **kwargs):
        if name not in _HOST_IN:
            _refuse_host_args(name, args, kwargs, f"cupy.{name}")
        from_host = name in _HOST_IN and bool(args) and not isinstance(args[0], ndarray)
        result = fn(*_unwrap(args), **_unwrap_kwargs(kwargs))
        if from_host and type(result) is np.ndarray:
            result = np.array(result, copy=True)  # a transfer makes a new buffer
        elif args and isinstance(args[0], ndarray) and result is args[0]._a:
            return args[0]  # cupy.asarray(a) is a: the same array, not a new one on the same memory
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
        self.twin(
            *(
                a._a.reshape(-1) if isinstance(a, ndarray) else (a.item() if isinstance(a, np.generic) else a)
                for a in args
            )
        )


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
    mod.cuda = types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=get_device_count),
        Device=_Device,
        memory=types.SimpleNamespace(OutOfMemoryError=OutOfMemoryError),
    )
    mod.random = types.SimpleNamespace(RandomState=_RandomState)
    return mod


def make_cupyx():
    """A fake ``cupyx`` (CuPy's companion package) with ``scatter_add``: ``a[indices] += values``
    with repeats adding up, on device arrays only, as ``cupyx.scatter_add`` is. A test puts it in
    ``sys.modules['cupyx']`` (``monkeypatch.setitem``) beside :func:`make_module`'s ``cupy``."""
    mod = types.ModuleType("cupyx")

    def scatter_add(a, slices, value):
        if not isinstance(a, ndarray):
            raise TypeError(f"fake cupyx.scatter_add: the target must be a device array; got {type(a).__name__}")
        _refuse_host(slices if isinstance(slices, tuple) else (slices,), "cupyx.scatter_add indices")
        _refuse_host((value,), "cupyx.scatter_add values")
        np.add.at(a._a, _unwrap_index(slices), _unwrap(value))

    mod.scatter_add = scatter_add
    return mod
