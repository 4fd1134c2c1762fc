"""Metrics by Keras name: running averages over the batches of an epoch (or of an evaluation)."""
import numpy as np


class Metric:
    """Accumulates a per-sample quantity over batches; `result()` is the (weighted) mean so far."""

    name = "metric"

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


class SparseCategoricalAccuracy(Metric):
    name = "accuracy"

    def per_sample(self, out, t, logits):
        return (out.argmax(axis=1) == t).astype(np.float64)


class CategoricalAccuracy(Metric):
    name = "accuracy"

    def per_sample(self, out, t, logits):
        return (out.argmax(axis=1) == t.argmax(axis=1)).astype(np.float64)


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
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
}
VALID_NAMES = sorted(list(_BY_NAME) + ["accuracy", "acc"])


def get(identifier, loss, output_shape):
    """A Metric from a name; "accuracy" picks the variant that fits the loss and output, as Keras does."""
    if isinstance(identifier, Metric):
        return identifier
    if not isinstance(identifier, str):
        raise TypeError(f"a metric must be a name or a Metric, got {identifier!r}; valid names: {', '.join(VALID_NAMES)}")
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
