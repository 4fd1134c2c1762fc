"""Callbacks: objects whose hooks `fit`, `evaluate` and `predict` call at the start and end of training, of each
epoch and of each batch, with Keras' names and behaviour. Subclass `Callback` to write your own.

Built in: `EarlyStopping`, `ModelCheckpoint`, `LearningRateScheduler`, `ReduceLROnPlateau`, `CSVLogger`,
`TerminateOnNaN`; `History` is what `fit` returns.
"""
import csv
import inspect
import math
import numbers
import os
import string
import warnings

from . import _validation
from ._callback_base import Callback, CallbackList, History

__all__ = ["Callback", "CallbackList", "History", "EarlyStopping", "ModelCheckpoint", "LearningRateScheduler",
           "ReduceLROnPlateau", "CSVLogger", "TerminateOnNaN", "get"]


# ---- watching a logged value ---------------------------------------------------------------------------------
class _Monitor:
    """A logged value to watch ("val_loss", "accuracy", ...) and which way is better.

    mode "auto" means higher is better for accuracies (names containing "acc"), AUC, precision and recall,
    lower for everything else (losses, errors). A value improves on a reference when it is better by more
    than `min_delta`.
    """

    def __init__(self, owner, monitor, mode, min_delta=0.0):
        if not isinstance(monitor, str):
            raise TypeError(f"{owner}: monitor must be the name of a logged value, e.g. 'val_loss', got {monitor!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":
            base = monitor[4:] if monitor.startswith("val_") else monitor
            mode = "max" if any(part in base for part in ("acc", "auc", "precision", "recall")) else "min"
        self.owner, self.name, self.mode = owner, monitor, mode
        self.sign = 1.0 if mode == "max" else -1.0
        self.min_delta = abs(_validation.as_finite_float(min_delta, "min_delta"))
        self.worst = -math.inf if mode == "max" else math.inf

    def improves(self, value, reference):
        return self.sign * (value - reference) > self.min_delta  # False for NaN

    def value(self, logs, consequence):
        """The monitored value in `logs`, or None after a warning naming the keys that are there."""
        value = (logs or {}).get(self.name)
        if value is None:
            warnings.warn(f"{self.owner} monitors {self.name!r}, which is not in the logs (available: "
                          f"{', '.join(sorted(logs or {})) or 'none'}); {consequence}", stacklevel=3)
            return None
        return float(value)


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


# ---- built-in callbacks -----------------------------------------------------------------------------------------
class EarlyStopping(Callback):
    """Stop training when a monitored value has stopped improving.

    Parameters
    ----------
    monitor : str, default "val_loss"
        A key of the epoch logs.
    min_delta : float, default 0
        Changes smaller than this are not improvements.
    patience : int, default 0
        Epochs without improvement after which training stops.
    verbose : {0, 1}, default 0
        1 prints a line when stopping and when restoring weights.
    mode : {"auto", "min", "max"}, default "auto"
        "auto": "max" for accuracies, "min" otherwise.
    baseline : float, optional
        Training stops unless the value gets better than this within `patience` epochs.
    restore_best_weights : bool, default False
        When training ends, set the weights of the best epoch back into the model.
    start_from_epoch : int, default 0
        Epochs to let pass before watching (a warm-up).

    Examples
    --------
    >>> stop = EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    >>> model.fit(x, y, epochs=100, validation_split=0.2, callbacks=[stop])  # doctest: +SKIP
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        self._monitor = _Monitor("EarlyStopping", monitor, mode, min_delta)
        self.monitor = monitor
        self.patience = _validation.as_positive_int(patience, "patience", minimum=0)
        self.start_from_epoch = _validation.as_positive_int(start_from_epoch, "start_from_epoch", minimum=0)
        self.baseline = None if baseline is None else _validation.as_finite_float(baseline, "baseline")
        self.restore_best_weights = bool(restore_best_weights)
        self.verbose = verbose
        self.on_train_begin()

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = self._monitor.worst
        self.best_epoch = None
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        current = self._monitor.value(logs, "early stopping is not checking anything")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()  # something to restore even if nothing ever improves
            self.best_epoch = epoch
        self.wait += 1
        if self._monitor.improves(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._monitor.improves(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model (or only its weights) at the end of every epoch, or only when a monitored value improves.

    Parameters
    ----------
    filepath : str or path-like
        May hold format fields filled from the epoch (from 1) and the logs, e.g.
        ``"ckpt/model-{epoch:02d}-{val_loss:.2f}.fnn"``. Missing folders are created.
    monitor : str, default "val_loss"
    verbose : {0, 1}, default 0
    save_best_only : bool, default False
        Save only when `monitor` improves on the best value so far.
    save_weights_only : bool, default False
        Call ``model.save_weights(path)`` instead of ``model.save(path)``.
    mode : {"auto", "min", "max"}, default "auto"
    initial_value_threshold : float, optional
        With `save_best_only`, the value to beat before the first save.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", initial_value_threshold=None):
        try:
            self.filepath = os.fspath(filepath)
            list(string.Formatter().parse(self.filepath))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"ModelCheckpoint: filepath must be a path, optionally with format fields such as "
                            f"{{epoch:02d}}, got {filepath!r}: {exc}") from None
        self._monitor = _Monitor("ModelCheckpoint", monitor, mode)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.initial_value_threshold = (None if initial_value_threshold is None else
                                        _validation.as_finite_float(initial_value_threshold, "initial_value_threshold"))
        self.on_train_begin()

    def on_train_begin(self, logs=None):
        self.best = self._monitor.worst if self.initial_value_threshold is None else self.initial_value_threshold

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            current = self._monitor.value(logs, "no checkpoint is saved")
            if current is None:
                return
            if not self._monitor.improves(current, self.best):
                if self.verbose:
                    print(f"Epoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
                return
            if self.verbose:
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to {current:.5f}")
            self.best = current
        path = self.format_path(epoch, logs)
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if self.verbose:
            print(f"Epoch {epoch + 1}: saving {'weights' if self.save_weights_only else 'model'} to {path}")
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)

    def format_path(self, epoch, logs):
        """The file path for `epoch` (from 0): `filepath` with its fields filled from the epoch and logs."""
        try:
            return self.filepath.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"ModelCheckpoint cannot fill filepath {self.filepath!r} at epoch {epoch + 1}: "
                             f"{type(exc).__name__}: {exc}; available fields: epoch, {', '.join(logs)}") from None


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


class CSVLogger(Callback):
    """Write each epoch's logs as a row of a CSV file: an "epoch" column (from 0), then the log keys sorted.

    Parameters
    ----------
    filename : str or path-like
    separator : str, default ","
        One character.
    append : bool, default False
        Add to an existing file (no second header) instead of overwriting it.
    """

    def __init__(self, filename, separator=",", append=False):
        self.filename = os.fspath(filename)
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"CSVLogger: separator must be one character, got {separator!r}")
        self.separator = separator
        self.append = bool(append)
        self._keys = None

    def on_train_begin(self, logs=None):
        self._keys = None
        if not self.append:
            open(self.filename, "w").close()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        header = None
        if self._keys is None:
            self._keys = sorted(logs)
            if not os.path.exists(self.filename) or os.path.getsize(self.filename) == 0:
                header = ["epoch"] + self._keys
        # opened per row, so the file is complete after every epoch even if training is interrupted
        with open(self.filename, "a", newline="") as f:
            writer = csv.writer(f, delimiter=self.separator)
            if header:
                writer.writerow(header)
            writer.writerow([epoch] + [logs.get(key, "NA") for key in self._keys])


class TerminateOnNaN(Callback):
    """Stop training when the loss becomes NaN or infinite.

    Without it, `fit` raises FloatingPointError at such a batch; with it, training stops there and `fit`
    returns normally, the model keeping the weights of the last good step and the history ending with the
    non-finite loss.
    """

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: invalid loss {loss}, terminating training")
            self.model.stop_training = True


# ---- callbacks given by name ------------------------------------------------------------------------------------
_BY_NAME = {"early_stopping": EarlyStopping, "reduce_lr_on_plateau": ReduceLROnPlateau,
            "terminate_on_nan": TerminateOnNaN}
_NEED_ARGUMENTS = {"model_checkpoint": "ModelCheckpoint(filepath)", "csv_logger": "CSVLogger(filename)",
                   "learning_rate_scheduler": "LearningRateScheduler(schedule)"}


def get(name):
    """A callback with its default settings from a name: "early_stopping" (or "EarlyStopping"),
    "reduce_lr_on_plateau", "terminate_on_nan"."""
    key = name.replace("_", "").lower()
    for known, cls in _BY_NAME.items():
        if key == known.replace("_", ""):
            return cls()
    for known, call in _NEED_ARGUMENTS.items():
        if key == known.replace("_", ""):
            raise ValueError(f"callback {name!r} needs arguments: pass fastnn.callbacks.{call} instead of a name")
    raise ValueError(f"unknown callback {name!r}; valid names: {', '.join(sorted(_BY_NAME))} (others, such as "
                     f"{', '.join(_NEED_ARGUMENTS.values())}, are passed as objects)")
