"""Activations, softmax, column sums and dropout (src/act.c + src/ew_*.c) against the NumPy reference.

Every instruction set the CPU supports is exercised (forced with isa_select, restored afterwards). Gradients
are checked twice against central differences in float64: the reference's formulas, and the kernels' output.
"""
import inspect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn import _kernels, _reference, ops
from kernel_helpers import isa, ISA_IDS, ISAS, threads

ELEMENTWISE = ("relu", "leaky_relu", "sigmoid", "tanh", "gelu", "linear")
CODES = {"linear": _kernels.ACT_LINEAR, "relu": _kernels.ACT_RELU, "leaky_relu": _kernels.ACT_LEAKY_RELU,
         "sigmoid": _kernels.ACT_SIGMOID, "tanh": _kernels.ACT_TANH, "gelu": _kernels.ACT_GELU}
# (rtol, atol) of the forward pass: exact where no rounding differs, a few ulp for the transcendental ones
FORWARD_TOL = {"relu": (0, 0), "leaky_relu": (0, 0), "linear": (0, 0), "sigmoid": (5e-7, 2e-38),
               "tanh": (5e-7, 2e-38), "gelu": (2e-6, 1e-36)}  # gelu: Phi(x) < FLT_MIN is flushed
SIZES = st.one_of(st.integers(1, 40), st.sampled_from([1, 7, 15, 16, 17, 31, 33, 63, 64, 65, 127, 257, 1031]))
FAST = settings(max_examples=25, deadline=None)


def sample(rng, shape, scale=3.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def central_difference(f, x, h=1e-6):
    """Element-wise derivative of an element-wise float64 function."""
    return (f(x + h) - f(x - h)) / (2 * h)


def test_signatures_match_reference():
    for name in ("activation", "activation_backward", "softmax", "softmax_backward", "column_sum", "dropout",
                 "dropout_backward"):
        assert inspect.signature(getattr(ops, name)) == inspect.signature(getattr(_reference, name)), name


# ---- forward ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@pytest.mark.parametrize("name", ELEMENTWISE)
@FAST
@given(rows=SIZES, cols=SIZES, scale=st.sampled_from([0.01, 1.0, 4.0, 40.0]), seed=st.integers(0, 2**31))
def test_activation_matches_reference(isa_index, name, rows, cols, scale, seed):
    x = sample(np.random.default_rng(seed), (rows, cols), scale)
    rtol, atol = FORWARD_TOL[name]
    with isa(isa_index):
        y = ops.activation(x, name, alpha=0.2)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y, _reference.activation(x, name, alpha=0.2), rtol=rtol, atol=atol)


SPECIAL = np.array([0.0, -0.0, 1e-30, -1e-30, 0.5, -0.5, 0.62, -0.63, 9.0, -9.0, 20.0, -20.0, 87.0, -87.0, 89.0,
                    -89.0, 104.0, -104.0, 1e4, -1e4, 3e38, -3e38, np.inf, -np.inf], dtype=np.float32)


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_activation_special_values(isa_index, name):
    with isa(isa_index):
        y = ops.activation(SPECIAL, name, alpha=0.2)
        y_nan = ops.activation(np.full(20, np.nan, np.float32), name)
    want = _reference.activation(SPECIAL, name, alpha=0.2)
    finite = np.isfinite(want)
    rtol, atol = FORWARD_TOL[name]
    np.testing.assert_allclose(y[finite], want[finite], rtol=rtol, atol=max(atol, 2e-38))
    np.testing.assert_array_equal(y[~finite], want[~finite])  # inf and NaN where the reference has them
    if name == "relu":
        assert (y_nan == 0).all()  # max(x, 0) as in the GEMM epilogue
    else:
        assert np.isnan(y_nan).all()


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_act_forward_bias_strided_and_in_place(isa_index, name):
    rng = np.random.default_rng(3)
    big = sample(rng, (9, 40))
    x = big[1:8, 3:24]  # rows 40 floats apart, 21 wide
    bias = sample(rng, 21)
    want = _reference.activation(x.astype(np.float64) + bias, name, 0.1)
    out = np.full((7, 30), np.nan, np.float32)
    with isa(isa_index):
        _kernels.act_forward(x, bias, out[:, 2:23], CODES[name], 0.1, 1)
        inplace = x + bias
        _kernels.act_forward(inplace, None, inplace, CODES[name], 0.1, 1)
    rtol, atol = FORWARD_TOL[name]
    np.testing.assert_allclose(out[:, 2:23], want, rtol=max(rtol, 1e-6), atol=max(atol, 1e-6))
    assert np.isnan(out[:, :2]).all() and np.isnan(out[:, 23:]).all()  # nothing written outside the view
    np.testing.assert_array_equal(inplace, out[:, 2:23])


