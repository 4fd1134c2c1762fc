"""Single rows against 512 or more rows of B (src/gemm_gemv_halves.c): k summed in two fixed halves, against the
float64 reference and against the two halves' products added, bit for bit."""
import numpy as np
import pytest

from fastnn import _kernels
from kernel_helpers import ISA_IDS, ISAS, isa
from test_ops_matmul import LINEAR, RELU, TANH, assert_close, expected, operands


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@pytest.mark.parametrize("n,k", [(1, 512), (7, 513), (256, 784), (10, 2049), (256, 4096), (300, 4097)])
def test_tall_gemv_in_two_halves(isa_index, n, k):
    """One row against 512 or more rows of B sums k in two fixed halves (src/gemm_gemv_halves.c): still within
    the reference's bound, accumulating, with bias and activation, into a row of a larger C."""
    rng = np.random.default_rng(n + k)
    a, b = operands(rng, 1, n, k, False, False)
    big_c = rng.standard_normal((3, n + 4)).astype(np.float32)
    before = big_c.copy()
    bias = rng.standard_normal(n).astype(np.float32)
    for accumulate, act in ((False, RELU), (True, TANH), (True, LINEAR)):
        big_c[...] = before
        with isa(isa_index):
            _kernels.gemm(a, b, big_c[1:2, 2:2 + n], False, False, accumulate, bias, act, 0.0, 2)
        c0 = before[1:2, 2:2 + n].astype(np.float64) if accumulate else None
        want, tol = expected(a, b, False, False, c0, bias, act)
        assert_close(big_c[1:2, 2:2 + n], want, tol)
        outside = np.ones(big_c.shape, bool)
        outside[1, 2:2 + n] = False
        np.testing.assert_array_equal(big_c[outside], before[outside])


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@pytest.mark.parametrize("k", [511, 512, 784, 1022])
def test_gemv_halves_are_two_chains_added(isa_index, k):
    """From k = 512 a single row is the sum of its two halves' products (each below 512: one chain) added in
    float32, then bias and relu, bit for bit, on 1 and 2 threads; below 512 it is one chain."""
    rng = np.random.default_rng(k)
    a, b = operands(rng, 1, 70, k, False, False)
    bias = rng.standard_normal(70).astype(np.float32)
    with isa(isa_index):
        assert _kernels.gemv_in_halves(1, k) == (k >= 512 and _kernels.ISA_NAMES[isa_index] != "generic")
        assert not _kernels.gemv_in_halves(2, k)
        got = [np.empty((1, 70), np.float32) for _ in range(2)]
        for threads, c in zip((1, 2), got):
            _kernels.gemm(a, b, c, False, False, False, bias, RELU, 0.0, threads)
        if _kernels.gemv_in_halves(1, k):
            h = k // 2
            halves = [np.empty((1, 70), np.float32) for _ in range(2)]
            _kernels.gemm(a[:, :h], b[:h], halves[0], False, False, False, None, LINEAR, 0.0, 1)
            _kernels.gemm(a[:, h:], b[h:], halves[1], False, False, False, None, LINEAR, 0.0, 1)
            want = np.maximum((halves[0] + halves[1]) + bias, np.float32(0))
        else:
            want = np.empty((1, 70), np.float32)
            _kernels.gemm(a, b, want, False, False, False, bias, RELU, 0.0, 1)
    np.testing.assert_array_equal(got[0], want)
    np.testing.assert_array_equal(got[1], want)
