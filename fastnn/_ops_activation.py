"""Activations, softmax, column sums and dropout (src/act.c): the validated verbs of fastnn.ops (see its docstring)."""
import numpy as np

from . import _kernels
from ._threads import effective_threads
from ._validation import as_finite_float, as_float32_array, as_positive_int


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
