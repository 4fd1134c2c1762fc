"""Losses (src/loss.c + src/ew_loss_impl.h) against the NumPy reference, for every instruction set the CPU has.

Values and gradients are compared with the float64 reference; gradients also with central differences in
float64, of the reference's loss (checking its formulas) and against the kernel's gradient.
"""
import inspect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn import _kernels, _reference, ops
from kernel_helpers import isa, ISA_IDS, ISAS, threads

SIZES = st.one_of(st.integers(1, 40), st.sampled_from([1, 2, 3, 7, 16, 17, 31, 64, 65, 257, 1031]))
FAST = settings(max_examples=25, deadline=None)
LOSSES = ("sparse", "dense", "mse", "bce")


def problem(kind, n, c, seed, scale=3.0, weighted=False):
    """(inputs, targets, weights) for a loss: logits/predictions, then labels or targets of the right kind."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, c)) * scale).astype(np.float32)
    if kind == "sparse":
        t = rng.integers(0, c, n)
    elif kind == "dense":
        t = rng.random((n, c)).astype(np.float32)
        t /= t.sum(axis=1, keepdims=True)
    elif kind == "mse":
        t = rng.standard_normal((n, c)).astype(np.float32)
    else:
        t = rng.random((n, c)).astype(np.float32)
    w = rng.random(n).astype(np.float32) * 2 if weighted else None
    return x, t, w


def both(kind, x, t, w):
    """(kernel loss and grad, reference loss and grad) of one loss."""
    verb = {"sparse": "softmax_cross_entropy", "dense": "softmax_cross_entropy", "mse": "mean_squared_error",
            "bce": "sigmoid_binary_cross_entropy"}[kind]
    return getattr(ops, verb)(x, t, w), getattr(_reference, verb)(x, t, w)


def reference64(kind, x, t, w):
    """The reference's float64 (loss, grad) on float64 inputs (no rounding to float32 anywhere)."""
    x = np.asarray(x, np.float64)
    w = np.ones(len(x)) if w is None else np.asarray(w, np.float64)
    if kind == "sparse":
        t = np.eye(x.shape[1])[t]
    t = np.asarray(t, np.float64)
    fn = {"sparse": _reference._softmax_xent64, "dense": _reference._softmax_xent64, "mse": _reference._mse64,
          "bce": _reference._sigmoid_bce64}[kind]
    return fn(x, t, w)


def finite_difference_grad(kind, x, t, w, h=1e-5):
    x = np.asarray(x, np.float64)
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        grad[idx] = (reference64(kind, x + e, t, w)[0] - reference64(kind, x - e, t, w)[0]) / (2 * h)
    return grad


def test_signatures_match_reference():
    for name in ("softmax_cross_entropy", "mean_squared_error", "sigmoid_binary_cross_entropy"):
        assert inspect.signature(getattr(ops, name)) == inspect.signature(getattr(_reference, name)), name


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@pytest.mark.parametrize("kind", LOSSES)
@FAST
@given(n=SIZES, c=SIZES, weighted=st.booleans(), scale=st.sampled_from([0.1, 3.0, 30.0]),
       seed=st.integers(0, 2**31))
def test_loss_matches_reference(isa_index, kind, n, c, weighted, scale, seed):
    x, t, w = problem(kind, n, c, seed, scale, weighted)
    with isa(isa_index):
        (loss, grad), (want_loss, want_grad) = both(kind, x, t, w)
    assert isinstance(loss, float) and grad.dtype == np.float32 and grad.shape == x.shape
    assert loss == pytest.approx(want_loss, rel=2e-6, abs=1e-9)
    # per-element gradients are of size ~1/(n c): compare on that scale. A gradient that is a difference of two
    # terms near 1 (sigmoid(x) - t, softmax - t) keeps their absolute float32 rounding of a few ulps, times
    # w / (n c), however small the difference is
    ulps = 4e-7 * (1.0 if w is None else float(w.max())) / x.size
    np.testing.assert_allclose(grad, want_grad, rtol=2e-5, atol=1e-6 * np.abs(want_grad).max() + ulps + 1e-30)


