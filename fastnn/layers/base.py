"""The layer lifecycle shared by every layer.

A layer is built once for a per-sample input shape (`build`), declares its parameters (`param_specs`), and
then runs `forward(x, training)` and `backward(grad_out, need_dx, accumulate)` on whole batches. Parameters
and their gradients are views into the model's flat arenas (`attach`), so one optimizer kernel updates them
all. Layers keep their output buffers between calls (planned per batch size), so a training step allocates
nothing: the arrays they return belong to them and are overwritten by the next call.
"""
import re
from collections import namedtuple

import numpy as np

ParamSpec = namedtuple("ParamSpec", "name shape initializer fan_in fan_out trainable")
_name_counts = {}


def _default_name(cls_name):
    base = re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", cls_name).lower()
    base = re.sub(r"(?<=[a-z])(?=\d)", "", base)
    count = _name_counts.get(base, 0)
    _name_counts[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


class Layer:
    """Base class of all layers.

    Parameters
    ----------
    name : str, optional
        Unique name (defaults to the class name in snake case, numbered as in Keras).
    trainable : bool
        False freezes the layer's parameters (their gradients stay zero).
    input_shape : tuple of int, optional
        Per-sample input shape, as in Keras, when the layer starts a model without an `Input`.
    """

    def __init__(self, name=None, trainable=True, input_shape=None):
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"a layer name must be a non-empty string, got {name!r}")
        self.name = name or _default_name(type(self).__name__)
        self.trainable = bool(trainable)
        self.built = False
        self.input_shape = None
        self.output_shape = None
        self.weights = []
        self.grads = []
        self._declared_input_shape = None if input_shape is None else tuple(int(d) for d in input_shape)
        self._buffers = {}

    # ---- lifecycle: subclasses override these --------------------------------------------------------
    def compute_output_shape(self, input_shape):
        """Per-sample output shape for a per-sample input shape."""
        return tuple(input_shape)

    def param_specs(self):
        """The parameters this built layer needs, in Keras `get_weights()` order."""
        return []

    def forward(self, x, training=False):  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_unsaved(self, x, training=False):
        """`forward` when no backward will follow (inference): layers that can then keep less override it."""
        return self.forward(x, training)

    def backward(self, grad_out, need_dx=True, accumulate=False):  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable}
        if self._declared_input_shape is not None:
            config["input_shape"] = list(self._declared_input_shape)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    # ---- shared machinery ------------------------------------------------------------------------------
    def build(self, input_shape):
        """Fix the per-sample input shape; checks it and computes the output shape."""
        input_shape = tuple(int(d) for d in input_shape)
        self.output_shape = tuple(self.compute_output_shape(input_shape))
        if any(d <= 0 for d in self.output_shape):
            raise ValueError(f"layer {self.name!r} would produce output shape {self.output_shape} from input "
                             f"shape {input_shape}: every dimension must be positive")
        self.input_shape = input_shape
        self.built = True

    def attach(self, weights, grads):
        """Receive views into the model's parameter and gradient arenas (in `param_specs` order)."""
        self.weights = list(weights)
        self.grads = list(grads)

    def count_params(self):
        return int(sum(int(np.prod(w.shape)) for w in self.weights))

    def call_work(self):
        """Roughly the multiply-adds per sample of this built layer's largest kernel call in a forward pass:
        its parameters times the positions it applies them at in one call (pixels, time steps: the input's
        leading dimensions). Steps choose their thread count by it."""
        positions = int(np.prod(self.input_shape[:-1])) if len(self.input_shape) > 1 else 1
        return positions * sum(int(np.prod(spec.shape)) for spec in self.param_specs())

    def _buffer(self, key, shape, dtype=np.float32):
        """A buffer reused between calls with the same shape (a few shapes are kept: e.g. fit's last batch)."""
        slot = (key, shape)
        buf = self._buffers.get(slot)
        if buf is None:
            if len(self._buffers) > 16:
                self._buffers.clear()
            buf = np.empty(shape, dtype)
            self._buffers[slot] = buf
        return buf

    def _zero_grads(self):
        for g in self.grads:
            g.fill(0.0)

    def _config_repr(self):
        return ""

    def __repr__(self):
        inner = self._config_repr()
        return f"{type(self).__name__}({inner})" if inner else f"{type(self).__name__}(name={self.name!r})"


class InputLayer:
    """Marks the per-sample input shape of a model (`fastnn.layers.Input(shape)`); holds no parameters."""

    def __init__(self, shape, name=None):
        if isinstance(shape, int):
            shape = (shape,)
        try:
            shape = tuple(int(d) for d in shape)
        except TypeError:
            raise TypeError(f"Input shape must be a tuple of positive ints, got {shape!r}") from None
        if not shape or any(d <= 0 for d in shape):
            raise ValueError(f"Input shape must be a non-empty tuple of positive ints (without the batch axis), "
                             f"got {shape!r}")
        self.shape = shape
        self.name = name or _default_name("InputLayer")

    def __repr__(self):
        return f"Input(shape={self.shape})"


def Input(shape, name=None):
    """The per-sample input shape of a model, without the batch axis, as Keras' `Input`."""
    return InputLayer(shape, name=name)
