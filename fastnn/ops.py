"""One validated Python verb per C kernel.

Each verb checks its arguments once (dtype, rank, shape, contiguity, finiteness where it matters), allocates
its output when none is given and calls the kernel through fastnn._kernels. `fastnn._reference` holds a plain
NumPy twin of every verb with the same signature; the tests compare the two.
Model internals call fastnn._kernels directly with buffers they planned themselves, so the hot path pays for
validation once, at the public boundary.
"""
import numpy as np

from . import _kernels
from ._threads import effective_threads
from ._validation import as_float32_array

# ---- matrix multiplication (src/gemm*.c) --------------------------------------------------------------

from ._validation import check_output  # noqa: E402  (kept with the section that uses it)


def matmul(a, b, trans_a=False, trans_b=False, out=None):
    """Matrix product op(a) @ op(b) in float32, where op(x) is x.T when its trans flag is set.

    Parameters
    ----------
    a : array_like, shape (m, k), or (k, m) when trans_a
    b : array_like, shape (k, n), or (n, k) when trans_b
        Cast to float32 when that is exact enough (see fastnn._validation); NaN and Inf propagate as in NumPy.
    trans_a, trans_b : bool
        Use the transpose of a / b without copying it.
    out : ndarray of float32, shape (m, n), optional
        C-contiguous and writable; overwritten. It may be a or b themselves.

    Returns
    -------
    out : ndarray of float32, shape (m, n)

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn import ops
    >>> ops.matmul(np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((2, 3), np.float32), trans_b=True)
    array([[ 3.,  3.],
           [12., 12.]], dtype=float32)
    """
    a = as_float32_array(a, "a", ndim=2, finite=False)
    b = as_float32_array(b, "b", ndim=2, finite=False)
    trans_a, trans_b = bool(trans_a), bool(trans_b)
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    kb, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if k != kb:
        raise ValueError(f"matmul: inner dimensions differ: a {a.shape}{'.T' if trans_a else ''} @ "
                         f"b {b.shape}{'.T' if trans_b else ''} needs op(a) columns ({k}) == op(b) rows ({kb})")
    if out is None:
        out = np.empty((m, n), dtype=np.float32)
    else:
        check_output(out, (m, n))
    # The kernel reads a and b while writing out: an output that overlaps an input gets a temporary.
    target = out
    if out.size and (np.may_share_memory(out, a) or np.may_share_memory(out, b)):
        target = np.empty_like(out)
    _kernels.gemm(a, b, target, trans_a, trans_b, False, None, 0, 0.0, effective_threads())
    if target is not out:
        out[...] = target
    return out


# ---- activations, softmax, reductions, dropout (src/act.c) --------------------------------------------

from ._validation import as_finite_float, as_positive_int  # noqa: E402  (kept with the section that uses it)

ACTIVATIONS = ("relu", "leaky_relu", "sigmoid", "tanh", "gelu", "linear", "softmax")
_ACT_CODES = {"linear": _kernels.ACT_LINEAR, "relu": _kernels.ACT_RELU, "leaky_relu": _kernels.ACT_LEAKY_RELU,
              "sigmoid": _kernels.ACT_SIGMOID, "tanh": _kernels.ACT_TANH, "gelu": _kernels.ACT_GELU}


def _activation_name(name):
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid names: {', '.join(ACTIVATIONS)}")
    return name


def _alpha(alpha, name):
    """leaky_relu's negative slope, >= 0 as in Keras (so the output's sign is the input's)."""
    return as_finite_float(alpha, "alpha", low=0.0 if name == "leaky_relu" else None)


def _as_rows(x):
    """A C-contiguous x as a 2-D (rows, last axis) view; a 0-d or 1-D array is one row."""
    if x.ndim <= 1:
        return x.reshape(1, x.size)
    return x.reshape(int(np.prod(x.shape[:-1])), x.shape[-1])


