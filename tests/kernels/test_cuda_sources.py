"""Every CUDA kernel source compiles (nvcc --ptx), so a syntax or type error fails CPU CI.

CuPy compiles ``RawModule`` code with NVRTC, which offers no host headers: the sources must
not lean on them, which nvcc (it includes ``cuda_runtime.h``) would not notice; a lint checks
that. Skipped where nvcc is absent.
"""

import re
import shutil
import subprocess

import pytest

from convolab.kernels.cuda import sources

NVCC = shutil.which("nvcc")


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize("suffix, ctype", sources.DTYPES)
def test_every_kernel_compiles_to_ptx(tmp_path, suffix, ctype):
    src = tmp_path / f"kernels{suffix}.cu"
    src.write_text(sources.module_source(suffix, ctype))
    out = tmp_path / "kernels.ptx"
    proc = subprocess.run(
        [NVCC, "--ptx", "-Werror", "all-warnings", str(src), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    entries = set(re.findall(r"\.entry\s+(\w+)", out.read_text()))
    assert entries == {name + suffix for name in sources.KERNELS}


@pytest.mark.parametrize("name", sorted(sources.KERNELS))
def test_sources_need_no_host_header(name):
    body = sources.kernel_source(name, "_f32", "float")
    for banned in ("#include", "INFINITY", "NAN", "HUGE_VAL", "printf", "std::"):
        assert banned not in body, f"{name} uses {banned}, which NVRTC does not provide without headers"
    assert f'extern "C" __global__ void {name}_f32(' in body


def test_launcher_names_exist_in_sources():
    import inspect

    from convolab.kernels import cuda

    launched = set(re.findall(r'launch\("(\w+)"', inspect.getsource(cuda)))
    assert launched == set(sources.KERNELS)
