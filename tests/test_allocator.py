"""The allocator tuning is applied on glibc and can be switched off."""
import os
import subprocess
import sys

import pytest

CHECK = "import convolab, sys; sys.stdout.write(str(convolab.allocator.tuned))"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_tuned_on_import_unless_switched_off():
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        pytest.skip("not glibc")
    on = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True).stdout
    env = {**os.environ, "CONVOLAB_MALLOC_TUNING": "0"}
    off = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True, env=env).stdout
    assert (on, off) == ("True", "False")
