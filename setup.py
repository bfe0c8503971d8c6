"""Build hook: the optional C kernels (convolab/kernels/_ckernels.c).

The extension is ``optional``: without a C compiler the install still succeeds and convolab
runs on its NumPy code paths. All metadata lives in pyproject.toml.
"""
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "convolab.kernels._ckernels",
            sources=["src/convolab/kernels/_ckernels.c"],
            extra_compile_args=["-O3", "-fno-math-errno", "-fno-tree-loop-distribute-patterns"],
            optional=True,
        )
    ]
)