def activation(x, name, alpha=0.3):
    """Apply an activation element-wise (softmax: along the last axis), as Keras defines them.

    Parameters
    ----------
    x : array_like of float, any shape
    name : {"relu", "leaky_relu", "sigmoid", "tanh", "gelu", "linear", "softmax"}
        gelu is the exact form x * Phi(x); relu maps NaN to 0.
    alpha : float
        Negative slope of leaky_relu, >= 0 (ignored by the others).

    Returns
    -------
    y : ndarray of float32, the shape of x

    Examples
    --------
    >>> from fastnn import ops
    >>> ops.activation([-2.0, 0.0, 3.0], "relu")
    array([0., 0., 3.], dtype=float32)
    """
    name = _activation_name(name)
    if name == "softmax":
        return softmax(x)
    alpha = _alpha(alpha, name)
    x = as_float32_array(x, "x", finite=False)
    y = np.empty_like(x)
    _kernels.act_forward(_as_rows(x), None, _as_rows(y), _ACT_CODES[name], alpha, effective_threads())
    return y


def activation_backward(x, y, dy, name, alpha=0.3):
    """Gradient of an activation: dx = dy * act'(x) (softmax: its Jacobian-vector product along the last axis).

    Parameters
    ----------
    x : array_like or None
        The activation's input; needed by gelu (relu and leaky_relu use x or y).
    y : array_like or None
        The activation's output; needed by sigmoid, tanh and softmax.
    dy : array_like of float
        Gradient of the loss with respect to y.
    name : str
        One of `ACTIVATIONS`.
    alpha : float
        Negative slope of leaky_relu, >= 0.

    Returns
    -------
    dx : ndarray of float32, the shape of dy

    Examples
    --------
    >>> from fastnn import ops
    >>> ops.activation_backward([-1.0, 2.0], None, [5.0, 5.0], "relu")
    array([0., 5.], dtype=float32)
    """
    name = _activation_name(name)
    dy = as_float32_array(dy, "dy", finite=False)
    if name == "softmax":
        return softmax_backward(y, dy)
    alpha = _alpha(alpha, name)
    needs_x, needs_y = name == "gelu", name in ("sigmoid", "tanh")
    if (needs_x and x is None) or (needs_y and y is None) or (x is None and y is None and name != "linear"):
        wanted = "x" if needs_x else "y" if needs_y else "x or y"
        raise ValueError(f"the {name} gradient needs {wanted} (the activation's "
                         f"{'input' if wanted == 'x' else 'output'}), got None")
    arrays = {}
    for label, a in (("x", x), ("y", y)):
        if a is not None and name != "linear":
            a = as_float32_array(a, label, finite=False)
            if a.shape != dy.shape:
                raise ValueError(f"{label} has shape {a.shape} but dy has shape {dy.shape}; they must match")
            arrays[label] = a.reshape(-1)
    dx = np.empty_like(dy)
    _kernels.act_backward(arrays.get("x"), arrays.get("y"), dy.reshape(-1), dx.reshape(-1), _ACT_CODES[name],
                          alpha, effective_threads())
    return dx


def softmax(x):
    """Numerically stable softmax along the last axis.

    Parameters
    ----------
    x : array_like of float (a scalar counts as one row of one)

    Returns
    -------
    y : ndarray of float32, the shape of x; each slice along the last axis sums to 1

    Examples
    --------
    >>> from fastnn import ops
    >>> ops.softmax([[0.0, 0.0], [1e4, 0.0]])
    array([[0.5, 0.5],
           [1. , 0. ]], dtype=float32)
    """
    x = as_float32_array(x, "x", finite=False)
    y = np.empty_like(x)
    _kernels.softmax_forward(_as_rows(x), _as_rows(y), effective_threads())
    return y


def softmax_backward(y, dy):
    """Gradient through softmax along the last axis: dx = y * (dy - sum(dy * y)).

    Parameters
    ----------
    y : array_like of float
        The softmax output.
    dy : array_like of float, the shape of y
        Gradient of the loss with respect to y.

    Returns
    -------
    dx : ndarray of float32, the shape of y

    Examples
    --------
    >>> from fastnn import ops
    >>> ops.softmax_backward([[0.5, 0.5]], [[1.0, 0.0]])
    array([[ 0.25, -0.25]], dtype=float32)
    """
    if y is None:
        raise ValueError("the softmax gradient needs y (the softmax output), got None")
    y = as_float32_array(y, "y", finite=False)
    dy = as_float32_array(dy, "dy", finite=False)
    if y.shape != dy.shape:
        raise ValueError(f"y and dy must have the same shape, got {y.shape} and {dy.shape}")
    dx = np.empty_like(dy)
    _kernels.softmax_backward(_as_rows(y), _as_rows(dy), _as_rows(dx), effective_threads())
    return dx


