"""The checks a model's batch passes before a step: x, the targets and the sample weights."""

import numpy as np

from . import _validation

_FLOAT32 = np.dtype(np.float32)


class BatchInputsMixin:
    """`_prepare_x`, `_prepare_targets`, `_prepare_weights` of `Sequential` (which provides the layers, the arena,
    `_ensure_built` and the loss)."""

    def _prepare_x(self, x, name="x"):
        # the usual batch (float32, C-contiguous, of the built shape) costs only these cheap checks; anything
        # else takes the full ones below
        if type(x) is np.ndarray and x.dtype is _FLOAT32 and self._arena is not None \
                and x.shape[1:] == self._input_shape and len(x) and x.flags.c_contiguous and _validation.all_finite(x):
            return x
        if not self._layers:
            raise ValueError("the model has no layers; add some before using it")
        x = _validation.as_float32_array(x, name)
        if x.ndim < 2:
            raise ValueError(f"{name} must have a batch axis first: got shape {x.shape}; "
                             f"for one sample use x[None] (shape (1, ...))")
        _validation.check_nonempty(x, name)
        if self._arena is None:
            self._ensure_built(x.shape[1:])
        elif x.shape[1:] != self._input_shape:
            raise ValueError(f"{name} has per-sample shape {x.shape[1:]} (array shape {x.shape}), but the model "
                             f"expects {self._input_shape} (array shape {(None,) + self._input_shape})")
        return x

    def _prepare_targets(self, y, n):
        if y is None:
            raise ValueError("targets y are required")
        return self.loss.targets(y, n, self._layers[-1].output_shape)

    @staticmethod
    def _prepare_weights(sample_weight, n):
        if sample_weight is None:
            return None
        w = _validation.as_float32_array(sample_weight, "sample_weight", ndim=1)
        if w.shape[0] != n:
            raise ValueError(f"sample_weight has {w.shape[0]} entries but x has {n} samples")
        if (w < 0).any():
            raise ValueError("sample_weight must be non-negative")
        return w
