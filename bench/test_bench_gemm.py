"""GEMM speed: fastnn._kernels.gemm against numpy's matmul (its BLAS), side by side, at 1 and 2 threads.

Square sizes 64 .. 1024 and the MLP workload's shapes (784-256-128-10 at batch 1, 32, 256): forward X @ W,
weight gradient X^T @ dY (trans_a) and input gradient dY @ W^T (trans_b). Each case reports GFLOP/s, the
fraction of the measured FMA peak and the speed ratio numpy_time / fastnn_time (> 1: fastnn is faster).
Targets (issue #3, 2 threads): >= 0.9x numpy at n = 512 and 1024, >= 1.0x at n <= 128 and on MLP shapes.
"""
import os

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from fastnn import _kernels

THREADS = [t for t in (1, 2) if t <= (os.cpu_count() or 1)]
SQUARE = [(n, n, n, False, False) for n in (64, 128, 256, 512, 1024)]
MLP = []
for _batch in (1, 32, 256):
    for _fan_in, _fan_out in ((784, 256), (256, 128), (128, 10)):
        MLP.append((_batch, _fan_in, _fan_out, False, False))  # forward: X @ W
        MLP.append((_fan_in, _batch, _fan_out, True, False))  # dW = X^T @ dY
        MLP.append((_batch, _fan_out, _fan_in, False, True))  # dX = dY @ W^T


def case_id(case):
    m, k, n, trans_a, trans_b = case
    return f"{m}x{k}x{n}" + ("-tA" if trans_a else "") + ("-tB" if trans_b else "")


@pytest.mark.parametrize("threads", THREADS, ids=[f"{t}thr" for t in THREADS])
@pytest.mark.parametrize("case", SQUARE + MLP, ids=case_id)
def test_gemm_vs_numpy(benchmark, fma_peak, side_by_side, report_row, case, threads):
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

    with threadpool_limits(limits=threads, user_api="blas"):
        t_ours, t_theirs, ratio = side_by_side(ours, theirs, settle=0.15 if threads > 1 else 0.0)
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
    benchmark.extra_info.update(info)
    report_row({"case": case_id(case), **info})
