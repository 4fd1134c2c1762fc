"""Builds the one extension, fastnn._kernels, from fastnn/_kernels.pyx and the C kernels in src/.

-O3 and OpenMP only: never -march=native (the wheel must run on every x86-64; src/dispatch.c picks the
instruction set at run time) and never -ffast-math (it breaks NaN handling and determinism).
"""
import glob
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
c_sources = sorted(os.path.relpath(p, HERE) for p in glob.glob(os.path.join(HERE, "src", "*.c")))

ext = Extension(
    "fastnn._kernels",
    sources=["fastnn/_kernels.pyx"] + c_sources,
    include_dirs=["src"],
    depends=sorted(glob.glob(os.path.join("src", "*.h"))) + sorted(glob.glob(os.path.join("fastnn", "*.pxi"))),
    extra_compile_args=["-O3", "-g0", "-fopenmp", "-fno-math-errno", "-Wall", "-Wno-unused-function"],
    extra_link_args=["-fopenmp"],
)

setup(
    ext_modules=cythonize(
        [ext],
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    )
)
