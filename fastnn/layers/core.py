"""Core layers: Dense, Activation, Flatten, Reshape, Dropout."""
import numpy as np

from .. import _kernels, _random, activations, initializers
from .base import Layer, ParamSpec

_threads = _kernels.omp_max_threads


class _Activated:
    """What Dense and Activation share: an activation by name, and the logits switch.

    When the model fuses this layer's final softmax/sigmoid into the loss, it sets `emit_logits` for the
    passes that feed the loss: forward then stops before the activation and backward starts after it.
    """

    def _set_activation(self, activation):
        if activation is not None and not isinstance(activation, str):
            raise TypeError(f"activation must be a name, got {activation!r}; valid: {', '.join(activations.NAMES)}")
        self._act = activations.code(activation)
        # applied in the GEMM epilogue (softmax is row-wise; gelu's gradient needs the pre-activation)
        self._epilogue_act = self._act != activations.SOFTMAX and not activations.needs_preactivation(self._act)
        self.activation = (activation or "linear").lower()
        self._alpha = activations.LEAKY_RELU_SLOPE
        self.emit_logits = False

    def _activate(self, z, y):
        """y = act(z) on 2-D views; z may be y."""
        if self._act == activations.SOFTMAX:
            _kernels.softmax_forward(z, y, _threads())
        elif self._act != 0 or z is not y:
            _kernels.act_forward(z, None, y, self._act, self._alpha, _threads())

    def _activation_grad(self, z, y, dy, dz):
        """dz = dy * act'(z) on 2-D views (z is the pre-activation, y the output)."""
        if self._act == activations.SOFTMAX:
            _kernels.softmax_backward(y, dy, dz, _threads())
        else:
            _kernels.act_backward(z.reshape(-1) if z is not None else None, y.reshape(-1), dy.reshape(-1),
                                  dz.reshape(-1), self._act, self._alpha, _threads())


class Dense(Layer, _Activated):
    """Fully connected layer: ``y = activation(x @ kernel + bias)`` on the last axis of x.

    Parameters
    ----------
    units : int
        Output size.
    activation : str, optional
        One of linear (default), relu, leaky_relu, sigmoid, tanh, gelu, softmax.
    use_bias : bool
    kernel_initializer, bias_initializer : str or Initializer
        glorot_uniform and zeros by default, as in Keras.

    Notes
    -----
    Weights, as Keras: kernel (in, units), bias (units,). The bias and elementwise activations are applied
    inside the matrix multiplication's epilogue.

    Examples
    --------
    >>> from fastnn import Sequential, layers
    >>> model = Sequential([layers.Input((4,)), layers.Dense(3, activation="relu")])
    >>> model.predict(np.ones((2, 4), np.float32)).shape
    (2, 3)
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"Dense units must be a positive integer, got {units!r}")
        self.units = int(units)
        self._set_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self._kernel_gradient_sink = None

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def param_specs(self):
        n_in = self.input_shape[-1]
        specs = [ParamSpec("kernel", (n_in, self.units), self.kernel_initializer, n_in, self.units, True)]
        if self.use_bias:
            specs.append(ParamSpec("bias", (self.units,), self.bias_initializer, n_in, self.units, True))
        return specs

    def forward(self, x, training=False):
        x2 = x if x.ndim == 2 else x.reshape(-1, self.input_shape[-1])
        rows = x2.shape[0]
        kernel = self.weights[0]
        bias = self.weights[1] if self.use_bias else None
        y = self._buffer("y", (rows, self.units))
        act = self._act
        if self._epilogue_act and not self.emit_logits:
            _kernels.gemm(x2, kernel, y, False, False, False, bias, act, self._alpha, _threads())
            z = None
        else:
            z = y if (self.emit_logits or act == activations.SOFTMAX) else self._buffer("z", (rows, self.units))
            _kernels.gemm(x2, kernel, z, False, False, False, bias, 0, 0.0, _threads())
            if not self.emit_logits:
                self._activate(z, y)
        self._x, self._z, self._y = x2, z, y
        return y if x.ndim == 2 else y.reshape(x.shape[:-1] + (self.units,))  # leading axes kept: any length

    def backward(self, grad_out, need_dx=True, accumulate=False):
        dy = grad_out.reshape(-1, self.units)
        if self.emit_logits or self._act == 0:
            dz = dy
        else:
            dz = self._buffer("dz", dy.shape)
            self._activation_grad(self._z, self._y, dy, dz)
        nt = _threads()
        # Set by a fused SGD training step (fastnn/_fused_step.py): the kernel's gradient goes straight into
        # its update instead of the gradient arena.
        sink = self._kernel_gradient_sink
        if self.trainable:
            if sink is None:
                _kernels.gemm(self._x, dz, self.grads[0], True, False, accumulate, None, 0, 0.0, nt)
            if self.use_bias:
                _kernels.colsum(dz, self.grads[1], accumulate, nt)
        elif not accumulate:
            self._zero_grads()
        dx = None
        if need_dx:
            dx = self._buffer("dx", self._x.shape)
            _kernels.gemm(dz, self.weights[0], dx, False, True, False, None, 0, 0.0, nt)
            if grad_out.ndim != 2:
                dx = dx.reshape(grad_out.shape[:-1] + (self.input_shape[-1],))
        if sink is not None and self.trainable:
            sink(self._x, dz, nt)  # after dx, which needs the kernel from before the update
        return dx

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, activation=self.activation, use_bias=self.use_bias,
                      kernel_initializer=initializers.serialize(self.kernel_initializer),
                      bias_initializer=initializers.serialize(self.bias_initializer))
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**initializers.deserialize_in(config))

    def _config_repr(self):
        return f"{self.units}, activation={self.activation!r}" + ("" if self.use_bias else ", use_bias=False")


class Activation(Layer, _Activated):
    """Applies an activation function (by name) to its input; softmax works on the last axis."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self._set_activation(activation)

    def forward(self, x, training=False):
        x2 = x.reshape(-1, x.shape[-1])
        y = self._buffer("y", x2.shape)
        if self.emit_logits:
            y[...] = x2
        else:
            self._activate(x2, y)
        self._x, self._y = x2, y
        return y.reshape(x.shape)

    def backward(self, grad_out, need_dx=True, accumulate=False):
        if not need_dx:
            return None
        dy = grad_out.reshape(self._y.shape)
        if self.emit_logits or self._act == 0:
            return grad_out
        dx = self._buffer("dx", dy.shape)
        self._activation_grad(self._x, self._y, dy, dx)
        return dx.reshape(grad_out.shape)

    def get_config(self):
        config = super().get_config()
        config["activation"] = self.activation
        return config

    def _config_repr(self):
        return repr(self.activation)


