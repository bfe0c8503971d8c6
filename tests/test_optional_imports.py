"""A user without the optional packages gets skips, never collection errors (issue 21).

onnx, onnxruntime, h5py, tensorboard(X), mpi4py, hypothesis and CuPy come with extras. A test module
that imports one of them at module level must do it through ``pytest.importorskip``, so that the
suite collects without it. This runs ``pytest --collect-only`` over tests/ in a fresh interpreter in
which the path finder does not see those packages, as if they were not installed.
"""

import subprocess
import sys

from support.paths import REPO, TESTS

OPTIONAL = ["onnx", "onnxruntime", "h5py", "tensorboardX", "tensorboard", "mpi4py", "hypothesis", "cupy", "cupyx"]

_COLLECT = """
import importlib.machinery, sys

BLOCKED = {blocked!r}
_find_spec = importlib.machinery.PathFinder.find_spec


def find_spec(cls, name, path=None, target=None):
    # None, as for a package that is not installed: imports raise ModuleNotFoundError and
    # importlib.util.find_spec answers None. Patched on the class, before pytest is imported, so
    # pytest's assertion-rewriting finder (which calls PathFinder.find_spec itself) misses them too.
    if name.split(".")[0] in BLOCKED:
        return None
    return _find_spec(name, path, target)


importlib.machinery.PathFinder.find_spec = classmethod(find_spec)
for name in [m for m in sys.modules if m.split(".")[0] in BLOCKED]:
    del sys.modules[name]

import pytest

# -p no:hypothesispytest: hypothesis's pytest plugin, which an install without hypothesis lacks too
sys.exit(pytest.main(["--collect-only", "-q", "-rs", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", {tests!r}]))
"""


def test_the_suite_collects_without_the_optional_packages():
    code = _COLLECT.format(blocked=OPTIONAL, tests=str(TESTS))
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    out = result.stdout + result.stderr
    # 0: collected; 2 would mean collection errors (an optional import not behind importorskip)
    assert result.returncode == 0, out[-6000:]
    assert "error" not in out.lower().split("short test summary info")[-1], out[-6000:]
    # the finder did hide them: the modules that need them were skipped, not collected
    assert "could not import 'hypothesis': No module named 'hypothesis'" in out, out[-6000:]
    assert "test_saving_fuzz.py" in out and "test_saving_onnx.py" in out, out[-6000:]
