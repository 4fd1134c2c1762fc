"""GEMM (src/gemm*.c through fastnn._kernels.gemm and fastnn.ops.matmul) against a float64 NumPy reference.

Every instruction set the CPU supports is exercised (forced with isa_select, restored afterwards); shapes are
drawn around the register tiles (1, odd, primes, non-multiples of 16/32) and up to ~1500 in one dimension.
"""
import inspect
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastnn import _kernels, _reference, ops
from kernel_helpers import isa, ISA_IDS, ISAS

EPS = float(np.finfo(np.float32).eps)
LINEAR, RELU, LEAKY, SIGMOID, TANH, GELU = range(6)

_erf = np.vectorize(math.erf, otypes=[np.float64])


def activate(z, act, alpha):
    if act == RELU:
        return np.maximum(z, 0.0)
    if act == LEAKY:
        return np.where(z > 0, z, alpha * z)
    if act == SIGMOID:
        return 1.0 / (1.0 + np.exp(-z))
    if act == TANH:
        return np.tanh(z)
    if act == GELU:
        return 0.5 * z * (1.0 + _erf(z / math.sqrt(2.0)))
    return z


def operands(rng, m, n, k, trans_a, trans_b):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    return a, b


def expected(a, b, trans_a, trans_b, c0=None, bias=None, act=LINEAR, alpha=0.0):
    """The float64 result and an error bound: 2 sqrt(k) eps times the scale of what was summed."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    opa, opb = (a64.T if trans_a else a64), (b64.T if trans_b else b64)
    z = opa @ opb
    scale = np.abs(opa) @ np.abs(opb)
    if c0 is not None:
        z, scale = z + c0, scale + np.abs(c0)
    if bias is not None:
        z, scale = z + bias, scale + np.abs(bias)
    k = opa.shape[1]
    tol = 2.0 * math.sqrt(k + 1) * EPS * scale + 4 * EPS * (1.0 + np.abs(z)) + 1e-30
    return activate(z, act, alpha), tol  # every activation here is at most ~1.13-Lipschitz


def assert_close(got, want, tol):
    assert got.shape == want.shape
    assert np.isfinite(got).all(), "non-finite values in the result"
    bad = np.abs(got - want) > 1.2 * tol
    assert not bad.any(), (f"{bad.sum()} of {bad.size} elements off; worst {np.abs(got - want).max():.3g} "
                           f"at {np.unravel_index(np.argmax(np.abs(got - want) - tol), got.shape)}")


SMALL = st.sampled_from([1, 2, 3, 5, 7, 11, 13, 16, 17, 31, 32, 33, 47, 64, 65, 97, 128, 129, 257])
shapes = st.one_of(
    st.tuples(SMALL, SMALL, SMALL),
    # one large dimension (crosses the k block, the A panel or several B blocks), the others small
    st.tuples(st.sampled_from([383, 700, 1031, 1500]), st.sampled_from([1, 3, 17, 33]),
              st.sampled_from([0, 1, 2])).map(
        lambda t: tuple(t[0] if i == t[2] else t[1] for i in range(3))),
)


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=shapes, trans_a=st.booleans(), trans_b=st.booleans(), accumulate=st.booleans(),
       use_bias=st.booleans(), act=st.sampled_from(range(6)), seed=st.integers(0, 2**32 - 1))
def test_gemm_matches_reference(isa_index, shape, trans_a, trans_b, accumulate, use_bias, act, seed):
    m, n, k = shape
    rng = np.random.default_rng(seed)
    a, b = operands(rng, m, n, k, trans_a, trans_b)
    c0 = rng.standard_normal((m, n)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32) if use_bias else None
    c = c0.copy() if accumulate else np.full((m, n), np.nan, np.float32)  # garbage must never be read
    with isa(isa_index):
        _kernels.gemm(a, b, c, trans_a, trans_b, accumulate, bias, act, 0.2, 1)
    want, tol = expected(a, b, trans_a, trans_b, c0 if accumulate else None, bias, act, 0.2)
    assert_close(c, want, tol)


# m and n >= 640 take the packed path: edges of every block (k block 384, B block 512, A panel 4096 rows).
PACKED_SHAPES = [(641, 673, 1), (700, 650, 385), (4200, 640, 9), (1031, 700, 33)]


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@pytest.mark.parametrize("m,n,k", PACKED_SHAPES)
def test_packed_path_matches_reference(isa_index, m, n, k):
    rng = np.random.default_rng(m + n + k)
    for case, (trans_a, trans_b) in enumerate(((False, False), (True, False), (False, True), (True, True))):
        a, b = operands(rng, m, n, k, trans_a, trans_b)
        c0 = rng.standard_normal((m, n)).astype(np.float32)
        bias = rng.standard_normal(n).astype(np.float32)
        act = (LINEAR, RELU, LEAKY, TANH)[case]
        c = c0.copy()
        with isa(isa_index):
            _kernels.gemm(a, b, c, trans_a, trans_b, case % 2 == 1, bias, act, 0.1, 2)
        want, tol = expected(a, b, trans_a, trans_b, c0 if case % 2 else None, bias, act, 0.1)
        assert_close(c, want, tol)


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul_mlp_shapes(isa_index, trans_a, trans_b):
    """The MLP workload's forward and backward shapes, batch 1, 32 and 256."""
    rng = np.random.default_rng(7)
    for batch in (1, 32, 256):
        for fan_in, fan_out in ((784, 256), (256, 128), (128, 10)):
            for m, k, n in ((batch, fan_in, fan_out), (fan_in, batch, fan_out), (batch, fan_out, fan_in)):
                a, b = operands(rng, m, n, k, trans_a, trans_b)
                with isa(isa_index):
                    got = ops.matmul(a, b, trans_a=trans_a, trans_b=trans_b)
                want, tol = expected(a, b, trans_a, trans_b)
                assert_close(got, want, tol)


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, True)])
def test_gemm_on_sub_blocks(isa_index, trans_a, trans_b):
    """Views into bigger arrays (leading dimension > row length); C's surroundings stay untouched."""
    rng = np.random.default_rng(3)
    m, n, k = 45, 70, 37
    big_a = rng.standard_normal((k + 9, m + 9) if trans_a else (m + 9, k + 9)).astype(np.float32)
    big_b = rng.standard_normal((n + 5, k + 5) if trans_b else (k + 5, n + 5)).astype(np.float32)
    big_c = rng.standard_normal((m + 6, n + 11)).astype(np.float32)
    a = big_a[3:3 + (k if trans_a else m), 2:2 + (m if trans_a else k)]
    b = big_b[1:1 + (n if trans_b else k), 4:4 + (k if trans_b else n)]
    before = big_c.copy()
    c = big_c[2:2 + m, 5:5 + n]
    bias = rng.standard_normal(n).astype(np.float32)
    with isa(isa_index):
        _kernels.gemm(a, b, c, trans_a, trans_b, True, bias, RELU, 0.0, 2)
    want, tol = expected(a, b, trans_a, trans_b, before[2:2 + m, 5:5 + n].astype(np.float64), bias, RELU)
    assert_close(c, want, tol)
    outside = np.ones(big_c.shape, bool)
    outside[2:2 + m, 5:5 + n] = False
    np.testing.assert_array_equal(big_c[outside], before[outside])


