"""fastnn against PyTorch on the reference workloads (mlp by default; lenet, cnn32), measured side by side.

For every cell (workload x batch x phase) both engines run interleaved in rounds (A B, then B A, ...): each
round times a fixed number of consecutive calls of each engine, one timestamp per call, after one untimed call
(so the other engine's thread pool winding down is not charged to whoever runs next) and a warm-up. The
reported time is the median over all calls; the speed-up is torch / fastnn, with the spread of the per-round
ratios (25th-75th percentile) beside it. Cells of an engine that is not installed are skipped.

Usage (it times the fastnn of the tree it lives in, built in place)::

    python bench/compare_mlp.py [--workloads mlp,lenet,cnn32] [--batches 1,32,256] [--phases train,infer]
                                [--rounds 15] [--json out.json]
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

if __name__ == "__main__":  # run as a script: time the working tree's in-place build of fastnn
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fastnn  # noqa: E402
import workloads  # noqa: E402


def _call_times(fn, n):
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


def measure_interleaved(fns, rounds=15, round_seconds=0.03, warmup_seconds=0.2):
    """Time several callables side by side.

    Parameters
    ----------
    fns : dict of str -> callable
    rounds : int
        Rounds; in each, every callable runs once untimed and then a timed number of times in a row, the order
        flipping every round.
    round_seconds : float
        Wall time each callable gets per round; sets its number of calls per round after the warm-up.
    warmup_seconds : float
        Untimed calls of each callable before the rounds.

    Returns
    -------
    dict of str -> dict with "median_s" (median per-call seconds over all rounds), "round_medians_s"
    (one median per round) and "calls_per_round".
    """
    calls = {}
    for label, fn in fns.items():
        n, start = 0, time.perf_counter()
        while n < 3 or time.perf_counter() - start < warmup_seconds:
            fn()
            n += 1
        per_call = statistics.median(_call_times(fn, 5))
        calls[label] = max(1, int(round_seconds / max(per_call, 1e-9)))
    samples = {label: [] for label in fns}
    round_medians = {label: [] for label in fns}
    order = list(fns)
    for _ in range(rounds):
        for label in order:
            fns[label]()
            times = _call_times(fns[label], calls[label])
            samples[label].extend(times)
            round_medians[label].append(statistics.median(times))
        order.reverse()
    return {label: {"median_s": statistics.median(samples[label]), "round_medians_s": round_medians[label],
                    "calls_per_round": calls[label]} for label in fns}


def compare_cell(name, batch, phase, rounds=15, round_seconds=0.03):
    """Measure one cell for every installed engine; returns a JSON-ready dict (times in ms)."""
    cells = workloads.make_cells(name, batch)
    timed = measure_interleaved({engine: cell.phase(phase) for engine, cell in cells.items()}, rounds,
                                round_seconds)
    row = {"workload": name, "batch": batch, "phase": phase, "rounds": rounds}
    for engine, result in timed.items():
        row[f"{engine}_ms"] = result["median_s"] * 1e3
        row[f"{engine}_calls_per_round"] = result["calls_per_round"]
    if "torch" in timed:
        ratios = [t / f for t, f in zip(timed["torch"]["round_medians_s"], timed["fastnn"]["round_medians_s"])]
        q1, _, q3 = statistics.quantiles(ratios, n=4)
        row.update(speedup=row["torch_ms"] / row["fastnn_ms"], speedup_q25=q1, speedup_q75=q3)
    return row


def environment():
    """What the numbers were measured with."""
    env = {"python": platform.python_version(), "numpy": np.__version__, "fastnn": fastnn.__version__,
           "threads": workloads.THREADS, "cpu": fastnn.cpu_info()}
    if workloads.TORCH_AVAILABLE:
        env["torch"] = workloads.torch.__version__
    return env


TABLE_HEADER = (f"{'workload':8} {'batch':>5} {'phase':5} {'fastnn ms':>10} {'torch ms':>10} {'speed-up':>9} "
                f"{'round q25-q75':>15}")


def format_row(r):
    """One measured cell as a line under `TABLE_HEADER`."""
    torch_ms = f"{r['torch_ms']:10.4f}" if "torch_ms" in r else f"{'skipped':>10}"
    speedup = f"{r['speedup']:8.2f}x {r['speedup_q25']:7.2f}-{r['speedup_q75']:<7.2f}" if "speedup" in r else ""
    return f"{r['workload']:8} {r['batch']:5d} {r['phase']:5} {r['fastnn_ms']:10.4f} {torch_ms} {speedup}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="mlp", help="comma-separated names (default: mlp)")
    parser.add_argument("--batches", default=",".join(map(str, workloads.BATCHES)))
    parser.add_argument("--phases", default=",".join(workloads.PHASES))
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--round-ms", type=float, default=30.0, help="wall time per engine per round")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.rounds < 2:
        parser.error("--rounds must be at least 2 (the speed-up spread needs two rounds)")
    names = args.workloads.split(",")
    unknown = [n for n in names if n not in workloads.WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; known: {sorted(workloads.WORKLOADS)}")
    if not workloads.TORCH_AVAILABLE:
        print("torch is not installed: its cells are skipped (pip install torch==2.13.0)", file=sys.stderr)
    env = environment()
    print(" ".join(f"{k}={v}" for k, v in env.items()))
    print(TABLE_HEADER)
    rows = []
    for name in names:
        for batch in (int(b) for b in args.batches.split(",")):
            for phase in args.phases.split(","):
                rows.append(compare_cell(name, batch, phase, args.rounds, args.round_ms / 1e3))
                print(format_row(rows[-1]), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": env, "cells": rows}, f, indent=2)


if __name__ == "__main__":
    main()
