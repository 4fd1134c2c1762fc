"""ops.resize2d / resize2d_backward (src/resize.c) against fastnn._reference on hypothesis-drawn sizes (up and
down, odd, 1), adjointness, and bad arguments."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn import _reference as ref
from fastnn import ops

images = st.tuples(st.sampled_from([1, 2]), st.integers(1, 9), st.integers(1, 9), st.sampled_from([1, 3, 4]))
out_sizes = st.tuples(st.integers(1, 13), st.integers(1, 13))
modes = st.sampled_from(["nearest", "bilinear"])


@settings(max_examples=60, deadline=None)
@given(images, out_sizes, modes, st.integers(0, 2**16))
def test_resize_and_its_backward_match_the_reference(shape, size, mode, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(ops.resize2d(x, size, mode), ref.resize2d(x, size, mode), rtol=1e-5, atol=1e-6)
    dy = rng.standard_normal((shape[0],) + size + (shape[3],)).astype(np.float32)
    np.testing.assert_allclose(ops.resize2d_backward(dy, shape[1:3], mode),
                               ref.resize2d_backward(dy, shape[1:3], mode), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_backward_is_the_adjoint(mode):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 7, 3)).astype(np.float32)
    dy = rng.standard_normal((2, 8, 4, 3)).astype(np.float32)
    lhs = float(np.sum(ops.resize2d(x, (8, 4), mode).astype(np.float64) * dy))
    rhs = float(np.sum(ops.resize2d_backward(dy, (5, 7), mode).astype(np.float64) * x))
    assert abs(lhs - rhs) < 1e-4 * max(1.0, abs(lhs))


def test_same_size_is_the_identity_and_constants_stay_constant():
    x = np.random.default_rng(2).standard_normal((1, 4, 5, 2)).astype(np.float32)
    np.testing.assert_array_equal(ops.resize2d(x, (4, 5)), x)
    np.testing.assert_allclose(ops.resize2d(np.full((1, 3, 3, 1), 7.0), (8, 2)), 7.0, rtol=1e-6)


@pytest.mark.parametrize("call,err,match", [
    (lambda: ops.resize2d(np.zeros((2, 3, 3)), (4, 4)), ValueError, "4-dimensional"),
    (lambda: ops.resize2d(np.zeros((1, 0, 3, 1)), (4, 4)), ValueError, "positive height"),
    (lambda: ops.resize2d(np.zeros((1, 3, 3, 1)), (0, 4)), ValueError, r"size\[0\] must be >= 1"),
    (lambda: ops.resize2d(np.zeros((1, 3, 3, 1)), 4), ValueError, "pair"),
    (lambda: ops.resize2d(np.zeros((1, 3, 3, 1)), (4, 4), "cubic"), ValueError, "interpolation"),
    (lambda: ops.resize2d(np.zeros((1, 3, 3, 1), complex), (4, 4)), TypeError, "numbers"),
    (lambda: ops.resize2d_backward(np.zeros((1, 3, 3, 1)), (2, -1)), ValueError, r"input_size\[1\]"),
])
def test_bad_arguments(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_empty_batch_gives_an_empty_result():
    assert ops.resize2d(np.zeros((0, 3, 3, 2), np.float32), (5, 5)).shape == (0, 5, 5, 2)
