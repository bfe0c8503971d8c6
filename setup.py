"""Build hook: the optional C kernels (convolab/kernels/*.c, one file per family; kernels.h lists them).

The extension is ``optional``: without a C compiler the install still succeeds and convolab
runs on its NumPy code paths. All metadata lives in pyproject.toml.
"""

import pathlib

from setuptools import Extension, setup

ROOT = pathlib.Path(__file__).parent
KERNELS = "src/convolab/kernels"
# Every .c file there is one translation unit of the one extension (.ci/sanitize builds the
# same set); the headers are listed so that editing one rebuilds, and so that sdists carry them.
SOURCES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / KERNELS).glob("*.c"))
HEADERS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / KERNELS).glob("*.h"))

setup(
    ext_modules=[
        Extension(
            "convolab.kernels._ckernels",
            sources=SOURCES,
            depends=HEADERS,
            extra_compile_args=["-O3", "-fno-math-errno", "-fno-tree-loop-distribute-patterns"],
            optional=True,
        )
    ]
)