def column_sum(x):
    """Sum over all axes but the last, accumulated in float64 (bias gradients).

    Parameters
    ----------
    x : array_like of float, shape (..., c), at least 2-D

    Returns
    -------
    out : ndarray of float32, shape (c,)

    Examples
    --------
    >>> from fastnn import ops
    >>> ops.column_sum([[1.0, 2.0], [3.0, 4.0]])
    array([4., 6.], dtype=float32)
    """
    x = as_float32_array(x, "x", finite=False)
    if x.ndim < 2:
        raise ValueError(f"column_sum needs an array of at least 2 dimensions (it sums all axes but the last), "
                         f"got shape {x.shape}")
    out = np.empty(x.shape[-1], dtype=np.float32)
    _kernels.colsum(x.reshape(-1, x.shape[-1]), out, False, effective_threads())
    return out


def _dropout_rate(rate):
    rate = as_finite_float(rate, "rate", low=0.0)
    if not rate < 1.0 or not np.float32(rate) < 1.0:
        raise ValueError(f"rate must be in [0, 1) (the fraction of elements dropped), got {rate}")
    return rate


def dropout(x, rate, seed):
    """Inverted dropout: zero each element with probability `rate`, scale the others by 1 / (1 - rate).

    The mask comes from a counter-based generator keyed by `seed`: the same seed gives the same mask on any
    number of threads.

    Parameters
    ----------
    x : array_like of float
    rate : float in [0, 1)
    seed : int in [0, 2**64)

    Returns
    -------
    y : ndarray of float32, the shape of x
    mask : ndarray of uint8, the shape of x; 1 where x was kept

    Examples
    --------
    >>> from fastnn import ops
    >>> y, mask = ops.dropout([1.0, 1.0, 1.0, 1.0], 0.0, seed=7)
    >>> y, mask
    (array([1., 1., 1., 1.], dtype=float32), array([1, 1, 1, 1], dtype=uint8))
    """
    x = as_float32_array(x, "x", finite=False)
    rate = _dropout_rate(rate)
    seed = as_positive_int(seed, "seed", minimum=0)
    if seed >= 2**64:
        raise ValueError(f"seed must be below 2**64, got {seed}")
    y = np.empty_like(x)
    mask = np.empty(x.shape, dtype=np.uint8)
    _kernels.dropout_forward(x.reshape(-1), y.reshape(-1), mask.reshape(-1), rate, seed, effective_threads())
    return y, mask


def dropout_backward(dy, mask, rate):
    """Gradient of `dropout`: dx = dy * mask / (1 - rate).

    Parameters
    ----------
    dy : array_like of float
    mask : array_like of 0/1 (uint8 or bool), the shape of dy, as returned by `dropout`
    rate : float in [0, 1), the rate given to `dropout`

    Returns
    -------
    dx : ndarray of float32, the shape of dy

    Examples
    --------
    >>> from fastnn import ops
    >>> ops.dropout_backward([1.0, 1.0], [1, 0], 0.5)
    array([2., 0.], dtype=float32)
    """
    dy = as_float32_array(dy, "dy", finite=False)
    rate = _dropout_rate(rate)
    mask = np.asarray(mask)
    if mask.shape != dy.shape:
        raise ValueError(f"mask has shape {mask.shape} but dy has shape {dy.shape}; they must match")
    if mask.dtype.kind not in "biu" or (mask.size and not np.isin(mask, (0, 1)).all()):
        raise ValueError(f"mask must hold only 0 and 1 (as returned by dropout), got dtype {mask.dtype}")
    mask = np.ascontiguousarray(mask, dtype=np.uint8)
    dx = np.empty_like(dy)
    _kernels.dropout_backward(dy.reshape(-1), mask.reshape(-1), dx.reshape(-1), rate, effective_threads())
    return dx


# ---- losses (src/loss.c) ------------------------------------------------------------------------------