THREAD_SHAPES = [(200, 300, 150), (1000, 40, 64), (37, 700, 300), (2, 3000, 400), (1, 2000, 700), (300, 10, 256),
                 (600, 600, 97), (3000, 6, 100), (700, 650, 100), (1, 300, 2048), (1, 17, 4099)]


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@pytest.mark.parametrize("m,n,k", THREAD_SHAPES)
def test_thread_count_does_not_change_a_bit(isa_index, m, n, k):
    rng = np.random.default_rng(m * n + k)
    for trans_a, trans_b in ((False, False), (True, False), (False, True), (True, True)):
        a, b = operands(rng, m, n, k, trans_a, trans_b)
        c0 = rng.standard_normal((m, n)).astype(np.float32)
        bias = rng.standard_normal(n).astype(np.float32)
        results = []
        with isa(isa_index):
            for threads in (1, 2, 3):
                c = c0.copy()
                _kernels.gemm(a, b, c, trans_a, trans_b, True, bias, TANH, 0.0, threads)
                results.append(c)
        np.testing.assert_array_equal(results[0], results[1])
        np.testing.assert_array_equal(results[0], results[2])


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
def test_empty_dimensions(isa_index):
    rng = np.random.default_rng(0)
    bias = rng.standard_normal(4).astype(np.float32)
    with isa(isa_index):
        # k = 0: the product is zero, so C = act(bias), or act(C + bias) when accumulating
        c = np.full((3, 4), np.nan, np.float32)
        _kernels.gemm(np.empty((3, 0), np.float32), np.empty((0, 4), np.float32), c, bias=bias, act=RELU)
        np.testing.assert_array_equal(c, np.broadcast_to(np.maximum(bias, 0), (3, 4)))
        c0 = rng.standard_normal((3, 4)).astype(np.float32)
        c = c0.copy()
        _kernels.gemm(np.empty((0, 3), np.float32), np.empty((4, 0), np.float32), c, True, True, True)
        np.testing.assert_array_equal(c, c0)
        # m = 0 or n = 0: nothing to write
        assert ops.matmul(np.empty((0, 5), np.float32), np.ones((5, 4), np.float32)).shape == (0, 4)
        assert ops.matmul(np.ones((3, 5), np.float32), np.ones((5, 0), np.float32)).shape == (3, 0)
        np.testing.assert_array_equal(ops.matmul(np.ones((3, 0), np.float32), np.ones((0, 2), np.float32)),
                                      np.zeros((3, 2), np.float32))


