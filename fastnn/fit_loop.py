"""`fit`: epochs of shuffled mini-batches, class weights, validation, callbacks and progress."""
import math
import numbers

import numpy as np

from . import _random, _validation
from ._callback_base import CallbackList, History, resolve
from .progress import Progress, resolve_verbose
from .training import DEFAULT_BATCH_SIZE, NonFiniteLossError


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


def _class_sample_weights(model, class_weight, t):
    """Per-sample weights (float32) from `class_weight` = {class index: weight}, as Keras: a sample's class is its
    label (sparse targets), the argmax of its target row, or its 0/1 target when the model has one output unit.
    Classes missing from the dict weigh 1."""
    if not isinstance(class_weight, dict):
        raise TypeError(f"class_weight must be a dict {{class index: weight}}, got {type(class_weight).__name__}")
    out_shape = tuple(model._layers[-1].output_shape)
    if len(out_shape) != 1:
        raise ValueError(f"class_weight needs a model output of shape (batch, classes), got per-sample output "
                         f"shape {out_shape}; weigh samples with sample_weight instead")
    n_classes = max(out_shape[0], 2)  # one sigmoid unit: classes 0 and 1
    table = np.ones(n_classes, np.float32)
    for key, weight in class_weight.items():
        if isinstance(key, bool) or not isinstance(key, numbers.Integral):
            raise TypeError(f"class_weight keys must be class indices (integers), got {key!r}")
        if not 0 <= key < n_classes:
            raise ValueError(f"class_weight has class {key}, but the model has {n_classes} classes "
                             f"(indices 0 to {n_classes - 1})")
        table[key] = _validation.as_finite_float(weight, f"class_weight[{key}]", low=0.0)
    if t.ndim == 1:
        labels = t
    elif out_shape[0] == 1:
        labels = np.rint(t[:, 0]).astype(np.int64)
        if labels.min() < 0 or labels.max() > 1:
            raise ValueError("class_weight with one output unit needs targets 0 or 1 (the binary classes); "
                             f"got values from {t.min()} to {t.max()}")
    else:
        labels = t.argmax(axis=1)
    return table[labels]


def fit_loop(model, x, y, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
             validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0):
    """What `Sequential.fit` runs (arguments and result as documented there)."""
    model._require_compiled("fit")
    callbacks = resolve(callbacks)
    x = model._prepare_x(x)
    t = model._prepare_targets(y, len(x))
    w = model._prepare_weights(sample_weight, len(x))
    batch_size = _validation.as_positive_int(DEFAULT_BATCH_SIZE if batch_size is None else batch_size, "batch_size")
    epochs = _validation.as_positive_int(epochs, "epochs", minimum=0)
    initial_epoch = _validation.as_positive_int(initial_epoch, "initial_epoch", minimum=0)
    verbose = resolve_verbose(verbose)
    train, val = _validation_set(model, validation_data, validation_split, x, t, w)
    if class_weight is not None:  # training samples only, as Keras: validation keeps its plain weights
        weights = _class_sample_weights(model, class_weight, train[1])
        train = train[:2] + (weights if train[2] is None else train[2] * weights,)

    n = len(train[0])
    steps = math.ceil(n / batch_size)
    history = History()
    cbs = CallbackList(callbacks + [history], model,
                       {"epochs": epochs, "steps": steps, "batch_size": batch_size, "verbose": verbose})
    model.history = history
    model.stop_training = False
    metrics = model._get_metrics()
    x_batch = np.empty((min(batch_size, n),) + train[0].shape[1:], np.float32)
    cbs.call("on_train_begin", {})
    logs = {}
    for epoch in range(initial_epoch, epochs):
        cbs.call("on_epoch_begin", epoch, {})
        order = _random.generator().permutation(n) if shuffle else None
        with Progress(verbose, n, f"Epoch {epoch + 1}/{epochs}") as progress:
            logs, seen = _train_epoch(model, train, order, batch_size, metrics, cbs, progress, x_batch, epoch)
            if val is not None:
                logs.update(_validate(model, val, max(batch_size, DEFAULT_BATCH_SIZE), metrics, cbs))
            progress.finish(seen, logs)
        cbs.call("on_epoch_end", epoch, logs)
        if model.stop_training:
            break
    cbs.call("on_train_end", logs)
    return history


def _train_epoch(model, data, order, batch_size, metrics, cbs, progress, x_batch, epoch):
    """One pass over the training data; returns the epoch's logs (mean loss and metrics) and the samples seen."""
    x, t, w = data
    n = len(x)
    batch_begin, batch_end = cbs.hooks["on_train_batch_begin"], cbs.hooks["on_train_batch_end"]
    train_step = model._train_step
    for m in metrics:
        m.reset()
    total = 0.0
    seen = 0
    for step, start in enumerate(range(0, n, batch_size)):
        stop = min(start + batch_size, n)
        if order is None:
            xb, tb = x[start:stop], t[start:stop]
            wb = None if w is None else w[start:stop]
        else:
            idx = order[start:stop]
            xb = np.take(x, idx, axis=0, out=x_batch[:len(idx)])
            tb = t[idx]
            wb = None if w is None else w[idx]
        for hook in batch_begin:
            hook(step, {})
        try:
            loss = train_step(xb, tb, wb, metrics)
            failure = None
        except NonFiniteLossError as exc:  # the step was not applied: the weights are the last good ones
            loss, failure = exc.loss, exc
        total += loss * (stop - start)
        seen += stop - start
        if batch_end:
            logs = _logs(total / seen, metrics)
            for hook in batch_end:
                hook(step, logs)
        if failure is not None and not model.stop_training:  # no callback (e.g. TerminateOnNaN) stopped it
            raise FloatingPointError(f"training stopped at epoch {epoch + 1}, batch {step + 1}: {failure}") from None
        progress.update(seen, total / seen, metrics)
        if model.stop_training:
            break
    return _logs(total / seen, metrics), seen


def _validate(model, val, batch_size, metrics, cbs):
    """Loss and metrics on the validation data, as "val_" logs; calls the on_test_* hooks."""
    cbs.call("on_test_begin", {})
    logs = _logs(model._evaluate_prepared(*val, batch_size, metrics, cbs), metrics)
    cbs.call("on_test_end", logs)
    return {"val_" + key: value for key, value in logs.items()}


def _logs(loss, metrics):
    logs = {"loss": loss}
    for m in metrics:
        logs[m.name] = m.result()
    return logs