from ._validation import as_class_labels, check_nonempty  # noqa: E402  (kept with the section that uses it)


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


def _dense_labels(labels, c):
    """Target rows (n, c) rather than class indices (n,) or (n, 1)."""
    return np.ndim(labels) == 2 and not (np.shape(labels)[1] == 1 and c > 1)


def softmax_cross_entropy(logits, labels, sample_weight=None):
    """Softmax cross-entropy on logits (fused and stable), with its gradient.

    loss = mean over samples of w_i * -sum_j t_ij log softmax(z_i)_j; grad = d loss / d logits, which is
    (softmax(z) - t) * w / n when the target rows sum to 1.

    Parameters
    ----------
    logits : array_like of float, shape (n, c), finite
    labels : array_like
        Shape (n,) or (n, 1): class indices in [0, c) (sparse, as Keras' sparse_categorical_crossentropy);
        shape (n, c): target distributions (dense, as categorical_crossentropy).
    sample_weight : array_like of float, shape (n,), optional

    Returns
    -------
    loss : float
    grad : ndarray of float32, shape (n, c)

    Examples
    --------
    >>> from fastnn import ops
    >>> loss, grad = ops.softmax_cross_entropy([[0.0, 0.0]], [1])
    >>> round(loss, 6), grad
    (0.693147, array([[ 0.5, -0.5]], dtype=float32))
    """
    z = as_float32_array(logits, "logits", ndim=2)
    check_nonempty(z, "logits")
    n, c = z.shape
    if c == 0:
        raise ValueError(f"logits must have at least one class column, got shape {z.shape}")
    w = _sample_weight(sample_weight, n)
    grad = np.empty_like(z)
    if _dense_labels(labels, c):
        t = as_float32_array(labels, "labels")
        if t.shape != z.shape:
            raise ValueError(f"dense labels must have the logits' shape {z.shape}, got shape {t.shape}")
        loss = _kernels.softmax_xent_dense(z, t, w, grad, effective_threads())
    else:
        y = as_class_labels(labels, n, c, name="labels")
        loss = _kernels.softmax_xent_sparse(z, y, w, grad, effective_threads())
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


# ---- optimizer updates (src/optim.c) ------------------------------------------------------------------


def _writable_state(a, name, shape=None):
    """A float32, C-contiguous, writable array updated in place (a copy would silently lose the update)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy float32 array updated in place, got {type(a).__name__}")
    return check_output(a, a.shape if shape is None else shape, name)


def sgd_update(params, grads, velocity, learning_rate, momentum=0.0, nesterov=False):
    """One SGD step in place, as Keras: v = momentum v - lr g; params += v (nesterov: += momentum v - lr g).

    Parameters
    ----------
    params : ndarray of float32, C-contiguous and writable, any shape
        Updated in place.
    grads : array_like of float, the shape of params, finite
    velocity : ndarray of float32 like params, or None
        Updated in place; may be None when momentum == 0 (then it is left alone).
    learning_rate : float >= 0
    momentum : float in [0, 1]
    nesterov : bool

    Returns
    -------
    params : the same array, updated

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn import ops
    >>> p, v = np.ones(2, np.float32), np.zeros(2, np.float32)
    >>> ops.sgd_update(p, np.array([1.0, -1.0]), v, 0.5, momentum=0.9)
    array([0.5, 1.5], dtype=float32)
    """
    params = _writable_state(params, "params")
    grads = as_float32_array(grads, "grads")
    if grads.shape != params.shape:
        raise ValueError(f"grads has shape {grads.shape} but params has shape {params.shape}; they must match")
    lr = as_finite_float(learning_rate, "learning_rate", low=0.0)
    momentum = as_finite_float(momentum, "momentum", low=0.0, high=1.0)
    if velocity is None:
        if momentum != 0.0:
            raise ValueError(f"momentum {momentum} needs a velocity array like params (got None)")
    else:
        velocity = _writable_state(velocity, "velocity", params.shape)
        velocity = velocity.reshape(-1)
    _kernels.sgd(params.reshape(-1), grads.reshape(-1), velocity, lr, momentum, bool(nesterov),
                 effective_threads())
    return params