def test_matmul_matches_its_reference_twin():
    assert inspect.signature(ops.matmul) == inspect.signature(_reference.matmul)
    rng = np.random.default_rng(11)
    for trans_a in (False, True):
        for trans_b in (False, True):
            a, b = operands(rng, 19, 23, 29, trans_a, trans_b)
            got = ops.matmul(a, b, trans_a, trans_b)
            want = _reference.matmul(a, b, trans_a, trans_b)
            _, tol = expected(a, b, trans_a, trans_b)
            assert got.dtype == want.dtype == np.float32
            assert_close(got, want.astype(np.float64), tol)


def test_matmul_out_and_casting():
    rng = np.random.default_rng(5)
    a64 = rng.standard_normal((6, 4))
    ints = rng.integers(-3, 4, size=(4, 5))
    out = np.empty((6, 5), np.float32)
    assert ops.matmul(a64, ints, out=out) is out
    want, tol = expected(a64.astype(np.float32), ints.astype(np.float32), False, False)
    assert_close(out, want, tol)
    # out may be one of the operands
    x = rng.standard_normal((8, 8)).astype(np.float32)
    want, tol = expected(x, x, False, True)
    assert_close(ops.matmul(x, x, trans_b=True, out=x), want, tol)


def test_nan_and_inf_propagate_like_numpy():
    a = np.ones((3, 4), np.float32)
    b = np.ones((4, 2), np.float32)
    a[1, 2] = np.nan
    b[0, 1] = np.inf
    got = ops.matmul(a, b)
    with np.errstate(invalid="ignore"):
        want = a @ b
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got[np.isfinite(want)], want[np.isfinite(want)])
    assert np.isnan(got[1]).all() and np.isinf(got[0, 1]) and np.isinf(got[2, 1])