@pytest.mark.parametrize("name", ELEMENTWISE + ("softmax",))
def test_threads_give_identical_bits_on_large_inputs(name):
    x = sample(np.random.default_rng(11), (301, 521))  # 156,821 elements: above every threading threshold
    dy = sample(np.random.default_rng(12), x.shape)
    results = []
    for n in (1, 2):
        with threads(n):
            y = ops.activation(x, name, alpha=0.2)
            results.append((y, ops.activation_backward(x, y, dy, name, alpha=0.2)))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
    rtol, atol = FORWARD_TOL.get(name, (1e-6, 1e-9))
    np.testing.assert_allclose(results[1][0], _reference.activation(x, name, alpha=0.2), rtol=rtol, atol=atol)


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown activation 'swish'.*relu, leaky_relu, sigmoid, tanh, gelu"):
        ops.activation([1.0], "swish")
    with pytest.raises(ValueError, match="valid names"):
        ops.activation_backward([1.0], [1.0], [1.0], None)


# ---- backward -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@pytest.mark.parametrize("name", ELEMENTWISE)
@FAST
@given(n=SIZES, seed=st.integers(0, 2**31))
def test_activation_backward_matches_reference(isa_index, name, n, seed):
    rng = np.random.default_rng(seed)
    x, dy = sample(rng, n), sample(rng, n, 1.0)
    y = _reference.activation(x, name, alpha=0.2)
    with isa(isa_index):
        dx = ops.activation_backward(x, y, dy, name, alpha=0.2)
    want = _reference.activation_backward(x, y, dy, name, alpha=0.2)
    np.testing.assert_allclose(dx, want, rtol=3e-6, atol=1e-7 * np.abs(dy).max())


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_activation_gradient_matches_finite_differences(name):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(400) * 3
    x = x[np.abs(x) > 1e-3]  # relu and leaky_relu have a kink at 0
    numeric = central_difference(lambda v: _reference._activation64(v, name, 0.2), x)
    # the reference's formula, in float64
    analytic = _reference._activation_slope64(x, _reference._activation64(x, name, 0.2), name, 0.2)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-9)
    # the kernel, fed the same points rounded to float32; sigmoid and tanh work from the float32 output y,
    # whose few ulp of rounding near +-1 show in 1 - y as an absolute error of a few 1e-7
    x32 = x.astype(np.float32)
    numeric32 = central_difference(lambda v: _reference._activation64(v, name, 0.2), x32.astype(np.float64))
    y32 = ops.activation(x32, name, alpha=0.2)
    dx = ops.activation_backward(x32, y32, np.ones_like(x32), name, alpha=0.2)
    np.testing.assert_allclose(dx, numeric32, rtol=2e-6, atol=5e-7)


def test_backward_uses_x_or_y_as_documented():
    x = np.array([-2.0, -0.0, 0.0, 3.0], np.float32)
    dy = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    relu_y = ops.activation(x, "relu")
    np.testing.assert_array_equal(ops.activation_backward(None, relu_y, dy, "relu"), [0, 0, 0, 4])
    np.testing.assert_array_equal(ops.activation_backward(x, None, dy, "relu"), [0, 0, 0, 4])
    np.testing.assert_allclose(ops.activation_backward(x, None, dy, "leaky_relu", alpha=0.5), [0.5, 1, 1.5, 4])
    np.testing.assert_array_equal(ops.activation_backward(None, None, dy, "linear"), dy)
    dx = np.empty(4, np.float32)
    _kernels.act_backward(None, None, dy, dx, _kernels.ACT_LINEAR, 0.0, 1)
    np.testing.assert_array_equal(dx, dy)
    inplace = dy.copy()  # dx may be dy
    _kernels.act_backward(x, None, inplace, inplace, _kernels.ACT_GELU, 0.0, 1)
    np.testing.assert_allclose(inplace, _reference.activation_backward(x, None, dy, "gelu"), rtol=2e-6)


