"""The optimizer base class (learning rate or schedule, clipping, weight decay, step count, state arrays) and
the argument checks the optimizers share; the optimizers themselves are in `fastnn.optimizers`."""
import math

import numpy as np

from . import _kernels, _validation, schedules
from ._arena import _aligned_empty

_threads = _kernels.omp_max_threads


def _optional(value, name, check):
    return None if value is None else check(value, name)


def _positive(value, name):
    return _validation.as_finite_float(value, name, positive=True)


def _nonnegative(value, name):
    return _validation.as_finite_float(value, name, low=0.0)


def _fraction(value, name):
    """A decay rate in [0, 1)."""
    v = _validation.as_finite_float(value, name, low=0.0)
    if v >= 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {v}")
    return v


class Optimizer:
    """Base class: the learning rate (float or schedule), clipping and weight decay, the step count and the state.

    ``learning_rate`` reads the rate of the next step (a schedule evaluated at `iterations`); assigning a float
    or a schedule between steps replaces it. ``iterations`` counts the steps taken.
    """

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None):
        self.learning_rate = learning_rate
        self.weight_decay = _optional(weight_decay, "weight_decay", _nonnegative)
        self.clipnorm = _optional(clipnorm, "clipnorm", _positive)
        self.clipvalue = _optional(clipvalue, "clipvalue", _positive)
        self.global_clipnorm = _optional(global_clipnorm, "global_clipnorm", _positive)
        clips = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
        if sum(v is not None for v in clips.values()) > 1:
            given = ", ".join(f"{k}={v}" for k, v in clips.items() if v is not None)
            raise ValueError(f"only one of clipnorm, clipvalue and global_clipnorm can be set, got {given}")
        self.iterations = 0
        self._state, self._state_size, self._restored = {}, None, False
        self._kernel, self._bound, self._bound_names = None, (None, None, None), ()

    # ---- learning rate ------------------------------------------------------------------------------------
    @property
    def learning_rate(self):
        return self._learning_rate if self._schedule is None else self._scheduled(self.iterations)

    @learning_rate.setter
    def learning_rate(self, value):
        if callable(value):
            self._schedule, self._learning_rate = value, None
        else:
            self._schedule, self._learning_rate = None, _positive(value, "learning_rate")

    def _scheduled(self, step):
        value = self._schedule(step)
        try:
            lr = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"the learning-rate schedule {self._schedule!r} returned {value!r} at step {step}; "
                            f"a number is expected") from None
        if not 0.0 <= lr < math.inf:
            raise ValueError(f"the learning-rate schedule {self._schedule!r} returned {lr} at step {step}; a "
                             f"finite learning rate >= 0 is expected")
        return lr

    # ---- one step -----------------------------------------------------------------------------------------
    def apply(self, params, grads, segments=None):
        """One update of the flat parameter arena `params` (float32, in place) from the gradient arena `grads`.

        Parameters
        ----------
        params, grads : ndarray of float32, shape (n,)
        segments : list of (offset, size), optional
            Where each weight tensor lies in the arenas (sorted, disjoint); only those elements are updated, and
            ``clipnorm`` clips each one separately. Default: the whole array is one tensor.
        """
        step = self.iterations
        lr = self._learning_rate if self._schedule is None else self._scheduled(step)
        kernel = self._kernel
        if kernel is None or params is not self._bound[0] or grads is not self._bound[1] \
                or segments is not self._bound[2] or self._state_names() != self._bound_names:
            kernel = self._bind(params, grads, segments)
        n_threads = _threads()
        clipnorm = self.clipnorm if self.global_clipnorm is None else self.global_clipnorm
        if clipnorm is not None:
            kernel.compute_clip_scales(clipnorm, self.global_clipnorm is not None, n_threads)
        self._update(kernel, clipnorm is not None, lr, step + 1, n_threads)
        self.iterations = step + 1

    def _bind(self, params, grads, segments):
        """Bind the arrays a step works on to a kernel object, once per arena (and state)."""
        n = params.shape[0]
        pairs = [(0, n)] if segments is None else [(int(o), int(s)) for o, s in segments]
        end = 0
        for offset, size in pairs:
            if offset < end or size < 0 or offset + size > n:
                raise ValueError(f"segments must be sorted, disjoint (offset, size) pairs inside the {n} "
                                 f"parameters; got {pairs}")
            end = offset + size
        state, active = self._arrays(n), self._state_names()
        self._kernel = _kernels.ArenaUpdate(np.array([o for o, _ in pairs], np.int64),
                                            np.array([s for _, s in pairs], np.int64),
                                            np.ones(len(pairs), np.float32), np.zeros(len(pairs)), grads, params,
                                            tuple(state[name] if name in active else None
                                                  for name in self._KERNEL_STATE))
        self._bound, self._bound_names = (params, grads, segments), active
        return self._kernel

    def _decay_and_clip(self):
        return self.weight_decay or 0.0, self.clipvalue or 0.0

    # ---- state ----------------------------------------------------------------------------------------------
    _KERNEL_STATE = ()  # the state arrays in the order the kernel takes them

    def _state_names(self):
        """Names of the state arrays this configuration uses, each the size of the parameter arena."""
        return self._KERNEL_STATE

    def _state_initial(self, name):
        return 0.0

    def _arrays(self, n):
        """The state arrays for an arena of n parameters, created on first use (and again if the model's size
        changed, unless they were restored with `set_variables`, which must match). Arrays a changed setting no
        longer uses are kept (unused) and come back into use if it changes back, as Keras keeps its variables."""
        if self._state_size != n:
            if self._restored:
                raise ValueError(f"{type(self).__name__}'s restored state has {self._state_size} elements per "
                                 f"array, but the parameters have {n}")
            self._state = {name: _filled(n, self._state_initial(name)) for name in self._state_names()}
            self._state_size = n
        for name in self._state_names():  # a setting changed between steps (momentum from 0, say) needs more
            if name not in self._state:
                self._state[name] = _filled(n, self._state_initial(name))
        self._restored = False
        return self._state

    def variables(self):
        """The optimizer's state as a dict of name -> flat float32 array (each the size of the parameter
        arena), e.g. {"velocity": ...}; empty before the first step or for stateless settings."""
        return dict(self._state)

    def set_variables(self, variables):
        """Restore state saved from `variables()`: the same names, equal-length 1-D arrays (an empty dict
        changes nothing). The next step checks the length against the parameters."""
        if not variables:
            return
        names = set(self._state_names())
        if set(variables) != names:
            raise ValueError(f"{type(self).__name__} with this configuration has state {sorted(names)}, got "
                             f"{sorted(variables)}")
        arrays = {name: _validation.as_float32_array(value, f"optimizer state {name!r}", ndim=1)
                  for name, value in variables.items()}
        sizes = {a.shape[0] for a in arrays.values()}
        if len(sizes) > 1:
            raise ValueError(f"optimizer state arrays must have equal lengths, got "
                             f"{ {name: a.shape[0] for name, a in arrays.items()} }")
        self._state = {name: _filled(a.shape[0], a) for name, a in arrays.items()}
        self._state_size, self._restored, self._kernel = sizes.pop(), True, None

    # ---- configuration ----------------------------------------------------------------------------------
    def get_config(self):
        """The constructor arguments (a schedule as ``schedules.serialize`` gives it); clipping and weight
        decay only when set."""
        lr = self._learning_rate
        if self._schedule is not None:
            lr = self._schedule
            if type(lr) in schedules._CLASSES.values():
                lr = schedules.serialize(lr)
        config = {"learning_rate": lr}
        for key in ("weight_decay", "clipnorm", "clipvalue", "global_clipnorm"):
            if getattr(self, key) is not None:
                config[key] = getattr(self, key)
        return config

    @classmethod
    def from_config(cls, config):
        """An optimizer from the dict `get_config()` returned."""
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)

    def __repr__(self):
        config = {**self.get_config(), "learning_rate": self._schedule or self._learning_rate}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in config.items())})"


def _filled(n, value):
    out = _aligned_empty(n)
    out[...] = value
    return out