def test_matmul_rejects_bad_inputs():
    f = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="2-dimensional"):
        ops.matmul(np.ones(4, np.float32), f)
    with pytest.raises(ValueError, match="2-dimensional"):
        ops.matmul(f, np.ones((4, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(3, 4\)"):
        ops.matmul(f, f)
    with pytest.raises(ValueError, match=r"\(3, 4\)\.T"):
        ops.matmul(f, np.ones((4, 2), np.float32), trans_a=True)
    with pytest.raises(TypeError, match="float32"):
        ops.matmul(np.array([["a", "b"]]), f)
    with pytest.raises(TypeError, match="float32"):
        ops.matmul(np.ones((2, 3), np.complex64), f)
    out = np.empty((3, 3), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        ops.matmul(f, f, trans_b=True, out=out)
    with pytest.raises(ValueError, match=r"shape \(3, 3\)"):
        ops.matmul(f, f, trans_b=True, out=np.empty((3, 4), np.float32))
    with pytest.raises(TypeError, match="float32"):
        ops.matmul(f, f, trans_b=True, out=np.empty((3, 3), np.float64))


def test_gemm_binding_rejects_what_would_be_out_of_bounds():
    f = np.ones((3, 4), np.float32)
    c = np.empty((3, 3), np.float32)
    with pytest.raises(ValueError, match=r"a \(3, 4\) @ b \(3, 4\) -> c \(3, 3\)"):
        _kernels.gemm(f, f, c)
    with pytest.raises(ValueError, match="contiguous"):
        _kernels.gemm(np.ones((3, 8), np.float32)[:, ::2], f, c, trans_b=True)
    with pytest.raises(ValueError, match="bias must have length 3"):
        _kernels.gemm(f, f, c, trans_b=True, bias=np.ones(4, np.float32))
    with pytest.raises(ValueError, match="invalid argument"):
        _kernels.gemm(f, f, c, trans_b=True, act=17)
    with pytest.raises(ValueError, match="a must be a 2-D float32 array, got 2 dimensions of format d"):
        _kernels.gemm(f.astype(np.float64), f, c, trans_b=True)
    with pytest.raises(ValueError, match="b must be a 2-D float32 array, got 1 dimensions"):
        _kernels.gemm(f, np.ones(4, np.float32), c, trans_b=True)
    with pytest.raises(ValueError, match="bias must be a 1-D float32 array"):
        _kernels.gemm(f, f, c, trans_b=True, bias=np.ones((1, 3), np.float32))
    with pytest.raises(ValueError, match="bias must be contiguous"):
        _kernels.gemm(f, f, c, trans_b=True, bias=np.ones(6, np.float32)[::2])
    with pytest.raises(TypeError):
        _kernels.gemm([[1.0]], f, c)
    with pytest.raises(ValueError, match="read-only"):
        c.flags.writeable = False
        _kernels.gemm(f, f, c, trans_b=True)


def test_gemm_binding_takes_any_float32_buffer():
    """Buffers other than NumPy arrays (a memoryview of one, explicit little-endian format) work like arrays."""
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((5, 7)).astype(np.float32), rng.standard_normal((7, 3)).astype(np.float32)
    c = np.zeros((5, 3), np.float32)
    _kernels.gemm(memoryview(a), b.astype("<f4"), memoryview(c), bias=memoryview(np.ones(3, np.float32)))
    np.testing.assert_allclose(c, a @ b + 1, rtol=1e-5, atol=1e-5)


def test_fma_peak_probe():
    assert _kernels.fma_peak_gflops(0.01, 1) > 0.1
    with pytest.raises(ValueError, match="seconds"):
        _kernels.fma_peak_gflops(0.0)


# Tall A with a short k (a convolution's pixels x its patch), as the direct path cuts it into row blocks that
# stay in L2 (about 512 KB of A each: 4092 rows at k = 32); k = 600 also crosses a k block. Blocks of C over
# 1 MB (9000 x 288, 270000 x 7) are computed in bands of rows, smaller ones (the first slice, 4500 x 65) in
# column strips.
TALL_SHAPES = [(270000, 7, 1), (12001, 33, 27), (9000, 288, 32), (8999, 10, 33), (4500, 65, 64), (700, 40, 600)]


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@pytest.mark.parametrize("m,n,k", TALL_SHAPES)
def test_tall_small_k_row_blocks(isa_index, m, n, k):
    """Matches the reference, has the same bits as the product of each row slice alone, on 1 and 2 threads."""
    rng = np.random.default_rng(m + n + k)
    cuts = (0, m // 13 + 1, m // 3 + 5, m)  # not multiples of any row tile or block
    for trans_a, trans_b in ((False, False), (False, True), (True, False)):
        a, b = operands(rng, m, n, k, trans_a, trans_b)
        bias = rng.standard_normal(n).astype(np.float32)
        with isa(isa_index):
            whole = [np.empty((m, n), np.float32) for _ in range(2)]
            for threads, c in zip((1, 2), whole):
                _kernels.gemm(a, b, c, trans_a, trans_b, False, bias, RELU, 0.0, threads)
            pieces = np.empty((m, n), np.float32)
            for r0, r1 in zip(cuts, cuts[1:]):
                part = a[:, r0:r1] if trans_a else a[r0:r1]
                _kernels.gemm(part, b, pieces[r0:r1], trans_a, trans_b, False, bias, RELU, 0.0, 1)
        want, tol = expected(a, b, trans_a, trans_b, None, bias, RELU)
        assert_close(whole[0], want, tol)
        np.testing.assert_array_equal(whole[0], whole[1])
        np.testing.assert_array_equal(whole[0], pieces)


# Transposed A with fewer than 16 columns of C, at least 16 rows and 2^12 .. 2^20 elements (weight gradients into
# n = 10 units) runs as C^T = B^T A into a buffer: n, m and the size of A around those limits, m around the tile
# widths, k across a k block (512).
NARROW_SHAPES = [(16, 1, 256), (17, 3, 241), (25, 6, 576), (33, 10, 125), (128, 10, 256), (257, 15, 600),
                 (100, 16, 64), (4000, 10, 300), (15, 10, 300), (40, 17, 33), (16, 10, 65536), (20, 7, 52429),
                 (128, 10, 32), (84, 10, 32)]


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@pytest.mark.parametrize("m,n,k", NARROW_SHAPES)
def test_narrow_transposed_a(isa_index, m, n, k):
    """Matches the reference with every epilogue, into C with and without padding between rows; the bits equal
    those of the same product with A copied untransposed (the plain direct path) and of 2 threads."""
    rng = np.random.default_rng(m * n + k)
    cases = [(False, False, False, LINEAR), (True, True, False, LINEAR), (False, True, True, LINEAR),
             (False, False, True, RELU), (True, True, True, SIGMOID), (False, True, True, LEAKY)]
    for trans_b, accumulate, use_bias, act in cases:
        a, b = operands(rng, m, n, k, True, trans_b)
        c0 = rng.standard_normal((m, n)).astype(np.float32)
        bias = rng.standard_normal(n).astype(np.float32) if use_bias else None
        padded = np.full((m, n + 3), np.nan, np.float32)
        with isa(isa_index):
            results = []
            for threads, c in ((1, c0.copy()), (2, c0.copy()), (1, padded[:, :n])):
                c[...] = c0
                _kernels.gemm(a, b, c, True, trans_b, accumulate, bias, act, 0.3, threads)
                results.append(c)
            plain = c0.copy()
            _kernels.gemm(np.ascontiguousarray(a.T), b, plain, False, trans_b, accumulate, bias, LINEAR, 0.0, 1)
        want, tol = expected(a, b, True, trans_b, c0 if accumulate else None, bias, act, 0.3)
        assert_close(results[0], want, tol)
        np.testing.assert_array_equal(results[0], results[1])
        np.testing.assert_array_equal(results[0], results[2])
        assert np.isnan(padded[:, n:]).all()
        if act == LINEAR:
            np.testing.assert_array_equal(results[0], plain)
