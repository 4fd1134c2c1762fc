"""Embedding (Keras' Embedding): integer token ids to learned vectors."""
import numbers

import numpy as np

from .. import _kernels, initializers
from .._validation import as_token_ids
from .base import Layer, ParamSpec

_threads = _kernels.omp_max_threads


class Embedding(Layer):
    """Maps each integer id in [0, input_dim) to a row of a (input_dim, output_dim) table.

    Parameters
    ----------
    input_dim : int
        Vocabulary size.
    output_dim : int
        Size of each vector.
    embeddings_initializer : str or Initializer
        "uniform" (in [-0.05, 0.05]) by default, as Keras.

    Notes
    -----
    Input (batch, steps) of ids: integer arrays, or float arrays holding whole numbers (what a model passes,
    having cast its input to float32). Output (batch, steps, output_dim). Weight, as Keras: embeddings
    (input_dim, output_dim). Backward adds each output row's gradient into the row of its id only (sparse),
    bitwise the same for any thread count; an Embedding is a first layer, so it returns no input gradient.

    Examples
    --------
    >>> from fastnn import Sequential, layers
    >>> m = Sequential([layers.Input((4,)), layers.Embedding(10, 3)])
    >>> m.predict(np.array([[1, 2, 3, 9]])).shape
    (1, 4, 3)
    """

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", mask_zero=False, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("input_dim", input_dim), ("output_dim", output_dim)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"Embedding {name} must be a positive integer, got {value!r}")
        if mask_zero:
            raise NotImplementedError("Embedding(mask_zero=True): masking is not supported")
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = initializers.get(embeddings_initializer)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def param_specs(self):
        return [ParamSpec("embeddings", (self.input_dim, self.output_dim), self.embeddings_initializer,
                          self.input_dim, self.output_dim, True)]

    def call_work(self):
        """A lookup copies one row per id: no multiply-adds, a row's worth of memory traffic."""
        return int(np.prod(self.output_shape))

    def forward(self, x, training=False):
        ids = as_token_ids(x, self.input_dim, f"Embedding {self.name!r} ids")
        flat = ids.reshape(-1)
        y = self._buffer("y", (flat.shape[0], self.output_dim))
        _kernels.embedding_forward(flat, self.weights[0], y, _threads())
        self._ids = flat
        return y.reshape(ids.shape + (self.output_dim,))

    def backward(self, grad_out, need_dx=True, accumulate=False):
        if self.trainable:
            dy = np.ascontiguousarray(grad_out, dtype=np.float32).reshape(-1, self.output_dim)
            _kernels.embedding_backward(self._ids, dy, self.grads[0], accumulate, _threads())
        elif not accumulate:
            self._zero_grads()
        if need_dx:  # ids are not differentiable: their gradient is zero
            return np.zeros(self._ids.shape, np.float32).reshape(grad_out.shape[:-1])
        return None

    def get_config(self):
        config = super().get_config()
        config.update(input_dim=self.input_dim, output_dim=self.output_dim,
                      embeddings_initializer=initializers.serialize(self.embeddings_initializer))
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**initializers.deserialize_in(config, ("embeddings_initializer",)))

    def _config_repr(self):
        return f"{self.input_dim}, {self.output_dim}"
