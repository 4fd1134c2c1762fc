"""Batch normalization (Keras' BatchNormalization), channels last."""
import numbers

import numpy as np

from .. import _kernels, initializers
from .base import Layer, ParamSpec

_threads = _kernels.omp_max_threads
_INITIALIZERS = ("beta_initializer", "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer")


class BatchNormalization(Layer):
    """Normalizes each channel (the last axis) over the batch and every other axis, then scales and shifts it.

    In training, ``y = gamma * (x - mean) / sqrt(var + epsilon) + beta`` with the batch's mean and biased
    variance per channel, and each forward pass updates ``moving = moving * momentum + batch * (1 - momentum)``
    for both statistics (the biased variance, as Keras 3). In inference the moving statistics replace the
    batch's. A layer with ``trainable=False`` always runs in inference mode, as in Keras.

    Parameters
    ----------
    axis : int
        The channel axis; only the last one is supported (-1, or its index counting the batch axis).
    momentum : float
        In [0, 1]: the weight of the old moving statistics at each update.
    epsilon : float
        Positive; added to the variance before the square root.
    center, scale : bool
        Whether to have the learned offset ``beta`` and factor ``gamma`` (without, they are 0 and 1).
    beta_initializer, gamma_initializer, moving_mean_initializer, moving_variance_initializer : str or Initializer
        zeros, ones, zeros, ones by default, as in Keras.

    Notes
    -----
    Weights, in Keras order: gamma (c,), beta (c,) (trainable, each only when enabled), moving_mean (c,),
    moving_variance (c,) (non-trainable: they live in the model's state arena, out of the optimizer's reach).
    A training batch with one value per channel (e.g. one sample of shape (c,)) has zero variance: the output is
    then beta and the input gradient zero, with no error, as in Keras. Backward in inference mode is the gradient
    of the affine map with the moving statistics. Sums over the batch run in double and are bitwise the same
    for any thread count.

    Examples
    --------
    >>> from fastnn import Sequential, layers
    >>> model = Sequential([layers.Input((4,)), layers.BatchNormalization()])
    >>> [w.shape for w in model.get_weights()]
    [(4,), (4,), (4,), (4,)]
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise NotImplementedError(f"BatchNormalization supports one channel axis, the last (-1), got "
                                      f"axis={axis!r}")
        if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real) or not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNormalization momentum must be a number in [0, 1], got {momentum!r}")
        if (isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) or not np.isfinite(epsilon)
                or epsilon <= 0):
            raise ValueError(f"BatchNormalization epsilon must be a positive number, got {epsilon!r}")
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)

    def compute_output_shape(self, input_shape):
        ndim = len(input_shape) + 1  # with the batch axis, as Keras counts `axis`
        if self.axis not in (-1, ndim - 1):
            raise NotImplementedError(f"BatchNormalization supports only the last axis (-1 or {ndim - 1} for "
                                      f"inputs of shape (batch,) + {tuple(input_shape)}), got axis={self.axis}")
        return tuple(input_shape)

    def param_specs(self):
        c = self.input_shape[-1]
        specs = []
        if self.scale:
            specs.append(ParamSpec("gamma", (c,), self.gamma_initializer, c, c, True))
        if self.center:
            specs.append(ParamSpec("beta", (c,), self.beta_initializer, c, c, True))
        specs.append(ParamSpec("moving_mean", (c,), self.moving_mean_initializer, c, c, False))
        specs.append(ParamSpec("moving_variance", (c,), self.moving_variance_initializer, c, c, False))
        return specs

    def _params(self):
        """(gamma or None, beta or None, moving_mean, moving_variance)."""
        w = list(self.weights)
        gamma = w.pop(0) if self.scale else None
        beta = w.pop(0) if self.center else None
        return gamma, beta, w[0], w[1]

    def forward(self, x, training=False):
        c = self.input_shape[-1]
        x2 = np.ascontiguousarray(x).reshape(-1, c)
        gamma, beta, moving_mean, moving_var = self._params()
        training = bool(training) and self.trainable
        nt = _threads()
        if training:
            mean, var = self._buffer("mean", (c,)), self._buffer("var", (c,))
            _kernels.batchnorm_stats(x2, mean, var, self.momentum, moving_mean, moving_var, nt)
        else:
            mean, var = moving_mean, moving_var
        y = self._buffer("y", x2.shape)
        _kernels.batchnorm_forward(x2, mean, var, gamma, beta, self.epsilon, y, nt)
        self._x, self._mean, self._var, self._training = x2, mean, var, training
        return y.reshape(x.shape)

    def backward(self, grad_out, need_dx=True, accumulate=False):
        x2 = self._x
        dy = np.ascontiguousarray(grad_out).reshape(x2.shape)
        grads = list(self.grads) if self.trainable else []
        dgamma = grads.pop(0) if self.scale and grads else None
        dbeta = grads.pop(0) if self.center and grads else None
        if not self.trainable and not accumulate:
            self._zero_grads()
        dx = self._buffer("dx", x2.shape) if need_dx else None
        if dx is not None or dgamma is not None or dbeta is not None:
            _kernels.batchnorm_backward(x2, dy, self._mean, self._var, self._params()[0], self.epsilon,
                                        self._training, dx, dgamma, dbeta, accumulate, _threads())
        return None if dx is None else dx.reshape(grad_out.shape)

    def get_config(self):
        config = super().get_config()
        config.update(axis=self.axis, momentum=self.momentum, epsilon=self.epsilon, center=self.center,
                      scale=self.scale)
        for key in _INITIALIZERS:
            config[key] = initializers.serialize(getattr(self, key))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in _INITIALIZERS:
            if isinstance(config.get(key), dict):
                config[key] = initializers.deserialize(config[key])
        return cls(**config)

    def _config_repr(self):
        return f"momentum={self.momentum}, epsilon={self.epsilon}"
