"""Optimizers by Keras name or as objects, with Keras 3's update rules and defaults.

Each step is one fused C kernel over the model's flat parameter arena (gradient clipping, weight decay and the
update in one pass), so its cost does not grow with the number of layers. Clipping by norm adds one pass that
computes the norms. Arithmetic is float32 as in Keras; the rules are written out in each class.

Options every optimizer takes (Keras 3's):

* ``weight_decay``: decoupled, applied to every trainable weight before the update: ``w -= w * weight_decay * lr``
  (PyTorch's SGD/Adam/RMSprop/Adagrad instead add ``weight_decay * w`` to the gradient; its AdamW does as Keras).
* ``clipnorm``: each weight tensor's gradient is scaled to an L2 norm of at most this;
  ``global_clipnorm``: the whole gradient is; ``clipvalue``: each gradient element is clipped to
  ``[-clipvalue, clipvalue]``. At most one of the three (Keras 3 allows only one).
"""
from . import schedules
from ._optimizer_base import Optimizer, _fraction, _nonnegative
from ._serialization import deserialize_allowed


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, Keras' rule::

        velocity = momentum * velocity - learning_rate * g
        w = w + velocity            (nesterov: w + momentum * velocity - learning_rate * g)

    PyTorch keeps ``buf = -velocity / learning_rate`` instead: the same steps while the rate is constant.

    Parameters
    ----------
    learning_rate : float > 0 or schedule, default 0.01
    momentum : float in [0, 1), default 0
    nesterov : bool, default False
    weight_decay, clipnorm, clipvalue, global_clipnorm : see the module docstring.
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm)
        self.momentum = _fraction(momentum, "momentum")
        self.nesterov = bool(nesterov)

    _KERNEL_STATE = ("velocity",)

    def _state_names(self):
        return self._KERNEL_STATE if self.momentum > 0.0 else ()

    def _update(self, kernel, scaled, lr, step, n_threads):
        kernel.sgd(scaled, lr, self.momentum, self.nesterov, *self._decay_and_clip(), n_threads)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam, Keras' rule (t = iterations + 1)::

        m = m + (g - m) * (1 - beta_1)
        v = v + (g * g - v) * (1 - beta_2)
        w = w - m * lr_t / (sqrt(v) + epsilon),    lr_t = learning_rate * sqrt(1 - beta_2**t) / (1 - beta_1**t)

    `epsilon` is the paper's "epsilon hat", added to sqrt(v) rather than to the bias-corrected sqrt(v_hat) as
    PyTorch does: PyTorch with ``eps = epsilon / sqrt(1 - beta_2**t)`` takes the same steps. Defaults differ too
    (PyTorch's eps is 1e-8).

    Parameters
    ----------
    learning_rate : float > 0 or schedule, default 0.001
    beta_1, beta_2 : float in [0, 1), default 0.9 and 0.999
    epsilon : float >= 0, default 1e-7
    weight_decay, clipnorm, clipvalue, global_clipnorm : see the module docstring.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm)
        self.beta_1 = _fraction(beta_1, "beta_1")
        self.beta_2 = _fraction(beta_2, "beta_2")
        self.epsilon = _nonnegative(epsilon, "epsilon")

    _KERNEL_STATE = ("momentum", "velocity")

    def _update(self, kernel, scaled, lr, step, n_threads):
        kernel.adam(scaled, lr, self.beta_1, self.beta_2, self.epsilon, step, *self._decay_and_clip(), n_threads)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class AdamW(Adam):
    """Adam with decoupled weight decay, default 0.004 (Keras 3): ``w -= w * weight_decay * learning_rate``
    before each Adam step. PyTorch's AdamW applies the same decay, with a default of 0.01.

    Parameters
    ----------
    learning_rate : float > 0 or schedule, default 0.001
    weight_decay : float >= 0, default 0.004
    beta_1, beta_2, epsilon, clipnorm, clipvalue, global_clipnorm : as `Adam`.
    """

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 clipnorm=None, clipvalue=None, global_clipnorm=None):
        if weight_decay is None:
            raise ValueError("AdamW needs a weight_decay (a float >= 0), got None")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, weight_decay, clipnorm, clipvalue, global_clipnorm)


