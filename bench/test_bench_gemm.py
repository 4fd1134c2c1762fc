"""GEMM speed: fastnn._kernels.gemm against numpy's matmul (its BLAS), side by side.

Square sizes 64 .. 2048 at 1 and 2 threads, and every product of the reference workloads' steps at batches 1, 32
and 256 (read off the built layers by `fastnn.benchmarks.workloads.step_gemms`: forward X @ W, weight gradient
X^T @ dY (trans_a), input gradient dY @ W^T (trans_b); for convolutions X is the im2col matrix) at the
workloads' thread count ($FASTNN_BENCH_THREADS, default 2). Each case reports GFLOP/s, the fraction of the FMA
peak measured at the start of the session and the speed ratio numpy_time / fastnn_time (> 1: fastnn is faster).
Run::

    python -m pytest bench/test_bench_gemm.py --benchmark-enable -q [-k square]
"""
import os

import numpy as np
import pytest

from fastnn import _kernels
from fastnn.benchmarks import workloads
from fastnn.benchmarks.yardstick import blas_threads

THREADS = [t for t in (1, 2) if t <= (os.cpu_count() or 1)]
SQUARE = [(n, n, n, False, False) for n in (64, 128, 256, 512, 1024, 2048)]


def workload_gemms():
    """{(m, k, n, trans_a, trans_b): "workload layer role"} over the workloads this fastnn can build."""
    found = {}
    for name in workloads.WORKLOADS:
        if workloads.unavailable_reason(name):
            continue
        model = workloads.build_model(name)
        for batch in workloads.BATCHES:
            for g in workloads.step_gemms(model, batch, "train"):
                found.setdefault((g.m, g.k, g.n, g.trans_a, g.trans_b), f"{name} B{batch} {g.layer} {g.role}")
    return found


WORKLOAD_GEMMS = workload_gemms()
CASES = [(case, t, "square") for case in SQUARE for t in THREADS]
CASES += [(case, workloads.bench_threads(), origin) for case, origin in WORKLOAD_GEMMS.items()
          if workloads.bench_threads() in THREADS]


def case_id(case):
    m, k, n, trans_a, trans_b = case
    return f"{m}x{k}x{n}" + ("-tA" if trans_a else "") + ("-tB" if trans_b else "")


@pytest.mark.parametrize("case, threads, origin", CASES,
                         ids=[f"{origin.split()[0]}-{case_id(c)}-{t}thr" for c, t, origin in CASES])
def test_gemm_vs_numpy(benchmark, fma_peak, side_by_side, report_row, case, threads, origin):
    m, k, n, trans_a, trans_b = case
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    c = np.empty((m, n), np.float32)
    c_np = np.empty((m, n), np.float32)
    op_a, op_b = (a.T if trans_a else a), (b.T if trans_b else b)

    def ours():
        _kernels.gemm(a, b, c, trans_a, trans_b, False, None, 0, 0.0, threads)

    def theirs():
        np.matmul(op_a, op_b, out=c_np)

    with blas_threads(threads):
        t_ours, t_theirs, ratio = side_by_side(ours, theirs, settle=0.12 if threads > 1 else 0.0)
        benchmark.group = "gemm square" if origin == "square" else "gemm workload shapes"
        benchmark.pedantic(ours, rounds=20, iterations=max(1, int(2e-3 / t_ours)), warmup_rounds=2)
    np.testing.assert_allclose(c, c_np, rtol=1e-3, atol=1e-3 * np.sqrt(k))

    flops = 2.0 * m * n * k
    peak = fma_peak(threads)
    info = {
        "threads": threads,
        "fastnn_us": round(t_ours * 1e6, 2),
        "numpy_us": round(t_theirs * 1e6, 2),
        "fastnn_gflops": round(flops / t_ours / 1e9, 1),
        "numpy_gflops": round(flops / t_theirs / 1e9, 1),
        "peak_gflops": round(peak, 1),
        "peak_fraction": round(flops / t_ours / 1e9 / peak, 3),
        "ratio_vs_numpy": round(ratio, 3),
    }
    benchmark.extra_info.update(info, origin=origin)
    report_row({"case": case_id(case), "origin": origin, **info}, table="GEMM: fastnn vs numpy (medians)")
