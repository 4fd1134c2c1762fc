"""The size of fastnn's OpenMP thread pool.

fastnn's kernels use as many threads as OpenMP's `omp_get_max_threads()` says at the moment of the call, so
`set_num_threads`, the environment (FASTNN_NUM_THREADS, else OMP_NUM_THREADS, else all cores) and
threadpoolctl's `threadpool_limits` (which talks to the same OpenMP runtime) all steer the same number.
"""
import os

from . import _kernels


def effective_threads():
    """The number of threads the next kernel call will use."""
    return _kernels.omp_max_threads()


def set_num_threads(n):
    """Use `n` threads (n >= 1) in fastnn's kernels from now on."""
    if isinstance(n, bool) or not isinstance(n, (int,)) and not hasattr(n, "__index__"):
        raise TypeError(f"set_num_threads expects a positive integer, got {type(n).__name__}")
    n = int(n)
    if n < 1:
        raise ValueError(f"set_num_threads expects a positive integer, got {n}")
    _kernels.omp_set_threads(n)


def get_num_threads():
    """The number of threads fastnn's kernels use."""
    return effective_threads()


def apply_environment():
    """Honour FASTNN_NUM_THREADS at import (OMP_NUM_THREADS is read by the OpenMP runtime itself)."""
    value = os.environ.get("FASTNN_NUM_THREADS")
    if value is None or value.strip() == "":
        return
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"FASTNN_NUM_THREADS must be a positive integer, got {value!r}") from None
    set_num_threads(n)