@pytest.mark.parametrize("kind", LOSSES)
@pytest.mark.parametrize("weighted", [False, True])
def test_gradients_match_finite_differences(kind, weighted):
    x, t, w = problem(kind, 4, 5, seed=3, scale=2.0, weighted=weighted)
    numeric = finite_difference_grad(kind, x, t, w)
    np.testing.assert_allclose(reference64(kind, x, t, w)[1], numeric, rtol=1e-6, atol=1e-9)
    _, grad = both(kind, x, t, w)[0]
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("kind", LOSSES)
def test_value_alone_equals_value_with_gradient(kind):
    x, t, w = problem(kind, 37, 300, seed=4, weighted=True)  # rows longer than the 256-float scratch
    fn = {"sparse": _kernels.softmax_xent_sparse, "dense": _kernels.softmax_xent_dense, "mse": _kernels.mse,
          "bce": _kernels.sigmoid_bce}[kind]
    t = np.asarray(t, np.int64 if kind == "sparse" else np.float32)
    grad = np.empty_like(x)
    assert fn(x, t, w, None, 1) == fn(x, t, w, grad, 1)


@pytest.mark.parametrize("kind", LOSSES)
def test_threads_give_identical_bits(kind):
    x, t, w = problem(kind, 700, 160, seed=5, weighted=True)  # 112,000 elements: threaded
    with threads(1):
        one = both(kind, x, t, w)[0]
    with threads(2):
        two = both(kind, x, t, w)[0]
    assert one[0] == two[0]
    np.testing.assert_array_equal(one[1], two[1])


def test_huge_logits_are_stable():
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [0.0, 0.0, 0.0]], np.float32)
    loss, grad = ops.softmax_cross_entropy(z, [1, 0, 2])
    assert loss == pytest.approx((2e4 + (2e4 + np.log(2)) + np.log(3)) / 3, rel=1e-9)
    np.testing.assert_allclose(grad * 3, [[1, -1, 0], [-1, 0.5, 0.5], [1 / 3, 1 / 3, -2 / 3]], rtol=1e-6, atol=1e-12)
    dense_loss, dense_grad = ops.softmax_cross_entropy(z, np.eye(3, dtype=np.float32)[[1, 0, 2]])
    assert dense_loss == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(dense_grad, grad, atol=1e-7)
    b = np.array([[1e4, -1e4], [-1e4, 1e4]], np.float32)
    bce, bce_grad = ops.sigmoid_binary_cross_entropy(b, [[0.0, 1.0], [1.0, 0.0]])
    assert bce == pytest.approx(1e4, rel=1e-9)  # every element is 1e4 off, and the mean is per element
    np.testing.assert_allclose(bce_grad, [[0.25, -0.25], [-0.25, 0.25]])  # (sigmoid(z) - t) / (n c)
    bce_right, bce_right_grad = ops.sigmoid_binary_cross_entropy(b, [[1.0, 0.0], [0.0, 1.0]])
    assert bce_right == 0.0 and (bce_right_grad == 0).all()


def test_sample_weights_scale_each_sample():
    x, t, _ = problem("sparse", 6, 4, seed=6)
    loss, grad = ops.softmax_cross_entropy(x, t)
    w = np.array([2, 0, 1, 1, 3, 0.5], np.float32)
    wloss, wgrad = ops.softmax_cross_entropy(x, t, sample_weight=w)
    per_sample = [ops.softmax_cross_entropy(x[i:i + 1], t[i:i + 1])[0] for i in range(6)]
    assert wloss == pytest.approx(np.dot(w, per_sample) / 6, rel=1e-6)
    np.testing.assert_allclose(wgrad, grad * w[:, None], rtol=1e-6, atol=1e-9)
    assert (wgrad[1] == 0).all()
    assert ops.mean_squared_error(x, x + 1, sample_weight=np.ones(6))[0] == pytest.approx(1.0, rel=1e-6)


def test_labels_of_shape_n_by_1_are_class_indices():
    x, t, _ = problem("sparse", 5, 3, seed=7)
    for fn in (ops.softmax_cross_entropy, _reference.softmax_cross_entropy):
        loss, grad = fn(x, t.reshape(5, 1))
        assert loss == pytest.approx(fn(x, t)[0], rel=1e-12)
        np.testing.assert_array_equal(grad, fn(x, t)[1])


