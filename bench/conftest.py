"""Shared benchmark fixtures: the machine's FMA peak (measured once per session) and a side-by-side timer.

Run with ``python -m pytest bench -q --benchmark-enable`` (pyproject's addopts disable benchmarks for tests/).
Speeds are reported as ratios against something measured in the same run, interleaved, and as a fraction of
the FMA peak measured here, so they mean the same on a noisy or different machine.
"""
import os

# OpenBLAS tuning overrides would make numpy's side unrepresentative; they must go before numpy loads.
for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    if _var in os.environ:
        del os.environ[_var]

import time  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fastnn import _kernels  # noqa: E402

@pytest.fixture(scope="session")
def fma_peak():
    """fma_peak(n_threads) -> the measured float32 FMA peak in GFLOP/s on that many threads (cached)."""
    cache = {}

    def peak(n_threads):
        if n_threads not in cache:
            cache[n_threads] = _kernels.fma_peak_gflops(0.3, n_threads)
        return cache[n_threads]

    return peak


def _side_by_side(first, second, budget=0.6, block=0.02, settle=0.0, min_rounds=3):
    """Time two callables in alternating blocks (A B A B ...): (median s/call of first, of second, ratio).

    Each block runs one callable back to back for about `block` seconds and drops its first two calls (waking
    its threads). With several threads, `settle` seconds of sleep before each block let the other library's
    pool go idle first: OpenMP workers busy-wait a few ms after a call and OpenBLAS workers ~0.1 s, and on a
    2-core machine a spinning worker would be charged to whoever runs next. Times are medians of the block
    medians; the ratio (second / first) is the median of the ratios of neighbouring blocks, so a burst of
    load from elsewhere on a shared machine skews one round, not the result.
    """
    first(), second()
    t0 = time.perf_counter()
    first(), second()
    per_pair = max(time.perf_counter() - t0, 1e-7)
    calls = max(3, int(block / per_pair))
    rounds = []
    deadline = time.perf_counter() + budget
    while len(rounds) < min_rounds or (time.perf_counter() < deadline and len(rounds) < 400):
        medians = []
        for fn in (first, second):
            if settle:
                time.sleep(settle)
            fn(), fn()
            times = []
            for _ in range(calls):
                s = time.perf_counter()
                fn()
                times.append(time.perf_counter() - s)
            medians.append(float(np.median(times)))
        rounds.append(medians)
    rounds = np.array(rounds)
    ratio = float(np.median(rounds[:, 1] / rounds[:, 0]))
    return float(np.median(rounds[:, 0])), float(np.median(rounds[:, 1])), ratio


@pytest.fixture(scope="session")
def side_by_side():
    """side_by_side(first, second, ...) -> (seconds per call of first, of second, ratio second / first)."""
    return _side_by_side


_ROWS = []


@pytest.fixture(scope="session")
def report_row():
    """report_row(dict): adds a line to the table printed at the end of the session."""
    return _ROWS.append


def pytest_terminal_summary(terminalreporter):
    if not _ROWS:
        return
    keys = list(_ROWS[0])
    widths = {k: max(len(k), *(len(str(r.get(k, ""))) for r in _ROWS)) for k in keys}
    terminalreporter.section("fastnn vs numpy, side by side (medians)")
    terminalreporter.write_line("  ".join(k.rjust(widths[k]) for k in keys))
    for row in _ROWS:
        terminalreporter.write_line("  ".join(str(row.get(k, "")).rjust(widths[k]) for k in keys))
