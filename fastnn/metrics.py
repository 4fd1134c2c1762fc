"""Metrics by Keras name: running averages over the batches of an epoch (or of an evaluation)."""
import numpy as np

from . import _validation, losses


class Metric:
    """Accumulates a per-sample quantity over batches; `result()` is the (weighted) mean so far.

    `targets` says which target form a subclass needs: "sparse" (class indices), "dense" (one row per sample,
    e.g. one-hot) or None (whatever the loss takes).
    """

    name = "metric"
    targets = None

    def __init__(self):
        self.reset()

    def reset(self):
        self._total = 0.0
        self._count = 0.0

    def update(self, out, t, logits, w=None):
        values = self.per_sample(out, t, logits)
        if w is None:
            self._total += float(values.sum())
            self._count += len(values)
        else:
            self._total += float((values * w).sum())
            self._count += float(w.sum())

    def result(self):
        return self._total / self._count if self._count else 0.0

    def per_sample(self, out, t, logits):  # pragma: no cover - abstract
        raise NotImplementedError


def _per_sample_mean(hits):
    """(n, ...) booleans -> (n,) float64 means (one value per sample, also for sequence outputs)."""
    if hits.ndim == 1:  # the common case, kept cheap: this runs on every training step
        return hits.astype(np.float64)
    return hits.reshape(len(hits), -1).mean(axis=1, dtype=np.float64)


class SparseCategoricalAccuracy(Metric):
    name = "accuracy"
    targets = "sparse"

    def per_sample(self, out, t, logits):
        return _per_sample_mean(out.argmax(axis=-1) == t)


class CategoricalAccuracy(Metric):
    name = "accuracy"
    targets = "dense"

    def per_sample(self, out, t, logits):
        return _per_sample_mean(out.argmax(axis=-1) == t.argmax(axis=-1))


def _in_top_k(out, labels, k):
    """Per sample, how often the label's score is among the k highest along the last axis. Ties at the boundary
    count as hits (as Keras' in_top_k): a label is in the top k when fewer than k classes score strictly higher."""
    scores = out.reshape(-1, out.shape[-1])
    label_scores = np.take_along_axis(scores, labels.reshape(-1, 1).astype(np.intp), axis=1)
    hits = np.count_nonzero(scores > label_scores, axis=1) < k
    return _per_sample_mean(hits.reshape(labels.shape))


class SparseTopKCategoricalAccuracy(Metric):
    """How often the class index is among the k highest outputs (k=5 by default)."""

    name = "sparse_top_k_categorical_accuracy"
    targets = "sparse"

    def __init__(self, k=5):
        self.k = _validation.as_positive_int(k, "k")
        super().__init__()

    def per_sample(self, out, t, logits):
        return _in_top_k(out, t, self.k)


class TopKCategoricalAccuracy(SparseTopKCategoricalAccuracy):
    """How often the target's class (the argmax of a one-hot row) is among the k highest outputs."""

    name = "top_k_categorical_accuracy"
    targets = "dense"

    def per_sample(self, out, t, logits):
        return _in_top_k(out, t.argmax(axis=-1), self.k)


class BinaryAccuracy(Metric):
    name = "accuracy"

    def per_sample(self, out, t, logits):
        threshold = 0.0 if logits else 0.5
        hits = (out > threshold) == (t > 0.5)
        return hits.reshape(len(out), -1).mean(axis=1)


class MeanAbsoluteError(Metric):
    name = "mae"

    def per_sample(self, out, t, logits):
        return np.abs(out - t).reshape(len(out), -1).mean(axis=1, dtype=np.float64)


class MeanSquaredError(Metric):
    name = "mse"

    def per_sample(self, out, t, logits):
        return np.square(out - t, dtype=np.float64).reshape(len(out), -1).mean(axis=1)


_BY_NAME = {
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "binary_accuracy": BinaryAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
}
_COUNTERPART = {
    SparseCategoricalAccuracy: "categorical_accuracy", CategoricalAccuracy: "sparse_categorical_accuracy",
    SparseTopKCategoricalAccuracy: "top_k_categorical_accuracy",
    TopKCategoricalAccuracy: "sparse_top_k_categorical_accuracy",
}
VALID_NAMES = sorted(list(_BY_NAME) + ["accuracy", "acc"])


def get(identifier, loss, output_shape):
    """A Metric from a name; "accuracy" picks the variant that fits the loss and output, as Keras does.

    A metric that needs class indices (or one-hot rows) is refused, with the name to use instead, when the
    loss takes the other form.
    """
    if isinstance(identifier, Metric):
        metric = identifier
    elif not isinstance(identifier, str):
        raise TypeError(f"a metric must be a name or a Metric, got {identifier!r}; valid names: {', '.join(VALID_NAMES)}")
    else:
        metric = _from_name(identifier, loss, output_shape)
    _check_targets(metric, loss)
    return metric


def _from_name(identifier, loss, output_shape):
    key = identifier.lower()
    if key in ("accuracy", "acc"):
        loss_name = getattr(loss, "name", "")
        if loss_name == "binary_crossentropy" or tuple(output_shape)[-1:] == (1,):
            return BinaryAccuracy()
        if loss_name == "sparse_categorical_crossentropy":
            return SparseCategoricalAccuracy()
        return CategoricalAccuracy()
    if key not in _BY_NAME:
        raise ValueError(f"unknown metric {identifier!r}; valid names: {', '.join(VALID_NAMES)}")
    metric = _BY_NAME[key]()
    metric.name = identifier
    return metric


def _check_targets(metric, loss):
    if metric.targets is None:
        return
    sparse_loss = isinstance(loss, losses.SparseCategoricalCrossentropy)
    if sparse_loss == (metric.targets == "sparse"):
        return
    given = "class indices" if sparse_loss else "one row per sample (e.g. one-hot)"
    wanted = "class indices" if metric.targets == "sparse" else "one-hot rows"
    hint = _COUNTERPART.get(type(metric))
    raise ValueError(f"metric {metric.name!r} expects {wanted} as targets, but the loss {loss.name!r} takes {given}"
                     + (f"; use {hint!r} instead" if hint else ""))
