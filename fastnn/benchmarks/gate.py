"""The regression gate: fastnn's time on each cell over the yardstick's, against a committed baseline.

A baseline file (``bench/baseline/*.json``) holds, per cell ("mlp/train/B32"), the median over interleaved rounds
of fastnn's time / the yardstick's time (`yardstick.Yardstick`, a fixed NumPy matmul at the same thread count),
with the thread count and timing options it was measured with. The gate measures the same ratios now and fails
when a cell's ratio is more than `tolerance` (25 % by default) above its baseline. A failing cell is measured
again, up to `MEASUREMENTS` times in all, and keeps its lowest ratio, so bursts of load on a shared machine (a
memory-bound cell and the compute-bound yardstick feel them differently) do not fail it while a real slowdown,
slow every time, does.
"""
import json
import os
from typing import NamedTuple

from . import runner

FORMAT = 1
DEFAULT_TOLERANCE = 0.25
MEASUREMENTS = 3  # of a failing cell, at most


class BaselineError(ValueError):
    """A baseline file that is missing, unreadable or not a baseline."""


class Verdict(NamedTuple):
    """One cell's comparison: `change` is measured / baseline - 1 (0.3 means 30 % slower)."""
    cell: str
    baseline: float
    measured: float  # nan when the cell could not be measured
    change: float
    passed: bool


def load_baseline(path):
    """The baseline at `path` as a dict; raises `BaselineError` saying what is wrong with it."""
    try:
        with open(path) as f:
            baseline = json.load(f)
    except OSError as error:
        raise BaselineError(f"cannot read the baseline {path}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise BaselineError(f"the baseline {path} is not JSON: {error}") from None
    if not isinstance(baseline, dict) or baseline.get("format") != FORMAT:
        raise BaselineError(f"{path} is not a fastnn bench baseline of format {FORMAT}")
    cells = baseline.get("cells")
    if not isinstance(cells, dict) or not cells or not all(
            isinstance(v, (int, float)) and v > 0 for v in cells.values()):
        raise BaselineError(f"{path}: 'cells' must map cell names to positive ratios, got {cells!r}")
    for key in cells:
        try:
            runner.parse_cell_key(key)
        except ValueError:
            raise BaselineError(f"{path}: bad cell name {key!r}; expected workload/phase/B<batch>") from None
    if not isinstance(baseline.get("threads"), int) or baseline["threads"] < 1:
        raise BaselineError(f"{path}: 'threads' must be a positive integer, got {baseline.get('threads')!r}")
    return baseline


def save_baseline(path, ratios, options, environment):
    """Write a baseline of `ratios` ({cell: ratio}) measured with `options`, atomically."""
    baseline = {"format": FORMAT,
                "what": "per cell: median over interleaved rounds of fastnn time / yardstick time",
                "threads": options.threads, "rounds": options.rounds, "round_seconds": options.round_seconds,
                "environment": environment, "cells": dict(sorted(ratios.items()))}
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    temporary = f"{path}.tmp"
    with open(temporary, "w") as f:
        json.dump(baseline, f, indent=2)
        f.write("\n")
    os.replace(temporary, path)


def compare(baseline_cells, measured, tolerance):
    """A `Verdict` per baseline cell: it passes when measured <= baseline * (1 + tolerance); a cell missing
    from `measured` (it could not run) fails."""
    verdicts = []
    for cell, base in baseline_cells.items():
        now = measured.get(cell, float("nan"))
        change = now / base - 1.0
        verdicts.append(Verdict(cell, base, now, change, now <= base * (1.0 + tolerance)))
    return verdicts


def measure_ratios(cells, options, make_fastnn=None):
    """{cell: fastnn time / yardstick time} for cell names; cells of a workload this fastnn cannot build are
    left out. `make_fastnn` is passed to `runner.build_cells`."""
    groups = {}
    for key in cells:
        name, phase, batch = runner.parse_cell_key(key)
        groups.setdefault((name, batch), []).append((key, phase))
    ratios = {}
    for (name, batch), members in groups.items():
        if runner.workloads.unavailable_reason(name):
            continue
        built, _ = runner.build_cells(name, batch, (), options.threads, make_fastnn)
        for key, phase in members:
            ratios[key] = runner.measure_cell(built, name, batch, phase, options)["yardstick_ratio"]
    return ratios


def check(baseline, options, tolerance=DEFAULT_TOLERANCE, cells=None, make_fastnn=None):
    """Measure the baseline's cells (or the subset `cells`) and compare; failing cells are measured again, up to
    `MEASUREMENTS` times in all, and keep their lowest ratio. Returns the verdicts."""
    wanted = {c: r for c, r in baseline["cells"].items() if cells is None or c in cells}
    measured = measure_ratios(wanted, options, make_fastnn)
    for _ in range(MEASUREMENTS - 1):
        failing = [v.cell for v in compare(wanted, measured, tolerance) if not v.passed and v.cell in measured]
        if not failing:
            break
        again = measure_ratios(failing, options, make_fastnn)
        measured.update({c: min(measured[c], again[c]) for c in failing})
    return compare(wanted, measured, tolerance)


def format_verdicts(verdicts, tolerance):
    """A table of the verdicts and a last line saying whether the gate passed and which cells failed."""
    width = max(len("cell"), *(len(v.cell) for v in verdicts))
    lines = [f"{'cell':<{width}}  {'baseline':>9}  {'now':>9}  {'change':>8}  verdict"]
    for v in verdicts:
        verdict = "ok" if v.passed else ("NOT RUN" if v.measured != v.measured else "SLOWER")
        lines.append(f"{v.cell:<{width}}  {v.baseline:9.4f}  {v.measured:9.4f}  {100 * v.change:+7.1f}%  {verdict}")
    failed = [v.cell for v in verdicts if not v.passed]
    if failed:
        lines.append(f"regression gate FAILED (tolerance {100 * tolerance:.0f}%): {', '.join(failed)}")
    else:
        lines.append(f"regression gate passed: {len(verdicts)} cells within {100 * tolerance:.0f}% of the baseline")
    return "\n".join(lines)