def test_one_dimensional_predictions_are_single_outputs():
    loss, grad = ops.mean_squared_error([1.0, 2.0, 4.0], [1.0, 1.0, 1.0])
    assert loss == pytest.approx(10 / 3) and grad.shape == (3,)
    np.testing.assert_allclose(grad, [0, 2 / 3, 2])
    loss, grad = ops.sigmoid_binary_cross_entropy([0.0, 0.0], [0.0, 1.0])
    assert loss == pytest.approx(np.log(2)) and grad.shape == (2,)


def test_bad_inputs_raise_clear_errors():
    z = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"class index 4 out of range.*4 classes.*\[0, 3\]"):
        ops.softmax_cross_entropy(z, [0, 1, 4])
    with pytest.raises(ValueError, match=r"class index -1 out of range"):
        ops.softmax_cross_entropy(z, [0, -1, 2])
    with pytest.raises(ValueError, match="whole-number class indices"):
        ops.softmax_cross_entropy(z, [0.5, 1, 2])
    with pytest.raises(ValueError, match="has 2 labels but x has 3 samples"):
        ops.softmax_cross_entropy(z, [0, 1])
    with pytest.raises(ValueError, match=r"dense labels must have the logits' shape \(3, 4\), got shape \(3, 5\)"):
        ops.softmax_cross_entropy(z, np.zeros((3, 5)))
    with pytest.raises(ValueError, match="logits contains 1 NaN or Inf"):
        ops.softmax_cross_entropy(np.array([[0.0, np.nan]]), [0])
    with pytest.raises(ValueError, match="target contains 1 NaN or Inf"):
        ops.mean_squared_error([[1.0, 2.0]], [[np.inf, 0.0]])
    with pytest.raises(ValueError, match="logits is empty"):
        ops.softmax_cross_entropy(np.zeros((0, 4)), np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="pred is empty"):
        ops.mean_squared_error(np.zeros((0, 2)), np.zeros((0, 2)))
    with pytest.raises(ValueError, match=r"at least one class column, got shape \(3, 0\)"):
        ops.softmax_cross_entropy(np.zeros((3, 0)), [0, 0, 0])
    with pytest.raises(ValueError, match=r"target has shape \(3, 5\) but pred has shape \(3, 4\)"):
        ops.mean_squared_error(z, np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"sample_weight must have one weight per sample, shape \(3,\)"):
        ops.mean_squared_error(z, z, sample_weight=np.ones(2))
    with pytest.raises(ValueError, match=r"target values must be in \[0, 1\], got values from -1.0 to 0.5"):
        ops.sigmoid_binary_cross_entropy(z, np.where(np.eye(3, 4) > 0, -1.0, 0.5))
    with pytest.raises(ValueError, match="must be 1 or 2-dimensional"):
        ops.mean_squared_error(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))


def test_kernel_level_checks():
    z = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"label 7 of sample 1 is out of range: labels must be in \[0, 3\]"):
        _kernels.softmax_xent_sparse(z, np.array([0, 7, 1], np.int64), None, None, 1)
    with pytest.raises(ValueError, match=r"2 labels for logits of shape \(3, 4\)"):
        _kernels.softmax_xent_sparse(z, np.array([0, 1], np.int64), None, None, 1)
    with pytest.raises(ValueError, match=r"mse: targets have shape \(3, 3\), the input has shape \(3, 4\)"):
        _kernels.mse(z, np.zeros((3, 3), np.float32), None, None, 1)
    with pytest.raises(ValueError, match=r"sigmoid_bce: grad has shape \(4, 3\), expected \(3, 4\)"):
        _kernels.sigmoid_bce(z, z, None, np.zeros((4, 3), np.float32), 1)
    with pytest.raises(ValueError, match="sample weights have length 2, expected 3"):
        _kernels.softmax_xent_dense(z, z, np.ones(2, np.float32), None, 1)
    with pytest.raises(ValueError, match=r"empty input of shape \(0, 4\)"):
        _kernels.mse(np.zeros((0, 4), np.float32), np.zeros((0, 4), np.float32), None, None, 1)