class Flatten(Layer):
    """Flattens each sample to one axis (no copy)."""

    def compute_output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x, training=False):
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_out, need_dx=True, accumulate=False):
        return grad_out.reshape((grad_out.shape[0],) + self.input_shape) if need_dx else None


class Reshape(Layer):
    """Reshapes each sample to `target_shape` (one entry may be -1), without copying."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)
        if sum(d == -1 for d in self.target_shape) > 1 or any(d == 0 or d < -1 for d in self.target_shape):
            raise ValueError(f"Reshape target_shape must hold positive ints and at most one -1, "
                             f"got {self.target_shape}")

    def compute_output_shape(self, input_shape):
        size = int(np.prod(input_shape))
        known = int(np.prod([d for d in self.target_shape if d != -1]))
        shape = tuple(size // known if d == -1 else d for d in self.target_shape)
        if int(np.prod(shape)) != size:
            raise ValueError(f"cannot reshape input of shape {tuple(input_shape)} ({size} values per sample) "
                             f"to {self.target_shape}")
        return shape

    def forward(self, x, training=False):
        return x.reshape((x.shape[0],) + self.output_shape)

    def backward(self, grad_out, need_dx=True, accumulate=False):
        return grad_out.reshape((grad_out.shape[0],) + self.input_shape) if need_dx else None

    def get_config(self):
        config = super().get_config()
        config["target_shape"] = list(self.target_shape)
        return config


class Dropout(Layer):
    """Inverted dropout: in training, zeroes each value with probability `rate` and scales the rest by
    1 / (1 - rate); at inference it passes its input through.

    The mask comes from a counter-based generator keyed from fastnn's seeded stream (or `seed`), so it is
    reproducible and the same for any thread count.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating)) or not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout rate must be a number in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)
        self._active = False

    def _key(self):
        if self._rng is None:
            return _random.draw_key()
        return int(self._rng.integers(0, 2**63 - 1, dtype=np.int64))

    def forward(self, x, training=False):
        self._active = bool(training) and self.rate > 0.0
        if not self._active:
            return x
        flat = x.reshape(-1)
        y = self._buffer("y", flat.shape)
        self._mask = self._buffer("mask", flat.shape, np.uint8)
        _kernels.dropout_forward(flat, y, self._mask, self.rate, self._key(), _threads())
        return y.reshape(x.shape)

    def backward(self, grad_out, need_dx=True, accumulate=False):
        if not need_dx:
            return None
        if not self._active:
            return grad_out
        flat = grad_out.reshape(-1)
        dx = self._buffer("dx", flat.shape)
        _kernels.dropout_backward(flat, self._mask, dx, self.rate, _threads())
        return dx.reshape(grad_out.shape)

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, seed=self.seed)
        return config

    def _config_repr(self):
        return f"rate={self.rate}"
