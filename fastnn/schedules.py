"""Learning-rate schedules with Keras 3's semantics.

A schedule is a callable ``schedule(step) -> learning rate``. Pass one as the ``learning_rate`` of any optimizer:
it is evaluated at ``optimizer.iterations`` (0 for the first step) before each step, and
``optimizer.learning_rate`` then reads the current value. Values are computed in double precision (Keras
computes them in float32; the optimizer rounds the rate to float32 anyway).

A schedule may return 0 (Keras' warm-up from 0 and cosine decay to ``alpha=0`` do), which makes that step leave
the weights unchanged; a negative, infinite or NaN value stops training with an error naming the step.
"""
import math
import numbers

from . import _validation
from ._serialization import deserialize_allowed


class LearningRateSchedule:
    """Base class: subclasses implement ``__call__(step)`` and ``get_config()``."""

    def __call__(self, step):
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(step)")

    def get_config(self):
        raise NotImplementedError(f"{type(self).__name__} must implement get_config()")

    @classmethod
    def from_config(cls, config):
        """A schedule from the dict `get_config()` returned."""
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _rate(value, name):
    return _validation.as_finite_float(value, name, low=0.0)


def _steps(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite number of steps, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be {'> 0' if minimum > 0 else '>= 0'}, got {value}")
    return value


class Constant(LearningRateSchedule):
    """The same learning rate at every step (what a plain float learning rate does)."""

    def __init__(self, learning_rate):
        self.learning_rate = _rate(learning_rate, "learning_rate")

    def __call__(self, step):
        return self.learning_rate

    def get_config(self):
        return {"learning_rate": self.learning_rate}


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while ``boundaries[i-1] < step <=
    boundaries[i]``, and ``values[-1]`` once ``step > boundaries[-1]`` (Keras' convention).

    Parameters
    ----------
    boundaries : list of numbers, strictly increasing
    values : list of float >= 0, one more than `boundaries`

    Examples
    --------
    >>> s = PiecewiseConstantDecay([100, 200], [0.1, 0.01, 0.001])
    >>> s(100), s(101), s(201)
    (0.1, 0.01, 0.001)
    """

    def __init__(self, boundaries, values):
        boundaries, values = list(boundaries), list(values)
        if len(values) != len(boundaries) + 1:
            raise ValueError(f"values must have one more entry than boundaries: got {len(boundaries)} boundaries "
                             f"and {len(values)} values")
        self.boundaries = [_steps(b, f"boundaries[{i}]", -math.inf) for i, b in enumerate(boundaries)]
        if any(b >= c for b, c in zip(self.boundaries, self.boundaries[1:])):
            raise ValueError(f"boundaries must be strictly increasing, got {self.boundaries}")
        self.values = [_rate(v, f"values[{i}]") for i, v in enumerate(values)]

    def __call__(self, step):
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return value
        return self.values[-1]

    def get_config(self):
        return {"boundaries": list(self.boundaries), "values": list(self.values)}


class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``; with `staircase` the exponent is
    floored, so the rate drops every `decay_steps` steps.

    Parameters
    ----------
    initial_learning_rate : float >= 0
    decay_steps : number > 0
    decay_rate : float > 0
    staircase : bool, default False

    Examples
    --------
    >>> ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)(25)
    0.025
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        self.initial_learning_rate = _rate(initial_learning_rate, "initial_learning_rate")
        self.decay_steps = _steps(decay_steps, "decay_steps", 1e-300)
        self.decay_rate = _validation.as_finite_float(decay_rate, "decay_rate", positive=True)
        self.staircase = bool(staircase)

    def __call__(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate ** p

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase}


class CosineDecay(LearningRateSchedule):
    """Cosine decay with an optional linear warm-up (Keras 3).

    Without `warmup_target`: ``initial_learning_rate * ((1 - alpha) * c + alpha)`` with
    ``c = 0.5 * (1 + cos(pi * min(step, decay_steps) / decay_steps))``. With it: for ``step < warmup_steps`` a
    straight line from `initial_learning_rate` (at step 0) towards `warmup_target`, then the same cosine decay
    from `warmup_target`, over `decay_steps` steps counted from the end of the warm-up.

    Parameters
    ----------
    initial_learning_rate : float >= 0
    decay_steps : number > 0
    alpha : float in [0, 1], default 0
        The final rate as a fraction of the rate the decay starts from.
    warmup_target : float >= 0, optional
    warmup_steps : number >= 0, default 0

    Examples
    --------
    >>> s = CosineDecay(0.0, decay_steps=100, warmup_target=0.1, warmup_steps=10)
    >>> s(0), s(5), s(10), s(110)
    (0.0, 0.05, 0.1, 0.0)
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, warmup_target=None, warmup_steps=0):
        self.initial_learning_rate = _rate(initial_learning_rate, "initial_learning_rate")
        self.decay_steps = _steps(decay_steps, "decay_steps", 1e-300)
        self.alpha = _validation.as_finite_float(alpha, "alpha", low=0.0, high=1.0)
        self.warmup_target = None if warmup_target is None else _rate(warmup_target, "warmup_target")
        self.warmup_steps = _steps(warmup_steps, "warmup_steps", 0)

    def _decay(self, step, start):
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / self.decay_steps))
        return start * ((1.0 - self.alpha) * cosine + self.alpha)

    def __call__(self, step):
        if self.warmup_target is None:
            return self._decay(min(step, self.decay_steps), self.initial_learning_rate)
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            fraction = step / self.warmup_steps
            return (self.warmup_target - self.initial_learning_rate) * fraction + self.initial_learning_rate
        return self._decay(step - self.warmup_steps, self.warmup_target)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


_CLASSES = {cls.__name__: cls for cls in (Constant, PiecewiseConstantDecay, ExponentialDecay, CosineDecay)}


def serialize(schedule):
    """``{"class_name": ..., "config": {...}}`` for one of fastnn's own schedules (JSON-ready)."""
    if type(schedule) not in _CLASSES.values():
        raise TypeError(f"only fastnn's own schedules ({', '.join(_CLASSES)}) can be serialized, got "
                        f"{type(schedule).__name__}")
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config):
    """A schedule from what `serialize` returned; only fastnn's own schedule classes are built."""
    return deserialize_allowed(config, _CLASSES, "schedule")

