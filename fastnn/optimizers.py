"""Optimizers by Keras name or as objects. Each step is one fused C kernel over the model's flat
parameter arena, so its cost does not grow with the number of layers."""
import numpy as np

from . import _kernels, _validation

_threads = _kernels.omp_max_threads


class Optimizer:
    """Base class: holds the learning rate (a plain attribute, settable between steps) and the state."""

    def __init__(self, learning_rate):
        self.learning_rate = learning_rate
        self.iterations = 0

    @property
    def learning_rate(self):
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self._learning_rate = _validation.as_finite_float(value, "learning_rate", positive=True)

    def apply(self, params, grads):
        """One update of the flat parameter arena `params` from the flat gradient arena `grads`."""
        self._update(params, grads)
        self.iterations += 1

    def variables(self):
        """The optimizer's state as a dict of name -> flat float32 array (each the size of the parameter
        arena), e.g. {"velocity": ...}; empty before the first step or for stateless settings."""
        return {}

    def set_variables(self, variables):
        """Restore state saved from `variables()` (same names; arrays of the arena's size)."""
        if variables:
            raise ValueError(f"{type(self).__name__} has no state named {sorted(variables)}")

    def get_config(self):
        return {"learning_rate": self.learning_rate}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, Keras' update rule::

        velocity = momentum * velocity - learning_rate * g
        w = w + velocity                                   (nesterov: w + momentum * velocity - learning_rate * g)

    Parameters
    ----------
    learning_rate : float, default 0.01
    momentum : float in [0, 1), default 0
    nesterov : bool, default False
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False):
        super().__init__(learning_rate)
        self.momentum = _validation.as_finite_float(momentum, "momentum", low=0.0)
        if self.momentum >= 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        self.nesterov = bool(nesterov)
        self._velocity = None

    def _update(self, params, grads):
        velocity = None
        if self.momentum > 0.0:
            if self._velocity is None or self._velocity.shape != params.shape:
                self._velocity = np.zeros_like(params)
            velocity = self._velocity
        _kernels.sgd(params, grads, velocity, self._learning_rate, self.momentum, self.nesterov, _threads())

    def variables(self):
        return {} if self._velocity is None else {"velocity": self._velocity}

    def set_variables(self, variables):
        unknown = set(variables) - {"velocity"}
        if unknown:
            raise ValueError(f"SGD has no state named {sorted(unknown)}; it has 'velocity'")
        if "velocity" in variables:
            self._velocity = np.array(variables["velocity"], dtype=np.float32, copy=True).reshape(-1)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "momentum": self.momentum, "nesterov": self.nesterov}


_BY_NAME = {"sgd": SGD}


def get(identifier):
    """An optimizer from a Keras name (with Keras' default settings) or an Optimizer object."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(f"unknown optimizer {identifier!r}; valid names: {', '.join(sorted(_BY_NAME))}")