@pytest.mark.parametrize("name, missing", [("gelu", "x"), ("sigmoid", "y"), ("tanh", "y"), ("relu", "x or y")])
def test_backward_without_the_needed_array_is_an_error(name, missing):
    x = np.ones(3, np.float32)
    args = (None, x) if missing == "x" else (x, None) if missing == "y" else (None, None)
    with pytest.raises(ValueError, match=f"{name} gradient needs {missing}"):
        ops.activation_backward(*args, x, name)
    with pytest.raises(ValueError, match=r"act_backward \(act=\d; x given"):
        _kernels.act_backward(args[0], args[1], x, x.copy(), CODES[name], 0.0, 1)


def test_bad_activation_arguments():
    with pytest.raises(ValueError, match=r"y has shape \(2,\) but dy has shape \(3,\)"):
        ops.activation_backward(None, np.ones(2), np.ones(3), "sigmoid")
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        ops.activation([1.0], "leaky_relu", alpha=-0.1)
    with pytest.raises(ValueError, match="alpha must be finite"):
        ops.activation([1.0], "relu", alpha=float("nan"))
    with pytest.raises(TypeError, match="float32 expected"):
        ops.activation(np.array(["a"]), "relu")
    with pytest.raises(ValueError, match=r"act_forward: y has shape \(2, 3\), x has shape \(3, 2\)"):
        _kernels.act_forward(np.ones((3, 2), np.float32), None, np.ones((2, 3), np.float32), 1, 0.0, 1)
    with pytest.raises(ValueError, match="bias has length 3, x has 2 columns"):
        _kernels.act_forward(np.ones((3, 2), np.float32), np.ones(3, np.float32), np.ones((3, 2), np.float32),
                             1, 0.0, 1)
    with pytest.raises(ValueError, match="rows must be contiguous"):
        _kernels.act_forward(np.ones((3, 4), np.float32)[:, ::2], None, np.ones((3, 2), np.float32), 1, 0.0, 1)
    with pytest.raises(ValueError, match="invalid argument"):
        _kernels.act_forward(np.ones((3, 2), np.float32), None, np.ones((3, 2), np.float32), 9, 0.0, 1)
    with pytest.raises(ValueError, match="lengths differ: dy 3, dx 2"):
        _kernels.act_backward(None, None, np.ones(3, np.float32), np.ones(2, np.float32), 0, 0.0, 1)


def test_empty_and_scalar_inputs():
    assert ops.activation(np.zeros((0, 5)), "tanh").shape == (0, 5)
    assert ops.activation(np.zeros((4, 0)), "gelu").shape == (4, 0)
    assert ops.softmax(np.zeros((0, 3))).shape == (0, 3)
    assert ops.column_sum(np.zeros((0, 3))).tolist() == [0, 0, 0]


# ---- softmax ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@FAST
@given(rows=SIZES, cols=SIZES, scale=st.sampled_from([0.1, 3.0, 100.0]), seed=st.integers(0, 2**31))
def test_softmax_matches_reference(isa_index, rows, cols, scale, seed):
    rng = np.random.default_rng(seed)
    x, dy = sample(rng, (rows, cols), scale), sample(rng, (rows, cols), 1.0)
    with isa(isa_index):
        y = ops.softmax(x)
        dx = ops.softmax_backward(y, dy)
    # x - max is rounded to float32: tiny probabilities carry |x - max| * 2^-24 relative error
    np.testing.assert_allclose(y, _reference.softmax(x), rtol=2e-6, atol=1e-12)
    np.testing.assert_allclose(y.sum(axis=1, dtype=np.float64), 1.0, rtol=2e-6)
    np.testing.assert_allclose(dx, _reference.softmax_backward(y, dy), rtol=1e-5, atol=2e-7)


