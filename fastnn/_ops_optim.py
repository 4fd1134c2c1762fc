"""Optimizer updates (src/optim_adaptive.c, src/optim_sgd.c): the validated verbs of fastnn.ops (see its docstring)."""
import numpy as np

from . import _kernels
from ._threads import effective_threads
from ._validation import as_finite_float, as_float32_array, check_output


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
    n = params.size
    update = _kernels.ArenaUpdate(np.zeros(1, np.int64), np.array([n], np.int64), np.ones(1, np.float32),
                                  np.zeros(1), grads.reshape(-1), params.reshape(-1),
                                  (velocity,) if momentum > 0.0 else ())
    update.sgd(False, lr, momentum, bool(nesterov), 0.0, 0.0, effective_threads())
    return params