class RMSprop(Optimizer):
    """RMSprop, Keras' rule::

        velocity = rho * velocity + (1 - rho) * g * g
        denominator = velocity + epsilon                (centered: velocity - average_gradient**2 + epsilon,
                                                         average_gradient = rho * average_gradient + (1 - rho) * g)
        increment = learning_rate * g / sqrt(denominator)
        w = w - increment                               (momentum > 0: buf = momentum * buf + increment; w -= buf)

    PyTorch adds epsilon outside the square root (``sqrt(velocity) + eps``), scales by the learning rate after the
    momentum buffer (the same while the rate is constant), and defaults to lr 0.01, alpha (rho) 0.99, eps 1e-8.

    Parameters
    ----------
    learning_rate : float > 0 or schedule, default 0.001
    rho : float in [0, 1), default 0.9
    momentum : float in [0, 1), default 0
    epsilon : float >= 0, default 1e-7
    centered : bool, default False
    weight_decay, clipnorm, clipvalue, global_clipnorm : see the module docstring.
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm)
        self.rho = _fraction(rho, "rho")
        self.momentum = _fraction(momentum, "momentum")
        self.epsilon = _nonnegative(epsilon, "epsilon")
        self.centered = bool(centered)

    _KERNEL_STATE = ("velocity", "momentum", "average_gradient")

    def _state_names(self):
        return (("velocity",) + (("momentum",) if self.momentum > 0.0 else ())
                + (("average_gradient",) if self.centered else ()))

    def _update(self, kernel, scaled, lr, step, n_threads):
        kernel.rmsprop(scaled, lr, self.rho, self.momentum, self.epsilon, *self._decay_and_clip(), n_threads)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                "centered": self.centered}


class Adagrad(Optimizer):
    """Adagrad, Keras' rule::

        accumulator = accumulator + g * g               (starting at initial_accumulator_value)
        w = w - learning_rate * g / sqrt(accumulator + epsilon)

    PyTorch adds epsilon outside the square root and starts the accumulator at 0 by default.

    Parameters
    ----------
    learning_rate : float > 0 or schedule, default 0.001
    initial_accumulator_value : float >= 0, default 0.1
    epsilon : float >= 0, default 1e-7
    weight_decay, clipnorm, clipvalue, global_clipnorm : see the module docstring.
    """

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm)
        self.initial_accumulator_value = _nonnegative(initial_accumulator_value, "initial_accumulator_value")
        self.epsilon = _nonnegative(epsilon, "epsilon")

    _KERNEL_STATE = ("accumulator",)

    def _state_initial(self, name):
        return self.initial_accumulator_value

    def _update(self, kernel, scaled, lr, step, n_threads):
        kernel.adagrad(scaled, lr, self.epsilon, *self._decay_and_clip(), n_threads)

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}
_CLASSES = {cls.__name__: cls for cls in _BY_NAME.values()}


def get(identifier):
    """An optimizer from a Keras name (with Keras' default settings), a `serialize` dict, or an Optimizer."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(f"unknown optimizer {identifier!r}; valid names: {', '.join(sorted(_BY_NAME))}")


def serialize(optimizer):
    """``{"class_name": ..., "config": {...}}`` (JSON-ready) for one of fastnn's own optimizers, its
    learning-rate schedule included. The state (`variables()`) and `iterations` are not part of it."""
    if type(optimizer) not in _CLASSES.values():
        raise TypeError(f"only fastnn's own optimizers ({', '.join(_CLASSES)}) can be serialized, got "
                        f"{type(optimizer).__name__}")
    config = optimizer.get_config()
    if callable(config["learning_rate"]):
        raise TypeError(f"the learning-rate schedule {config['learning_rate']!r} is not one of fastnn's own "
                        f"({', '.join(schedules._CLASSES)}), so the optimizer cannot be serialized")
    return {"class_name": type(optimizer).__name__, "config": config}


def deserialize(config):
    """An optimizer from what `serialize` returned; only fastnn's own optimizer and schedule classes are built."""
    return deserialize_allowed(config, _CLASSES, "optimizer")