def test_softmax_is_stable_for_huge_logits():
    x = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4], [3e38, 0.0, -3e38], [0.0, -np.inf, 0.0]], np.float32)
    y = ops.softmax(x)
    np.testing.assert_allclose(y, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3], [1, 0, 0], [0.5, 0, 0.5]], rtol=1e-6)
    y3 = ops.activation(x.reshape(2, 2, 3), "softmax")  # any rank: along the last axis
    np.testing.assert_array_equal(y3.reshape(4, 3), y)


def test_softmax_gradient_matches_finite_differences():
    rng = np.random.default_rng(8)
    x, r = rng.standard_normal((3, 7)), rng.standard_normal((3, 7))
    numeric = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = 1e-6
        numeric[idx] = ((r * _reference._softmax64(x + e)).sum() - (r * _reference._softmax64(x - e)).sum()) / 2e-6
    analytic = _reference.softmax_backward(_reference._softmax64(x), r)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)
    x32 = x.astype(np.float32)
    dx = ops.activation_backward(None, ops.softmax(x32), r, "softmax")
    np.testing.assert_allclose(dx, numeric, rtol=1e-3, atol=1e-5)


def test_softmax_in_place_and_bad_shapes():
    x = sample(np.random.default_rng(2), (5, 9))
    want = ops.softmax(x)
    _kernels.softmax_forward(x, x, 1)
    np.testing.assert_array_equal(x, want)
    with pytest.raises(ValueError, match=r"softmax_forward: y has shape \(5, 8\), x has shape \(5, 9\)"):
        _kernels.softmax_forward(x, np.empty((5, 8), np.float32), 1)
    with pytest.raises(ValueError, match=r"softmax_backward: shapes differ"):
        _kernels.softmax_backward(x, x, np.empty((4, 9), np.float32), 1)
    with pytest.raises(ValueError, match=r"y and dy must have the same shape, got \(5, 9\) and \(9, 5\)"):
        ops.softmax_backward(x, x.T)
    with pytest.raises(ValueError, match="needs y"):
        ops.activation_backward(x, None, x, "softmax")


# ---- column sums ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@FAST
@given(rows=SIZES, cols=st.one_of(SIZES, st.just(1300)), seed=st.integers(0, 2**31))
def test_column_sum_matches_reference(isa_index, rows, cols, seed):
    x = sample(np.random.default_rng(seed), (rows, cols), 10.0)
    with isa(isa_index):
        out = ops.column_sum(x)
    np.testing.assert_allclose(out, _reference.column_sum(x), rtol=1e-6, atol=1e-6)


def test_column_sum_of_higher_ranks_strides_and_accumulation():
    x = sample(np.random.default_rng(4), (2, 3, 5, 7))
    np.testing.assert_allclose(ops.column_sum(x), x.astype(np.float64).sum(axis=(0, 1, 2)), rtol=1e-6)
    big = sample(np.random.default_rng(5), (6, 20))
    out = np.ones(9, np.float32)
    _kernels.colsum(big[1:5, 4:13], out, True, 1)  # rows 20 floats apart, accumulated onto 1
    np.testing.assert_allclose(out, 1 + big[1:5, 4:13].astype(np.float64).sum(axis=0), rtol=1e-6)
    _kernels.colsum(np.zeros((0, 9), np.float32), out, False, 1)
    np.testing.assert_array_equal(out, 0)
    # float64 accumulation: 1e8 + many ones is not lost as it would be in float32
    y = np.ones((1001, 3), np.float32)
    y[0] = 1e8
    np.testing.assert_array_equal(ops.column_sum(y), np.float32(1e8 + 1000))
    with pytest.raises(ValueError, match=r"at least 2 dimensions.*shape \(4,\)"):
        ops.column_sum(np.ones(4))
    with pytest.raises(ValueError, match=r"colsum: out has length 3, x has shape \(2, 4\)"):
        _kernels.colsum(np.ones((2, 4), np.float32), np.ones(3, np.float32), False, 1)


