"""Side-by-side timing of the engines on one cell (workload x batch x phase), interleaved, medians.

Every engine, and the yardstick, runs in rounds: in each round each callable gets a block of consecutive calls
(about `round_seconds` of them, one timestamp per call) after one untimed call, and the order of the blocks
rotates from round to round (A B C, B C A, ...), so slow drifts of the machine fall on all engines alike. With
several threads, each block starts after `settle_seconds` of sleep: thread pools keep spinning for a while
after a call (OpenBLAS ~0.1 s, OpenMP and ONNX Runtime less), and on two cores a spinning pool is charged to
whoever runs next. An engine's time is the median of all its calls; a ratio between two engines is the median
of their per-round ratios, so a burst of load from elsewhere skews a round, not the result.
"""
import statistics
import time

import fastnn
from fastnn import _threads

from . import peers, workloads
from .yardstick import Yardstick, blas_threads

YARDSTICK = "yardstick"


def call_times(fn, n):
    """Seconds taken by each of n consecutive calls of fn."""
    times = [0.0] * n
    clock = time.perf_counter
    start = clock()
    for i in range(n):
        fn()
        stop = clock()
        times[i] = stop - start
        start = stop
    return times


def measure_interleaved(fns, rounds=15, round_seconds=0.03, warmup_seconds=0.2, settle_seconds=0.0):
    """Time several callables side by side.

    Parameters
    ----------
    fns : dict of str -> callable
    rounds : int
        Rounds; in each, every callable runs once untimed, then a block of timed calls in a row.
    round_seconds : float
        Wall time of a block; it sets each callable's number of calls per block (at least one).
    warmup_seconds : float
        Untimed calls of each callable before the rounds (at least three).
    settle_seconds : float
        Sleep before each block, letting the previous callable's threads go idle.

    Returns
    -------
    dict of str -> dict with "median_s" (median seconds per call over all rounds), "round_medians_s" (one
    median per round, in round order) and "calls_per_round".
    """
    calls = {}
    for label, fn in fns.items():
        n, start = 0, time.perf_counter()
        while n < 3 or time.perf_counter() - start < warmup_seconds:
            fn()
            n += 1
        per_call = statistics.median(call_times(fn, 3))
        calls[label] = max(1, int(round_seconds / max(per_call, 1e-9)))
    samples = {label: [] for label in fns}
    round_medians = {label: [] for label in fns}
    labels = list(fns)
    for r in range(rounds):
        shift = r % len(labels)
        for label in labels[shift:] + labels[:shift]:
            if settle_seconds:
                time.sleep(settle_seconds)
            fns[label]()
            times = call_times(fns[label], calls[label])
            samples[label].extend(times)
            round_medians[label].append(statistics.median(times))
    return {label: {"median_s": statistics.median(samples[label]), "round_medians_s": round_medians[label],
                    "calls_per_round": calls[label]} for label in fns}


def round_ratio(timed, numerator, denominator):
    """Median over rounds of numerator's round median / denominator's round median."""
    pairs = zip(timed[numerator]["round_medians_s"], timed[denominator]["round_medians_s"])
    return statistics.median(a / b for a, b in pairs)


def cell_key(name, phase, batch):
    """The name of a cell in tables, JSON and baselines: "mlp/train/B32"."""
    return f"{name}/{phase}/B{batch}"


def parse_cell_key(key):
    """(workload, phase, batch) from `cell_key`'s text."""
    name, phase, batch = key.split("/")
    return name, phase, int(batch.lstrip("B"))


class Options:
    """How to time: rounds, block length, settle time, thread count (see `measure_interleaved`), and the FMA
    peak GFLOP/s measured for this run (rows then carry fastnn's "peak_fraction")."""

    def __init__(self, rounds=15, round_seconds=0.03, threads=workloads.DEFAULT_THREADS, settle_seconds=None,
                 peak_gflops=None):
        self.rounds, self.round_seconds, self.threads, self.peak_gflops = rounds, round_seconds, threads, peak_gflops
        self.settle_seconds = (0.1 if threads > 1 else 0.0) if settle_seconds is None else settle_seconds


