"""Shared benchmark fixtures: the machine's FMA peak (measured once per session and thread count), a side-by-side
timer and the summary table printed at the end.

Run with ``python -m pytest bench -q --benchmark-enable`` (pyproject's addopts disable benchmarks for tests/).
Speeds are reported as ratios against something measured in the same run, interleaved, and as a fraction of
the FMA peak measured here (`fastnn.benchmarks.yardstick.fma_peak`), so they mean the same on a noisy or
different machine. The timing itself is `fastnn.benchmarks.runner.measure_interleaved`, the one behind
``python -m fastnn bench``.
"""
import os

# OpenBLAS tuning overrides would make numpy's side unrepresentative; they must go before numpy loads.
for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    if _var in os.environ:
        del os.environ[_var]

import pytest  # noqa: E402

from fastnn.benchmarks import runner, yardstick  # noqa: E402


@pytest.fixture(scope="session")
def fma_peak():
    """fma_peak(n_threads) -> the float32 FMA peak in GFLOP/s on that many threads, measured once (cached)."""
    cache = {}

    def peak(n_threads):
        if n_threads not in cache:
            cache[n_threads] = yardstick.fma_peak(n_threads)["gflops"]
        return cache[n_threads]

    return peak


def _side_by_side(first, second, rounds=9, block=0.02, settle=0.0, budget=None):
    """Time two callables interleaved (A B, B A, ...): (median s/call of first, of second, ratio second / first,
    the median of the per-round ratios). `settle` seconds of sleep before each block let the other library's
    threads go idle (see `runner.measure_interleaved`); `budget`, when given, sets the rounds to about that many
    seconds in all (at least three rounds)."""
    if budget is not None:
        rounds = max(3, int(budget / (2 * (block + settle))))
    timed = runner.measure_interleaved({"first": first, "second": second}, rounds, block, 0.05, settle)
    return timed["first"]["median_s"], timed["second"]["median_s"], runner.round_ratio(timed, "second", "first")


@pytest.fixture(scope="session")
def side_by_side():
    """side_by_side(first, second, ...) -> (seconds per call of first, of second, ratio second / first)."""
    return _side_by_side


_ROWS = {}


@pytest.fixture(scope="session")
def report_row():
    """report_row(dict, table="...") adds a line to a table printed at the end of the session."""
    def add(row, table="fastnn side by side (medians)"):
        _ROWS.setdefault(table, []).append(row)

    return add


def pytest_terminal_summary(terminalreporter):
    for title, rows in _ROWS.items():
        keys = list(dict.fromkeys(k for r in rows for k in r))
        widths = {k: max(len(k), *(len(str(r.get(k, ""))) for r in rows)) for k in keys}
        terminalreporter.section(title)
        terminalreporter.write_line("  ".join(k.rjust(widths[k]) for k in keys))
        for row in rows:
            terminalreporter.write_line("  ".join(str(row.get(k, "")).rjust(widths[k]) for k in keys))
