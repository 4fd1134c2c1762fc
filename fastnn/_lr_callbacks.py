"""The callbacks that drive the optimizer's learning rate: `LearningRateScheduler` and `ReduceLROnPlateau`."""
import inspect
import numbers

from . import _validation
from ._callback_base import Callback
from ._monitor import _Monitor

def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _current_lr(model, owner):
    """The optimizer's learning rate, refused (as in Keras) when a schedule drives it: setting a number would
    silently replace the schedule."""
    optimizer = getattr(model, "optimizer", None)
    configured = optimizer.get_config().get("learning_rate") if hasattr(optimizer, "get_config") else None
    lr = getattr(optimizer, "learning_rate", None)
    if not (_is_number(lr) and _is_number(configured)):
        raise TypeError(f"{owner} sets the optimizer's learning rate, but that is driven by a schedule "
                        f"({configured!r}); use either the schedule or {owner}")
    return float(lr)


def _set_lr(model, value, owner):
    try:
        model.optimizer.learning_rate = value
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{owner} could not set the learning rate to {value!r}: {exc}") from None


class LearningRateScheduler(Callback):
    """Set the optimizer's learning rate at the start of each epoch to ``schedule(epoch, lr)``.

    Parameters
    ----------
    schedule : callable
        ``schedule(epoch, lr) -> new lr`` with `epoch` from 0 and `lr` the current rate (a one-argument
        ``schedule(epoch)`` works too).
    verbose : {0, 1}, default 0

    Examples
    --------
    >>> halve = LearningRateScheduler(lambda epoch, lr: lr if epoch < 10 else lr * 0.5)
    """

    def __init__(self, schedule, verbose=0):
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be a function (epoch, lr) -> lr, got {schedule!r}")
        self.schedule = schedule
        self.verbose = verbose
        self._takes_lr = _positional_arity(schedule) != 1

    def on_epoch_begin(self, epoch, logs=None):
        lr = _current_lr(self.model, "LearningRateScheduler")
        new = self.schedule(epoch, lr) if self._takes_lr else self.schedule(epoch)
        if isinstance(new, bool) or not isinstance(new, numbers.Real):
            raise TypeError(f"LearningRateScheduler: the schedule must return a number, got {new!r} at epoch {epoch}")
        _set_lr(self.model, float(new), "LearningRateScheduler")
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {float(new)}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = _current_lr(self.model, "LearningRateScheduler")


def _positional_arity(fn):
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # some builtins have no signature: assume (epoch, lr)
        return 2
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return 2
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty for p in params)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by `factor` when a monitored value has not improved for `patience` epochs.

    Parameters
    ----------
    monitor : str, default "val_loss"
    factor : float in (0, 1), default 0.1
    patience : int, default 10
    verbose : {0, 1}, default 0
    mode : {"auto", "min", "max"}, default "auto"
    min_delta : float, default 1e-4
        Changes smaller than this are not improvements.
    cooldown : int, default 0
        Epochs to wait after a reduction before counting again.
    min_lr : float, default 0
        The rate is never reduced below this.
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0):
        self.factor = _validation.as_finite_float(factor, "factor")
        if not 0.0 < self.factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1) (it multiplies the learning rate), "
                             f"got {factor}")
        self._monitor = _Monitor("ReduceLROnPlateau", monitor, mode, min_delta)
        self.monitor = monitor
        self.patience = _validation.as_positive_int(patience, "patience", minimum=0)
        self.cooldown = _validation.as_positive_int(cooldown, "cooldown", minimum=0)
        self.min_lr = _validation.as_finite_float(min_lr, "min_lr", low=0.0)
        self.verbose = verbose
        self.on_train_begin()

    def on_train_begin(self, logs=None):
        self.best = self._monitor.worst
        self.wait = 0
        self.cooldown_counter = 0

    def on_epoch_end(self, epoch, logs=None):
        lr = _current_lr(self.model, "ReduceLROnPlateau")
        if logs is not None:
            logs["learning_rate"] = lr
        current = self._monitor.value(logs, "the learning rate is left unchanged")
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._monitor.improves(current, self.best):
            self.best, self.wait = current, 0
            return
        if self.cooldown_counter > 0:
            return
        self.wait += 1
        if self.wait >= self.patience and lr > self.min_lr:
            new = max(lr * self.factor, self.min_lr)
            _set_lr(self.model, new, "ReduceLROnPlateau")
            if self.verbose:
                print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
            self.cooldown_counter, self.wait = self.cooldown, 0
