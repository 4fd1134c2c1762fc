"""The callback machinery: the `Callback` base class, `History` (the callback every `fit` uses) and
`CallbackList`, which resolves the callbacks of one fit/evaluate/predict call and calls their hooks. The public
home of all of these, with the built-in callbacks, is `fastnn.callbacks`."""
import math
import os

_HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
          "on_train_batch_end", "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end",
          "on_predict_begin", "on_predict_end", "on_predict_batch_begin", "on_predict_batch_end")
_LEGACY_HOOKS = {"on_batch_begin": "on_train_batch_begin", "on_batch_end": "on_train_batch_end"}  # Keras' old names
_NO_HOOKS = {name: () for name in _HOOKS}  # shared, read-only: what a call without callbacks iterates over
_BUILT_IN = ("EarlyStopping", "ModelCheckpoint", "LearningRateScheduler", "ReduceLROnPlateau", "CSVLogger",
             "TerminateOnNaN")


class Callback:
    """Base class of callbacks: every hook does nothing; override the ones you need.

    `self.model` is the model being trained (given by `set_model`) and `self.params` holds "epochs", "steps"
    (batches per epoch), "batch_size" and "verbose". `logs` dicts hold "loss", the metrics and, at the end of an
    epoch, the "val_" values; a callback may add entries. Setting ``self.model.stop_training = True`` ends
    training after the current batch.

    Examples
    --------
    >>> class PrintLoss(Callback):
    ...     def on_epoch_end(self, epoch, logs=None):
    ...         print(f"epoch {epoch + 1}: loss {logs['loss']:.3f}")
    """

    model = None
    params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = dict(params)

    def on_train_begin(self, logs=None):
        """Once, before the first epoch."""

    def on_train_end(self, logs=None):
        """Once, after the last epoch (not when training ends with an exception)."""

    def on_epoch_begin(self, epoch, logs=None):
        """At the start of each epoch (`epoch` counts from 0)."""

    def on_epoch_end(self, epoch, logs=None):
        """At the end of each epoch, after validation; `logs` has the epoch's means and the "val_" values."""

    def on_train_batch_begin(self, batch, logs=None):
        """Before each training batch (`batch` counts from 0 within the epoch)."""

    def on_train_batch_end(self, batch, logs=None):
        """After each training batch; `logs` has the epoch's running loss and metrics."""

    def on_batch_begin(self, batch, logs=None):
        """Keras' older name of `on_train_batch_begin`; called at the same point."""

    def on_batch_end(self, batch, logs=None):
        """Keras' older name of `on_train_batch_end`; called at the same point."""

    def on_test_begin(self, logs=None):
        """At the start of `evaluate`, and of the validation at the end of each epoch of `fit`."""

    def on_test_end(self, logs=None):
        """At the end of an evaluation (or validation), with its loss and metrics."""

    def on_test_batch_begin(self, batch, logs=None):
        """Before each evaluation batch."""

    def on_test_batch_end(self, batch, logs=None):
        """After each evaluation batch."""

    def on_predict_begin(self, logs=None):
        """At the start of `predict`."""

    def on_predict_end(self, logs=None):
        """At the end of `predict`."""

    def on_predict_batch_begin(self, batch, logs=None):
        """Before each prediction batch."""

    def on_predict_batch_end(self, batch, logs=None):
        """After each prediction batch; `logs` is {"outputs": that batch's outputs}."""


def _implementation(callback, name):
    """The bound method implementing hook `name`, or None (missing, or the base class's no-op)."""
    method = getattr(callback, name, None)
    if not callable(method):
        return None
    if isinstance(callback, Callback) and getattr(type(callback), name) is getattr(Callback, name):
        return None
    return method


