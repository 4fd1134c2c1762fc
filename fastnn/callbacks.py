"""Callbacks: objects whose hooks `fit`, `evaluate` and `predict` call at the start and end of training, of each
epoch and of each batch, with Keras' names and behaviour. Subclass `Callback` to write your own.

Built in: `EarlyStopping`, `ModelCheckpoint`, `LearningRateScheduler`, `ReduceLROnPlateau`, `CSVLogger`,
`TerminateOnNaN`; `History` is what `fit` returns.
"""
import csv
import math
import os
import string

from . import _validation
from ._callback_base import Callback, CallbackList, History
from ._lr_callbacks import LearningRateScheduler, ReduceLROnPlateau
from ._monitor import _Monitor

__all__ = ["Callback", "CallbackList", "History", "EarlyStopping", "ModelCheckpoint", "LearningRateScheduler",
           "ReduceLROnPlateau", "CSVLogger", "TerminateOnNaN", "get"]


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
