"""What fastnn's times are measured against, in the same run: a fixed NumPy matmul and the FMA peak.

A time divided by the yardstick's time, both measured interleaved at the same thread count, changes little when
the machine is busier or is another machine of a similar kind: the regression gate compares such ratios.
The FMA peak (fastnn's own probe, src/peak.c: independent FMA chains on every thread, with the instruction set
fastnn dispatches to) is what GFLOP/s are reported as a fraction of; it is measured at the start of every run,
never assumed.
"""
import contextlib

import numpy as np

from fastnn import _kernels

SIZE = 256  # 33.5 MFLOP: about a quarter of a millisecond on one core, long enough to time, short to interleave

# Environment variables that make OpenBLAS pick another CPU's kernels or cache sizes (seen: CORETYPE=Haswell on an
# AVX-512 machine halves the yardstick's speed). OpenBLAS reads them once, when NumPy loads.
BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


class Yardstick:
    """``yardstick()`` multiplies two fixed float32 SIZE x SIZE matrices with NumPy (its BLAS)."""

    kind = "numpy_matmul_f32"

    def __init__(self, size=SIZE, seed=0):
        rng = np.random.default_rng(seed)
        self.size = size
        self._a = rng.standard_normal((size, size), dtype=np.float32)
        self._b = rng.standard_normal((size, size), dtype=np.float32)
        self._c = np.empty((size, size), np.float32)

    def __call__(self):
        np.matmul(self._a, self._b, out=self._c)

    def describe(self):
        return {"kind": self.kind, "size": self.size}


def blas_overrides(environ):
    """{name: value} of the BLAS_OVERRIDES set in `environ`."""
    return {name: environ[name] for name in BLAS_OVERRIDES if name in environ}


def blas_description():
    """NumPy's BLAS as "openblas 0.3.31 SkylakeX" (library, version, the kernels it chose), or None when
    threadpoolctl is not installed or sees no BLAS."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    found = [" ".join(str(info[key]) for key in ("internal_api", "version", "architecture") if info.get(key))
             for info in threadpool_info() if info.get("user_api") == "blas"]
    return ", ".join(found) or None


@contextlib.contextmanager
def blas_threads(threads):
    """A context in which NumPy's BLAS runs on `threads` threads. It needs threadpoolctl; without it the BLAS is
    left alone and the context's value is False, so callers can say the yardstick's thread count is not pinned."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield False
        return
    with threadpool_limits(limits=threads, user_api="blas"):
        yield True


def _probe(threads, tries, seconds):
    return max(_kernels.fma_peak_gflops(seconds, threads) for _ in range(tries))


def fma_peak(threads, tries=10, seconds=0.03):
    """The float32 FMA peak of this machine on `threads` threads, measured now: a dict with "gflops" (what
    fractions of the peak are taken of), "measured_gflops" (the probe on `threads` threads) and
    "one_thread_gflops" (the probe on one).

    Each probe is the best of `tries` short runs (each the best of three of `seconds` / 3), as short runs
    often find the cores free on a shared machine. A parallel run lasts as long as its most-descheduled
    thread, so when other processes hold a core the `threads`-thread probe reads low; "gflops" is then
    `threads` times the one-thread probe (the cores are identical), never less than the direct probe.
    """
    measured = _probe(threads, tries, seconds)
    single = measured if threads == 1 else _probe(1, tries, seconds)
    return {"gflops": max(measured, threads * single), "measured_gflops": measured, "one_thread_gflops": single}