def test_column_sum_threads_give_identical_bits():
    x = sample(np.random.default_rng(6), (150, 1500))
    with threads(1):
        one = ops.column_sum(x)
    with threads(2):
        two = ops.column_sum(x)
    np.testing.assert_array_equal(one, two)


# ---- dropout ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@FAST
@given(n=SIZES, rate=st.sampled_from([0.0, 0.1, 0.5, 0.9, 0.999]), seed=st.integers(0, 2**64 - 1))
def test_dropout_matches_reference_bitwise(isa_index, n, rate, seed):
    x = sample(np.random.default_rng(n), (n, 3))
    with isa(isa_index):
        y, mask = ops.dropout(x, rate, seed)
        dx = ops.dropout_backward(x, mask, rate)
    want_y, want_mask = _reference.dropout(x, rate, seed)
    assert mask.dtype == np.uint8 and mask.shape == x.shape
    np.testing.assert_array_equal(mask, want_mask)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(dx, _reference.dropout_backward(x, mask, rate))
    np.testing.assert_array_equal(dx, y)  # backward with dy = x is the forward


@pytest.mark.parametrize("rate", [0.05, 0.3, 0.5, 0.8])
def test_dropout_keep_rate_and_thread_independence(rate):
    n = 400_003
    x = np.ones(n, np.float32)
    with threads(1):
        y1, m1 = ops.dropout(x, rate, seed=1234)
    with threads(2):
        y2, m2 = ops.dropout(x, rate, seed=1234)
        again = ops.dropout(x, rate, seed=1234)[1]
        other = ops.dropout(x, rate, seed=1235)[1]
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(m1, again)
    keep = m1.mean()
    assert abs(keep - (1 - rate)) < 5 * np.sqrt(rate * (1 - rate) / n)
    # neighbouring seeds give unrelated masks: agreement as for independent draws
    agree = (m1 == other).mean()
    expected = (1 - rate) ** 2 + rate**2
    assert abs(agree - expected) < 5 * np.sqrt(expected * (1 - expected) / n)
    np.testing.assert_allclose(y1[m1 == 1], 1 / np.float32(1 - rate))
    assert (y1[m1 == 0] == 0).all()


def test_dropout_rate_zero_is_identity():
    x = sample(np.random.default_rng(1), (7, 11))
    y, mask = ops.dropout(x, 0.0, seed=5)
    np.testing.assert_array_equal(y, x)
    assert mask.all()


def test_dropout_bad_arguments():
    x = np.ones(5, np.float32)
    for rate in (1.0, -0.1, 1.5, 0.99999999999):
        with pytest.raises(ValueError, match=r"rate must be (in \[0, 1\)|>= 0)"):
            ops.dropout(x, rate, seed=1)
    with pytest.raises(ValueError, match="rate must be finite"):
        ops.dropout(x, float("nan"), seed=1)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        ops.dropout(x, 0.5, seed=-1)
    with pytest.raises(ValueError, match="seed must be below 2\\*\\*64"):
        ops.dropout(x, 0.5, seed=2**64)
    with pytest.raises(TypeError, match="seed must be an integer"):
        ops.dropout(x, 0.5, seed=1.5)
    with pytest.raises(ValueError, match=r"mask has shape \(4,\) but dy has shape \(5,\)"):
        ops.dropout_backward(x, np.ones(4, np.uint8), 0.5)
    with pytest.raises(ValueError, match="mask must hold only 0 and 1"):
        ops.dropout_backward(x, np.full(5, 2, np.uint8), 0.5)
    with pytest.raises(ValueError, match="dropout_forward: lengths differ: x 5, y 5, mask 4"):
        _kernels.dropout_forward(x, x.copy(), np.ones(4, np.uint8), 0.5, 1, 1)
    with pytest.raises(ValueError, match=r"dropout_backward: rate must be in \[0, 1\), got 1.0"):
        _kernels.dropout_backward(x, np.ones(5, np.uint8), x.copy(), 1.0, 1)
