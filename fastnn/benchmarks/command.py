"""``python -m fastnn bench``: the comparison table, the regression gate and its baseline (options in __main__)."""
import datetime
import importlib.util
import os
import platform
import sys

import numpy as np

import fastnn

from . import gate, peers, report, runner, workloads
from .yardstick import Yardstick, blas_description, fma_peak

DEFAULT_ROUNDS = 15


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "unknown")
    except OSError:
        return platform.processor() or "unknown"


def environment(threads, peer_status=None, peak=None):
    """What a run was measured with and on, including the load average at its start."""
    cpu = fastnn.cpu_info()
    env = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "fastnn": fastnn.__version__, "isa": cpu["isa"], "cpu": _cpu_model(), "cpus": os.cpu_count(),
           "threads": threads, "python": platform.python_version(), "numpy": np.__version__,
           "yardstick": Yardstick().describe()}
    if importlib.util.find_spec("threadpoolctl") is None:
        env["yardstick"]["threads"] = "NumPy's default (install threadpoolctl to pin it to --threads)"
    else:
        env["yardstick"]["blas"] = blas_description()
    if hasattr(os, "getloadavg"):
        env["load_average"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    if peak:
        env["fma_peak_gflops"] = round(peak["gflops"], 1)
        env["fma_probe_gflops"] = f"{peak['measured_gflops']:.1f} on {threads} threads, " \
                                  f"{peak['one_thread_gflops']:.1f} on 1"
    for peer, (ok, detail) in (peer_status or {}).items():
        if ok:
            env[peer] = detail
    return env


def _options(args, rounds, threads):
    return runner.Options(rounds=rounds, round_seconds=args.round_ms / 1e3, threads=threads)


def _selected_cells(args):
    """Cell names of the --workload/--batch/--phase selection, or None when none of them was given."""
    if args.workload is None and args.batch is None and args.phase is None:
        return None
    return {runner.cell_key(n, p, b) for n in args.workload or workloads.WORKLOADS
            for b in args.batch or workloads.BATCHES for p in args.phase or workloads.PHASES}


def _progress(row):
    parts = [f"{peers.LABELS[e]} {ms:.4g} ms" for e, ms in row["ms"].items()]
    print(f"{row['cell']}: " + ", ".join(parts), file=sys.stderr, flush=True)


def _compare(args):
    threads = args.threads or workloads.DEFAULT_THREADS
    peer_status = peers.availability() if args.peers else {}
    peer_names = [p for p, (ok, _) in peer_status.items() if ok]
    peak = fma_peak(threads)
    env = environment(threads, peer_status, peak)
    print(", ".join(f"{k}: {v}" for k, v in env.items()), flush=True)
    rows, unavailable = runner.run(args.workload or list(workloads.WORKLOADS), args.batch or workloads.BATCHES,
                                   args.phase or workloads.PHASES,
                                   runner.Options(args.rounds or DEFAULT_ROUNDS, args.round_ms / 1e3, threads,
                                                  peak_gflops=peak["gflops"]),
                                   peer_names, on_row=_progress)
    print(report.text_table(rows, unavailable, peer_status))
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(report.markdown_table(rows, unavailable, peer_status, env))
    if args.json:
        report.write_json(args.json, rows, unavailable, peer_status, env)
    return 0


def _gate(args):
    baseline = gate.load_baseline(args.gate)
    threads = baseline["threads"]
    if args.threads and args.threads != threads:
        raise gate.BaselineError(f"{args.gate} was measured on {threads} threads; --threads {args.threads} "
                                 f"would compare different things (refresh it with --update-baseline)")
    options = _options(args, args.rounds or baseline.get("rounds", DEFAULT_ROUNDS), threads)
    env = environment(threads)
    print(", ".join(f"{k}: {v}" for k, v in env.items()), flush=True)
    then = baseline.get("environment", {}).get("yardstick", {}).get("blas")
    now = env["yardstick"].get("blas")
    if then and now and then != now:
        print(f"warning: the baseline's yardstick ran on {then}, this one on {now}; the ratios compare "
              f"different BLAS kernels", file=sys.stderr, flush=True)
    verdicts = gate.check(baseline, options, args.tolerance, _selected_cells(args))
    print(gate.format_verdicts(verdicts, args.tolerance))
    return 0 if all(v.passed for v in verdicts) else 1


def _update_baseline(args):
    cells = _selected_cells(args)
    previous = None
    if os.path.exists(args.gate):
        previous = gate.load_baseline(args.gate)
        cells = cells or set(previous["cells"])
    cells = cells or {runner.cell_key(n, p, b) for n in workloads.WORKLOADS for b in workloads.BATCHES
                      for p in workloads.PHASES}
    threads = args.threads or (previous["threads"] if previous else workloads.DEFAULT_THREADS)
    options = _options(args, args.rounds or DEFAULT_ROUNDS, threads)
    ratios = gate.measure_ratios(sorted(cells), options)
    if not ratios:
        raise gate.BaselineError(f"none of the cells {sorted(cells)} can run in this fastnn: nothing to write")
    gate.save_baseline(args.gate, ratios, options, environment(threads))
    for cell, ratio in sorted(ratios.items()):
        print(f"{cell}: {ratio:.4f}")
    skipped = sorted(cells - set(ratios))
    print(f"wrote {len(ratios)} cells to {args.gate}" + (f"; not runnable here: {', '.join(skipped)}" if skipped
                                                          else ""))
    return 0


def run(args):
    """Run ``fastnn bench`` with parsed arguments; returns the exit status (1: the gate failed)."""
    if args.update_baseline and not args.gate:
        print("fastnn bench: --update-baseline needs --gate BASELINE, the file to write", file=sys.stderr)
        return 2
    try:
        if args.gate:
            return _update_baseline(args) if args.update_baseline else _gate(args)
        return _compare(args)
    except gate.BaselineError as error:
        print(f"fastnn bench: {error}", file=sys.stderr)
        return 2