def build_cells(name, batch, peer_names=(), threads=workloads.DEFAULT_THREADS, make_fastnn=None):
    """Every engine's `Cell` for workload `name` at one batch, from the same weights and batch.

    Returns ({engine: Cell}, {peer: reason it could not be built}). `make_fastnn(model, x, y)` builds
    fastnn's cell (default `workloads.fastnn_cell`; tests pass a slowed-down one).
    """
    fastnn.set_num_threads(threads)
    model = workloads.build_model(name)
    x, y = workloads.make_batch(name, batch)
    cells = {"fastnn": (make_fastnn or workloads.fastnn_cell)(model, x, y)}
    failed = {}
    for peer in peer_names:
        try:
            cells[peer] = peers.make_cell(peer, name, model.get_weights(), x, y, threads)
        except Exception as error:  # one peer failing on one workload must not stop the run
            failed[peer] = f"{type(error).__name__}: {error}"
    return cells, failed


def measure_cell(cells, name, batch, phase, options, yardstick=None):
    """Time one phase of the engines in `cells` (and the yardstick) interleaved; a JSON-ready row.

    The row has the cell's names, "ms" {engine: median ms}, "speedup" {peer: peer ms / fastnn ms} with
    "best_peer" and "speedup_vs_best", "yardstick_ratio" (fastnn time / yardstick time, median of rounds),
    and fastnn's "gflops" (GEMM FLOPs of the step per second, `workloads.step_flops`).
    """
    fns = {engine: cell.phase(phase) for engine, cell in cells.items() if cell.phase(phase) is not None}
    fns[YARDSTICK] = yardstick or Yardstick()
    fastnn.set_num_threads(options.threads)
    with blas_threads(options.threads), _threads.exact_threads():
        timed = measure_interleaved(fns, options.rounds, options.round_seconds,
                                    settle_seconds=options.settle_seconds)
    ms = {engine: timed[engine]["median_s"] * 1e3 for engine in fns if engine != YARDSTICK}
    row = {"cell": cell_key(name, phase, batch), "workload": name, "batch": batch, "phase": phase,
           "threads": options.threads, "rounds": options.rounds, "ms": ms,
           "yardstick_ms": timed[YARDSTICK]["median_s"] * 1e3,
           "yardstick_ratio": round_ratio(timed, "fastnn", YARDSTICK)}
    row["speedup"] = {peer: round_ratio(timed, peer, "fastnn") for peer in ms if peer != "fastnn"}
    if row["speedup"]:
        best = min(row["speedup"], key=lambda peer: ms[peer])
        row.update(best_peer=best, speedup_vs_best=row["speedup"][best])
    flops = workloads.step_flops(cells["fastnn"].model, batch, phase)
    row["gflops"] = flops / (ms["fastnn"] * 1e-3) / 1e9
    if options.peak_gflops:
        row["peak_fraction"] = row["gflops"] / options.peak_gflops
    return row


def run(names, batches, phases, options, peer_names=(), on_row=None):
    """Measure every available cell; returns (rows, {workload: why unavailable}). `on_row(row)` sees each row
    as soon as it is measured; rows name the peers that failed to build under "peer_errors"."""
    rows, unavailable = [], {}
    yardstick = Yardstick()
    for name in names:
        reason = workloads.unavailable_reason(name)
        if reason:
            unavailable[name] = reason
            continue
        for batch in batches:
            cells, failed = build_cells(name, batch, peer_names, options.threads)
            for phase in phases:
                row = measure_cell(cells, name, batch, phase, options, yardstick)
                if failed:
                    row["peer_errors"] = failed
                rows.append(row)
                if on_row:
                    on_row(row)
    return rows, unavailable
