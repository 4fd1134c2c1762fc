"""The size of fastnn's OpenMP thread pool, and keeping that pool usable across fork().

fastnn's kernels use as many threads as OpenMP's `omp_get_max_threads()` says at the moment of the call, so
`set_num_threads`, the environment (FASTNN_NUM_THREADS, else OMP_NUM_THREADS, else all cores) and
threadpoolctl's `threadpool_limits` (which talks to the same OpenMP runtime) all steer the same number.

GNU libgomp keeps its worker threads in a pool; a child made by fork() inherits the pool's bookkeeping but not
its threads, and its first parallel region waits for them forever. So before each `os.fork()` (multiprocessing's
"fork" start method included) the forking thread releases its pool with `omp_pause_resource_all`: the child
then starts a fresh pool with the full thread count, and the parent rebuilds its own at its next kernel call.
"""
import contextlib
import ctypes
import os
import time

from . import _kernels

_OMP_PAUSE_SOFT = 1  # omp_pause_resource_t in omp.h
_CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
_SAMPLE_SECONDS = 0.05
_ADAPTIVE = os.environ.get("FASTNN_ADAPTIVE_THREADS", "1").strip() != "0"  # "0": keep every thread under load
_contention = [float("-inf"), False]  # when it was last sampled, and the answer


def effective_threads():
    """The number of threads the next kernel call will use."""
    return _kernels.omp_max_threads()


def contended():
    """Whether more tasks are runnable right now than this process has CPUs (Linux: /proc/loadavg's count of
    runnable tasks, sampled at most every 50 ms; False where it cannot be read).

    A parallel region ends when its slowest thread does, and a thread that waits for a CPU holds all the others:
    on a machine busy with other work, a 2-thread region can take a whole scheduler time slice. Training and
    inference steps then run on one thread (the same results: kernels never split a reduction).
    FASTNN_ADAPTIVE_THREADS=0 turns this off.
    """
    if not _ADAPTIVE:
        return False
    now = time.monotonic()
    if now - _contention[0] >= _SAMPLE_SECONDS:
        _contention[0] = now
        try:
            with open("/proc/loadavg", "rb") as f:
                running = int(f.read().split()[3].split(b"/")[0])  # this thread and any spinning workers count
        except (OSError, ValueError, IndexError):
            running = 0
        _contention[1] = running > _CPUS
    return _contention[1]


@contextlib.contextmanager
def exact_threads():
    """Within the block every step uses the thread count that is set, whatever the load (benchmarks compare
    engines at one thread count)."""
    global _ADAPTIVE
    saved, _ADAPTIVE = _ADAPTIVE, False
    try:
        yield
    finally:
        _ADAPTIVE = saved


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
        n = 0
    if n < 1:
        raise ValueError(f"FASTNN_NUM_THREADS must be a positive integer, got {value!r}")
    set_num_threads(n)


def _pool_release():
    """`omp_pause_resource_all` of the OpenMP runtime the extension links (looked up through the extension,
    so a runtime bundled into a wheel is found too), or None when the build has no OpenMP."""
    try:
        release = ctypes.CDLL(_kernels.__file__).omp_pause_resource_all
    except (OSError, AttributeError):
        return None
    release.argtypes = [ctypes.c_int]
    release.restype = ctypes.c_int
    return release


_release = _pool_release()
if _release is not None:
    os.register_at_fork(before=lambda: _release(_OMP_PAUSE_SOFT))
