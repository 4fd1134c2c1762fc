"""Losses by Keras name or as objects.

A loss turns the model's output and the targets into a value (the mean over samples) and the gradient with
respect to that output. Cross-entropies fuse with a final softmax (binary: sigmoid): the model then feeds them
logits and the gradient is simply p - y, which is both stable and fast. `from_logits=True` says the model's
output already is logits.
"""
import numpy as np

from . import _kernels, _validation

_threads = _kernels.omp_max_threads
_EPSILON = 1e-7  # Keras' clipping of probabilities


class Loss:
    """Base class. `fused_activation` names the final activation this loss can take over ("softmax",
    "sigmoid", or None)."""

    fused_activation = None
    name = "loss"

    def __init__(self, from_logits=False):
        self.from_logits = bool(from_logits)

    def targets(self, y, n, output_shape):
        """Validate targets for n samples of the given per-sample output shape; return them ready for compute."""
        t = _validation.as_float32_array(y, "y")
        if t.shape[1:] != tuple(output_shape):
            if t.size == n * int(np.prod(output_shape)) and t.shape[:1] == (n,):
                return t.reshape((n,) + tuple(output_shape))
            raise ValueError(f"targets y have shape {t.shape}, but the model's output has shape "
                             f"{(n,) + tuple(output_shape)}")
        if t.shape[0] != n:
            raise ValueError(f"y has {t.shape[0]} samples but x has {n}")
        return t

    def compute(self, out, t, w, grad, logits):
        """Return the mean loss; write d(loss)/d(out) into grad (a buffer of out's shape) unless None.

        `logits` says that `out` holds logits (the final activation was fused or from_logits is set)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def get_config(self):
        return {"from_logits": self.from_logits}

    def __repr__(self):
        return f"{type(self).__name__}(from_logits={self.from_logits})"


def _as_rows(a):
    return a.reshape(a.shape[0], -1)


def _class_rows(out, t, w, grad):
    """A classification problem on outputs (n, ..., classes) as one of n*positions rows: outputs and grad as
    (rows, classes), targets as (rows,) indices or (rows, classes), and each sample's weight repeated over its
    positions. The kernels' mean over rows is then Keras' mean over all positions."""
    c = out.shape[-1]
    rows = out.size // c
    if rows != len(out) and w is not None:
        w = np.repeat(w, rows // len(out))
    grad = None if grad is None else grad.reshape(rows, c)
    return out.reshape(rows, c), t.reshape(rows, -1) if t.ndim == out.ndim else t.reshape(rows), w, grad


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy between integer class labels and predicted class probabilities (or logits).

    Outputs (batch, classes) take labels (batch,); outputs (batch, ..., classes), e.g. one distribution per
    time step (batch, T, classes), take labels (batch, ...), and the loss is the mean over all positions."""

    fused_activation = "softmax"
    name = "sparse_categorical_crossentropy"

    def targets(self, y, n, output_shape):
        return _validation.as_class_labels(y, n, output_shape[-1], positions=tuple(output_shape)[:-1])

    def compute(self, out, t, w, grad, logits):
        out, t, w, grad = _class_rows(out, t, w, grad)
        if logits:
            return _kernels.softmax_xent_sparse(out, t, w, grad, _threads())
        onehot = np.zeros(out.shape, np.float32)
        onehot[np.arange(len(t)), t] = 1.0
        return _probability_xent(out, onehot, w, grad)


class CategoricalCrossentropy(Loss):
    """Cross-entropy between target distributions (e.g. one-hot rows) and predicted probabilities (or logits),
    along the last axis; for outputs (batch, ..., classes) the mean over all positions."""

    fused_activation = "softmax"
    name = "categorical_crossentropy"

    def compute(self, out, t, w, grad, logits):
        out, t, w, grad = _class_rows(out, t, w, grad)
        if logits:
            return _kernels.softmax_xent_dense(out, t, w, grad, _threads())
        return _probability_xent(out, t, w, grad)


class MeanSquaredError(Loss):
    """Mean over outputs of the squared error, averaged over samples."""

    name = "mean_squared_error"

    def __init__(self):
        super().__init__(False)

    def compute(self, out, t, w, grad, logits):
        return _kernels.mse(_as_rows(out), _as_rows(t), w, None if grad is None else _as_rows(grad), _threads())

    def get_config(self):
        return {}

    def __repr__(self):
        return "MeanSquaredError()"


class BinaryCrossentropy(Loss):
    """Binary cross-entropy of 0/1 (or soft) targets, averaged over outputs then samples."""

    fused_activation = "sigmoid"
    name = "binary_crossentropy"

    def compute(self, out, t, w, grad, logits):
        if logits:
            return _kernels.sigmoid_bce(_as_rows(out), _as_rows(t), w,
                                        None if grad is None else _as_rows(grad), _threads())
        p = np.clip(out.astype(np.float64), _EPSILON, 1.0 - _EPSILON)
        tt = t.astype(np.float64)
        per_sample = -(tt * np.log(p) + (1 - tt) * np.log(1 - p)).reshape(len(p), -1).mean(axis=1)
        weights = np.ones(len(p)) if w is None else w.astype(np.float64)
        if grad is not None:
            inside = (out > _EPSILON) & (out < 1.0 - _EPSILON)
            g = (p - tt) / (p * (1 - p)) * inside / (p[0].size * len(p))
            grad[...] = (g * weights.reshape((-1,) + (1,) * (g.ndim - 1))).astype(np.float32)
        return float(np.sum(per_sample * weights) / len(p))


def _probability_xent(out, t, w, grad):
    """Cross-entropy on probabilities, as Keras: rows normalised to sum 1, clipped to [eps, 1 - eps]."""
    o = out.astype(np.float64)
    s = o.sum(axis=1, keepdims=True)
    q = o / s
    qc = np.clip(q, _EPSILON, 1.0 - _EPSILON)
    tt = t.astype(np.float64)
    weights = np.ones(len(o)) if w is None else w.astype(np.float64)
    per_sample = -(tt * np.log(qc)).sum(axis=1)
    if grad is not None:
        dq = -tt / qc * ((q > _EPSILON) & (q < 1.0 - _EPSILON))
        do = (dq - (dq * q).sum(axis=1, keepdims=True)) / s
        grad[...] = (do * (weights / len(o))[:, None]).astype(np.float32)
    return float(np.sum(per_sample * weights) / len(o))


_BY_NAME = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "binary_crossentropy": BinaryCrossentropy,
}


def get(identifier):
    """A Loss from a Keras name or a Loss object."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(f"unknown loss {identifier!r}; valid names: {', '.join(sorted(_BY_NAME))}")
