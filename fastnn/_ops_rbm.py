"""Restricted Boltzmann machine kernels (src/rbm.c): the validated verbs of fastnn.ops (see its docstring).

Random numbers come from a counter-based stream: draw i of the stream (key, counter) depends only on the key,
the counter and i, so results are bitwise the same for any thread count, and a caller that advances the counter
between calls gets fresh numbers.
"""
import numpy as np

from . import _kernels
from ._ops_optim import _writable_state
from ._threads import effective_threads
from ._validation import as_finite_float, as_float32_array, as_positive_int, check_output

UNIT_KINDS = ("bernoulli", "gaussian")


def _stream(key, counter):
    key = as_positive_int(key, "key", minimum=0)
    counter = as_positive_int(counter, "counter", minimum=0)
    for name, value in (("key", key), ("counter", counter)):
        if value >= 2**64:
            raise ValueError(f"{name} must be below 2**64, got {value}")
    return key, counter


def rbm_uniform(n, key, counter=0):
    """The first n uniform draws in [0, 1) of the random stream (key, counter).

    Parameters
    ----------
    n : int >= 0
    key, counter : int in [0, 2**64)

    Returns
    -------
    u : ndarray of float32, shape (n,)
        Multiples of 2**-24 in [0, 1).

    Examples
    --------
    >>> from fastnn import ops
    >>> u = ops.rbm_uniform(1000, key=3)
    >>> bool(((0 <= u) & (u < 1)).all())
    True
    """
    n = as_positive_int(n, "n", minimum=0)
    key, counter = _stream(key, counter)
    out = np.empty(n, np.float32)
    _kernels.rbm_uniform(out, key, counter, effective_threads())
    return out


def rbm_sample(mean, key, counter=0, kind="bernoulli", out=None):
    """Sample unit states from their means with the random stream (key, counter).

    Parameters
    ----------
    mean : array_like of float, any shape, finite
        Bernoulli: the probabilities of being on, in [0, 1]; gaussian: the means (unit variance).
    key, counter : int in [0, 2**64)
    kind : {"bernoulli", "gaussian"}
        Bernoulli: state i is 1.0 when uniform draw i < mean[i], else 0.0. Gaussian: mean[i] plus a standard
        normal from draw i (Box-Muller).
    out : ndarray of float32 like mean, optional
        C-contiguous and writable; may be mean itself.

    Returns
    -------
    states : ndarray of float32, the shape of mean

    Examples
    --------
    >>> from fastnn import ops
    >>> ops.rbm_sample([0.0, 1.0, 1.0], key=5)
    array([0., 1., 1.], dtype=float32)
    """
    if kind not in UNIT_KINDS:
        raise ValueError(f"kind must be one of {UNIT_KINDS}, got {kind!r}")
    mean = as_float32_array(mean, "mean")
    if kind == "bernoulli" and mean.size and (mean.min() < 0.0 or mean.max() > 1.0):
        raise ValueError(f"bernoulli means are probabilities and must lie in [0, 1], got values in "
                         f"[{mean.min():.4g}, {mean.max():.4g}]")
    key, counter = _stream(key, counter)
    out = np.empty_like(mean) if out is None else check_output(out, mean.shape)
    _kernels.rbm_sample(mean.reshape(-1), out.reshape(-1), kind == "gaussian", key, counter, effective_threads())
    return out


def rbm_update(v0, h0, vk, hk, weights, visible_bias, hidden_bias, weights_inc, visible_inc, hidden_inc,
               learning_rate, momentum=0.0, weight_decay=0.0):
    """One contrastive-divergence step in place, with momentum increments and L2 decay on the weights.

    With g = (v0.T @ h0 - vk.T @ hk) / batch::

        weights_inc = momentum * weights_inc + learning_rate * (g - weight_decay * weights); weights += weights_inc
        visible_inc = momentum * visible_inc + learning_rate * mean(v0 - vk, axis=0); visible_bias += visible_inc
        hidden_inc = momentum * hidden_inc + learning_rate * mean(h0 - hk, axis=0); hidden_bias += hidden_inc

    Parameters
    ----------
    v0 : array_like, shape (batch, n_visible)
        The data.
    h0 : array_like, shape (batch, n_hidden)
        Hidden probabilities given the data.
    vk, hk : array_like, shapes (batch, n_visible), (batch, n_hidden)
        The end of the Gibbs chain (visible means and hidden probabilities).
    weights, weights_inc : ndarray of float32, shape (n_visible, n_hidden), updated in place
    visible_bias, visible_inc : ndarray of float32, shape (n_visible,), updated in place
    hidden_bias, hidden_inc : ndarray of float32, shape (n_hidden,), updated in place
    learning_rate : float > 0
    momentum : float in [0, 1)
    weight_decay : float >= 0

    Returns
    -------
    weights, visible_bias, hidden_bias : the same arrays, updated

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn import ops
    >>> w, b, c = np.zeros((2, 1), np.float32), np.zeros(2, np.float32), np.zeros(1, np.float32)
    >>> v0, h0, vk, hk = [[1.0, 0.0]], [[1.0]], [[0.0, 0.0]], [[0.0]]
    >>> w, b, c = ops.rbm_update(v0, h0, vk, hk, w, b, c, np.zeros_like(w), np.zeros_like(b), np.zeros_like(c), 0.5)
    >>> w.ravel(), b, c
    (array([0.5, 0. ], dtype=float32), array([0.5, 0. ], dtype=float32), array([0.5], dtype=float32))
    """
    v0 = as_float32_array(v0, "v0", ndim=2)
    batch, nv = v0.shape
    h0 = as_float32_array(h0, "h0", ndim=2)
    nh = h0.shape[1]
    if batch < 1 or nv < 1 or nh < 1:
        raise ValueError(f"rbm_update needs at least one sample, visible and hidden unit, got v0 {v0.shape}, "
                         f"h0 {h0.shape}")
    vk = as_float32_array(vk, "vk", ndim=2)
    hk = as_float32_array(hk, "hk", ndim=2)
    for name, arr, shape in (("h0", h0, (batch, nh)), ("vk", vk, (batch, nv)), ("hk", hk, (batch, nh))):
        if arr.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    weights = _writable_state(weights, "weights", (nv, nh))
    weights_inc = _writable_state(weights_inc, "weights_inc", (nv, nh))
    visible_bias = _writable_state(visible_bias, "visible_bias", (nv,))
    visible_inc = _writable_state(visible_inc, "visible_inc", (nv,))
    hidden_bias = _writable_state(hidden_bias, "hidden_bias", (nh,))
    hidden_inc = _writable_state(hidden_inc, "hidden_inc", (nh,))
    lr = as_finite_float(learning_rate, "learning_rate", positive=True)
    momentum = as_finite_float(momentum, "momentum", low=0.0)
    if momentum >= 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    decay = as_finite_float(weight_decay, "weight_decay", low=0.0)
    work = np.empty(2 * nv * nh, np.float32)
    _kernels.rbm_update(v0, h0, vk, hk, weights, visible_bias, hidden_bias, weights_inc, visible_inc, hidden_inc,
                        lr, momentum, decay, work, effective_threads())
    return weights, visible_bias, hidden_bias