class CallbackList:
    """The callbacks of one `fit`, `evaluate` or `predict` call.

    Each hook is resolved once into the list of methods that implement it (`hooks[name]`), so a batch whose
    callbacks implement no batch hook costs one empty loop. Objects that are not `Callback` subclasses work too
    when they have at least one hook method.
    """

    def __init__(self, callbacks, model, params):
        self.callbacks = resolve(callbacks)
        if not self.callbacks:  # the common case of evaluate/predict: nothing to resolve
            self.hooks = _NO_HOOKS
            return
        for cb in self.callbacks:
            for setter, value in (("set_model", model), ("set_params", params)):
                if callable(getattr(cb, setter, None)):
                    getattr(cb, setter)(value)
        self.hooks = {name: [] for name in _HOOKS}
        for cb in self.callbacks:
            for name, target in [(h, h) for h in _HOOKS] + list(_LEGACY_HOOKS.items()):
                method = _implementation(cb, name)
                if method is not None:
                    self.hooks[target].append(method)

    def call(self, name, *args):
        """Call hook `name` on every callback that implements it."""
        for method in self.hooks[name]:
            method(*args)


# ---- History ------------------------------------------------------------------------------------------------
class History(Callback):
    """What `fit` returns (also `model.history`): `history` maps "loss", "val_loss", "accuracy", ... to lists of
    per-epoch values, `epoch` lists the epochs run (from 0) and `params` the fit settings.

    Examples
    --------
    >>> history = model.fit(x, y, epochs=5, validation_split=0.2, verbose=0)  # doctest: +SKIP
    >>> history.history["val_loss"][-1]  # doctest: +SKIP
    >>> history.plot("training.png")  # doctest: +SKIP
    """

    def __init__(self):
        self.history = {}
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def plot(self, path, dpi=100):
        """Draw the loss and each metric per epoch, training and validation curves together, into an image.

        Needs matplotlib (``pip install "fastnn[plot]"``).

        Parameters
        ----------
        path : str or path-like
            The image file; its extension picks the format (e.g. ".png", ".svg", ".pdf").
        dpi : int, default 100

        Returns
        -------
        matplotlib.figure.Figure
        """
        try:
            from matplotlib.figure import Figure  # no pyplot: no global figure state, no GUI backend
        except ImportError:
            raise ImportError('History.plot needs matplotlib: pip install "fastnn[plot]"') from None
        names = [k for k in self.history if not (k.startswith("val_") and k[4:] in self.history)]
        if not self.epoch or not names:
            raise ValueError("nothing to plot: the history has no epochs (fit has not run)")
        cols = min(3, len(names))
        rows = math.ceil(len(names) / cols)
        fig = Figure(figsize=(4.5 * cols, 3.5 * rows))
        for i, name in enumerate(names):
            ax = fig.add_subplot(rows, cols, i + 1)
            paired = "val_" + name in self.history
            for key, label in ((name, "train"), ("val_" + name, "validation")):
                values = self.history.get(key)
                if values:
                    # a key first logged part-way through training belongs to the last epochs
                    ax.plot([e + 1 for e in self.epoch[-len(values):]], values, marker="o", label=label)
            ax.set_title(name)
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
            if paired:
                ax.legend()
        fig.tight_layout()
        fig.savefig(os.fspath(path), dpi=dpi)
        return fig

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"




# ---- resolving what the user passed -------------------------------------------------------------------------
def resolve(callbacks):
    """A list of callback objects from `callbacks` (None, one callback or name, or a list of them)."""
    if callbacks is None:
        return []
    if isinstance(callbacks, (str, Callback)) or _hook_names(callbacks):
        callbacks = [callbacks]
    elif not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks must be a list of callbacks, got {type(callbacks).__name__}")
    resolved = []
    for cb in callbacks:
        if isinstance(cb, type):
            raise TypeError(f"callbacks must be instances, got the class {cb.__name__}: write {cb.__name__}(...)")
        if isinstance(cb, str):
            from .callbacks import get  # the built-ins subclass Callback, so they live in the module above this one
            cb = get(cb)
        elif not isinstance(cb, Callback) and not _hook_names(cb):
            raise TypeError(f"{cb!r} is not a callback: it has none of the hooks {', '.join(_HOOKS)}; subclass "
                            f"fastnn.callbacks.Callback, or use one of {', '.join(_BUILT_IN)}")
        resolved.append(cb)
    return resolved


def _hook_names(obj):
    return [name for name in _HOOKS + tuple(_LEGACY_HOOKS) if callable(getattr(obj, name, None))]
