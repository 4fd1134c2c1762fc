"""Losses (src/loss.c): the validated verbs of fastnn.ops (see its docstring)."""
import numpy as np

from . import _kernels
from ._threads import effective_threads
from ._validation import as_class_labels, as_float32_array, check_nonempty


def _loss_inputs(x, x_name, target, target_name, sample_weight):
    """(x as (n, c) float32, target as (n, c) float32, weights or None, original shape of x)."""
    x = as_float32_array(x, x_name, ndim=(1, 2))
    shape = x.shape
    check_nonempty(x, x_name)
    if x.ndim == 1:
        x = x.reshape(-1, 1)
    elif x.shape[1] == 0:
        raise ValueError(f"{x_name} must have at least one column, got shape {shape}")
    target = as_float32_array(target, target_name)
    if target.shape != shape:
        raise ValueError(f"{target_name} has shape {target.shape} but {x_name} has shape {shape}; they must match")
    return x, target.reshape(x.shape), _sample_weight(sample_weight, len(x)), shape


def _sample_weight(sample_weight, n):
    if sample_weight is None:
        return None
    w = as_float32_array(sample_weight, "sample_weight", ndim=(1, 2))
    if w.shape not in ((n,), (n, 1)):
        raise ValueError(f"sample_weight must have one weight per sample, shape ({n},), got shape {w.shape}")
    return w.reshape(n)


def _dense_labels(labels, z_shape):
    """Target rows (the logits' rank) rather than class indices (one fewer axis, or a trailing axis of 1)."""
    return np.ndim(labels) == len(z_shape) and not (np.shape(labels)[-1] == 1 and z_shape[-1] > 1)


def softmax_cross_entropy(logits, labels, sample_weight=None):
    """Softmax cross-entropy on logits (fused and stable), along the last axis, with its gradient.

    loss = mean over samples of w_i * -sum_j t_ij log softmax(z_i)_j; grad = d loss / d logits, which is
    (softmax(z) - t) * w / n when the target rows sum to 1. Logits with more axes, (n, ..., c) (e.g. one
    distribution per time step, (n, T, c)), are n*... rows of c: the loss is the mean over all positions, each
    sample's weight applying to all its positions (Keras' per-timestep cross-entropy).

    Parameters
    ----------
    logits : array_like of float, shape (n, c) or (n, ..., c), finite
    labels : array_like
        Shape (n, ...) or (n, ..., 1): class indices in [0, c) (sparse, as Keras'
        sparse_categorical_crossentropy); shape (n, ..., c): target distributions (dense, as
        categorical_crossentropy).
    sample_weight : array_like of float, shape (n,), optional

    Returns
    -------
    loss : float
    grad : ndarray of float32, the shape of logits

    Examples
    --------
    >>> from fastnn import ops
    >>> loss, grad = ops.softmax_cross_entropy([[0.0, 0.0]], [1])
    >>> round(loss, 6), grad
    (0.693147, array([[ 0.5, -0.5]], dtype=float32))
    >>> loss, grad = ops.softmax_cross_entropy([[[0.0, 0.0], [0.0, 0.0]]], [[1, 0]])  # (n, T, c)
    >>> round(loss, 6), grad
    (0.693147, array([[[ 0.25, -0.25],
            [-0.25,  0.25]]], dtype=float32))
    """
    z = as_float32_array(logits, "logits")
    if z.ndim < 2:
        raise ValueError(f"logits must have a batch axis and a class axis (n, c) or (n, ..., c), "
                         f"got shape {z.shape}")
    check_nonempty(z, "logits")
    n, c = len(z), z.shape[-1]
    if c == 0:
        raise ValueError(f"logits must have at least one class column, got shape {z.shape}")
    if z.size == 0:
        raise ValueError(f"logits has an empty axis (shape {z.shape}); at least one position is expected")
    w = _sample_weight(sample_weight, n)
    rows = z.size // c
    grad = np.empty_like(z)
    z2, g2 = z.reshape(rows, c), grad.reshape(rows, c)
    w2 = w if w is None or rows == n else np.repeat(w, rows // n)
    if _dense_labels(labels, z.shape):
        t = as_float32_array(labels, "labels")
        if t.shape != z.shape:
            raise ValueError(f"dense labels must have the logits' shape {z.shape}, got shape {t.shape}")
        loss = _kernels.softmax_xent_dense(z2, t.reshape(rows, c), w2, g2, effective_threads())
    else:
        y = as_class_labels(labels, n, c, name="labels", positions=z.shape[1:-1])
        loss = _kernels.softmax_xent_sparse(z2, y.reshape(rows), w2, g2, effective_threads())
    return loss, grad


def mean_squared_error(pred, target, sample_weight=None):
    """Mean squared error (mean over the outputs of a sample, then over samples), with its gradient.

    Parameters
    ----------
    pred : array_like of float, shape (n, c) or (n,), finite
    target : array_like of float, the shape of pred, finite
    sample_weight : array_like of float, shape (n,), optional

    Returns
    -------
    loss : float
    grad : ndarray of float32, the shape of pred: 2 (pred - target) w / (n c)

    Examples
    --------
    >>> from fastnn import ops
    >>> ops.mean_squared_error([[1.0, 3.0]], [[0.0, 0.0]])
    (5.0, array([[1., 3.]], dtype=float32))
    """
    p, t, w, shape = _loss_inputs(pred, "pred", target, "target", sample_weight)
    grad = np.empty_like(p)
    loss = _kernels.mse(p, t, w, grad, effective_threads())
    return loss, grad.reshape(shape)


def sigmoid_binary_cross_entropy(logits, target, sample_weight=None):
    """Binary cross-entropy of sigmoid(logits) against targets in [0, 1] (fused and stable), with its gradient.

    Per element max(z, 0) - z t + log(1 + exp(-|z|)); mean over the outputs of a sample, then over samples.

    Parameters
    ----------
    logits : array_like of float, shape (n, c) or (n,), finite
    target : array_like of float in [0, 1], the shape of logits
    sample_weight : array_like of float, shape (n,), optional

    Returns
    -------
    loss : float
    grad : ndarray of float32, the shape of logits: (sigmoid(z) - t) w / (n c)

    Examples
    --------
    >>> from fastnn import ops
    >>> loss, grad = ops.sigmoid_binary_cross_entropy([0.0, 0.0], [1.0, 0.0])
    >>> round(loss, 6), grad
    (0.693147, array([-0.25,  0.25], dtype=float32))
    """
    z, t, w, shape = _loss_inputs(logits, "logits", target, "target", sample_weight)
    if t.size and (t.min() < 0.0 or t.max() > 1.0):
        raise ValueError(f"target values must be in [0, 1], got values from {t.min()} to {t.max()}")
    grad = np.empty_like(z)
    loss = _kernels.sigmoid_bce(z, t, w, grad, effective_threads())
    return loss, grad.reshape(shape)
