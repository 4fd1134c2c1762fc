"""`fit`: epochs of shuffled mini-batches, validation, callbacks and progress."""
import math

import numpy as np

from . import _random, _validation
from .progress import EpochProgress, resolve_verbose
from .training import DEFAULT_BATCH_SIZE, History


def _call(callbacks, hook, *args):
    for cb in callbacks:
        fn = getattr(cb, hook, None)
        if fn is not None:
            fn(*args)


def _validation_set(model, validation_data, validation_split, x, t, w):
    """The held-out data: `validation_data`, or the last `validation_split` of the samples (before shuffling)."""
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be a tuple (x_val, y_val) or (x_val, y_val, sample_weight_val)")
        xv = model._prepare_x(validation_data[0], "validation x")
        tv = model._prepare_targets(validation_data[1], len(xv))
        wv = model._prepare_weights(validation_data[2], len(xv)) if len(validation_data) == 3 else None
        return (x, t, w), (xv, tv, wv)
    split = _validation.as_finite_float(validation_split, "validation_split", low=0.0)
    if split >= 1.0:
        raise ValueError(f"validation_split must be in [0, 1), got {split}")
    if split == 0.0:
        return (x, t, w), None
    n_val = int(len(x) * split)
    if n_val == 0 or n_val == len(x):
        raise ValueError(f"validation_split={split} leaves {len(x) - n_val} training and {n_val} validation "
                         f"samples out of {len(x)}; both must be non-empty")
    cut = len(x) - n_val
    part = (lambda a, s: None if a is None else a[s])
    return (x[:cut], t[:cut], part(w, slice(None, cut))), (x[cut:], t[cut:], part(w, slice(cut, None)))


def fit_loop(model, x, y, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
             validation_data=None, shuffle=True, sample_weight=None, initial_epoch=0):
    model._require_compiled("fit")
    x = model._prepare_x(x)
    t = model._prepare_targets(y, len(x))
    w = model._prepare_weights(sample_weight, len(x))
    batch_size = _validation.as_positive_int(DEFAULT_BATCH_SIZE if batch_size is None else batch_size, "batch_size")
    epochs = _validation.as_positive_int(epochs, "epochs", minimum=0)
    initial_epoch = _validation.as_positive_int(initial_epoch, "initial_epoch", minimum=0)
    verbose = resolve_verbose(verbose)
    callbacks = list(callbacks or [])
    (x, t, w), val = _validation_set(model, validation_data, validation_split, x, t, w)

    n = len(x)
    steps = math.ceil(n / batch_size)
    history = History({"epochs": epochs, "steps": steps, "batch_size": batch_size, "verbose": verbose})
    model.history = history
    model.stop_training = False
    metrics = model._get_metrics()
    x_batch = np.empty((min(batch_size, n),) + x.shape[1:], np.float32)
    for cb in callbacks:
        if hasattr(cb, "set_model"):
            cb.set_model(model)
    _call(callbacks, "on_train_begin", {})
    for epoch in range(initial_epoch, epochs):
        _call(callbacks, "on_epoch_begin", epoch, {})
        order = _random.generator().permutation(n) if shuffle else None
        for m in metrics:
            m.reset()
        progress = EpochProgress(verbose, epoch, epochs, steps)
        total = seen = 0.0
        logs = {}
        for step in range(steps):
            start, stop = step * batch_size, min((step + 1) * batch_size, n)
            if order is None:
                xb, tb = x[start:stop], t[start:stop]
                wb = None if w is None else w[start:stop]
            else:
                idx = order[start:stop]
                xb = np.take(x, idx, axis=0, out=x_batch[:len(idx)])
                tb = t[idx]
                wb = None if w is None else w[idx]
            try:
                loss = model._train_step(xb, tb, wb, metrics)
            except FloatingPointError as exc:
                raise FloatingPointError(f"training stopped at epoch {epoch + 1}, batch {step + 1}: {exc}") from None
            total += loss * (stop - start)
            seen += stop - start
            logs = {"loss": total / seen, **{m.name: m.result() for m in metrics}}
            _call(callbacks, "on_train_batch_end", step, logs)
            progress.update(step + 1, seen, logs)
        if val is not None:
            val_loss = model._evaluate_prepared(*val, max(batch_size, DEFAULT_BATCH_SIZE), metrics)
            logs.update({"val_loss": val_loss, **{f"val_{m.name}": m.result() for m in metrics}})
        progress.finish(logs)
        history._append(epoch, logs)
        _call(callbacks, "on_epoch_end", epoch, logs)
        if model.stop_training:
            break
    _call(callbacks, "on_train_end", {})
    return history
