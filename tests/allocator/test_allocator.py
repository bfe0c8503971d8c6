"""The allocator tuning: applied by the first fit on glibc (not by the import), and can be switched off."""

import os
import subprocess
import sys

import pytest

IMPORT = "import convolab, sys; sys.stdout.write(str(convolab.allocator.tuned))"
FIT = """import sys, numpy as np, convolab
from convolab import keras
before = convolab.allocator.tuned
model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(2)])
model.compile('sgd', 'mse')
model.fit(np.zeros((4, 3), np.float32), np.zeros((4, 2), np.float32), epochs=1, verbose=0)
sys.stdout.write(f'{before} {convolab.allocator.tuned}')"""


def _run(code, **env):
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ, **env}, timeout=120
    ).stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_tuned_by_the_first_fit_unless_switched_off():
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        pytest.skip("not glibc")
    assert _run(IMPORT) == "False"  # importing a library leaves the process's malloc alone
    assert _run(FIT) == "False True"
    assert _run(FIT, CONVOLAB_MALLOC_TUNING="0") == "False False"
