"""Bidirectional (Keras' wrapper): a recurrent layer run forwards and a copy of it run backwards, merged."""
import numpy as np

from .base import Layer
from .recurrent import GRU, LSTM, SimpleRNN
from .recurrent_base import Recurrent

MERGE_MODES = ("concat", "sum", "mul", "ave")
_WRAPPABLE = {"SimpleRNN": SimpleRNN, "LSTM": LSTM, "GRU": GRU}  # what a model file may put inside


class Bidirectional(Layer):
    """Runs `layer` over the sequence and a copy of it (with go_backwards flipped) over the reversed sequence,
    then merges their outputs.

    Parameters
    ----------
    layer : SimpleRNN, LSTM or GRU
        The forward layer (unbuilt); the backward copy is made from its config, named "backward_<name>".
    merge_mode : {"concat", "sum", "mul", "ave"}
        How the two outputs combine; "concat" doubles the last axis.

    Notes
    -----
    With return_sequences the backward layer's outputs are put back in input order before merging, so step t
    of the output sees the whole sequence, as Keras. Weights, as Keras: the forward layer's, then the
    backward layer's. With return_state the final states are readable as `final_states` (the forward layer's
    then the backward layer's); stateful layers reset together with `reset_states()`.

    Examples
    --------
    >>> from fastnn import Sequential, layers
    >>> m = Sequential([layers.Input((5, 3)), layers.Bidirectional(layers.LSTM(4))])
    >>> m.predict(np.zeros((2, 5, 3), np.float32)).shape
    (2, 8)
    """

    def __init__(self, layer, merge_mode="concat", **kwargs):
        if not isinstance(layer, Recurrent):
            raise TypeError(f"Bidirectional wraps a SimpleRNN, LSTM or GRU layer, got {type(layer).__name__}")
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"Bidirectional merge_mode must be one of {', '.join(MERGE_MODES)} (a list of both "
                             f"outputs cannot flow through a Sequential), got {merge_mode!r}")
        if layer.built:
            raise ValueError(f"Bidirectional needs an unbuilt layer; {layer.name!r} is already built")
        if "input_shape" not in kwargs and layer._declared_input_shape is not None:
            kwargs["input_shape"] = layer._declared_input_shape
        super().__init__(**kwargs)
        config = layer.get_config()
        config.pop("input_shape", None)
        config.update(name=f"backward_{layer.name}", go_backwards=not layer.go_backwards)
        self.forward_layer = layer
        self.backward_layer = type(layer).from_config(config)
        self.merge_mode = merge_mode
        self.trainable = self.trainable  # freezing the wrapper freezes both layers

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)
        for inner in (getattr(self, "forward_layer", None), getattr(self, "backward_layer", None)):
            if inner is not None:
                inner.trainable = self._trainable

    # ---- lifecycle ------------------------------------------------------------------------------------------
    def compute_output_shape(self, input_shape):
        shape = self.forward_layer.compute_output_shape(input_shape)
        return shape[:-1] + (2 * shape[-1],) if self.merge_mode == "concat" else shape

    def build(self, input_shape):
        super().build(input_shape)
        self.forward_layer.build(input_shape)
        self.backward_layer.build(input_shape)

    def param_specs(self):
        return ([s._replace(name=f"forward_{s.name}") for s in self.forward_layer.param_specs()]
                + [s._replace(name=f"backward_{s.name}") for s in self.backward_layer.param_specs()])

    def call_work(self):
        return max(self.forward_layer.call_work(), self.backward_layer.call_work())

    def attach(self, weights, grads):
        super().attach(weights, grads)
        nw, ng = len(self.forward_layer.param_specs()), sum(s.trainable for s in self.forward_layer.param_specs())
        self.forward_layer.attach(weights[:nw], grads[:ng])
        self.backward_layer.attach(weights[nw:], grads[ng:])

    def _reversed(self, y):
        """Backward outputs in input order (only sequences have an order to restore)."""
        return y[:, ::-1] if self.forward_layer.return_sequences else y

    def forward(self, x, training=False):
        return self._merge(self.forward_layer.forward(x, training), self.backward_layer.forward(x, training))

    def forward_unsaved(self, x, training=False):
        return self._merge(self.forward_layer.forward_unsaved(x, training),
                           self.backward_layer.forward_unsaved(x, training))

    def _merge(self, yf, yb):
        """The layer's output from both directions' (yb in the backward layer's order)."""
        yb = self._reversed(yb)
        self._yf, self._yb = yf, yb
        if self.merge_mode == "concat":
            out = self._buffer("y", yf.shape[:-1] + (2 * yf.shape[-1],))
            h = yf.shape[-1]
            out[..., :h], out[..., h:] = yf, yb
            return out
        out = self._buffer("y", yf.shape)
        if self.merge_mode == "mul":
            np.multiply(yf, yb, out=out)
        else:
            np.add(yf, yb, out=out)
            if self.merge_mode == "ave":
                out *= 0.5
        return out

    def backward(self, grad_out, need_dx=True, accumulate=False):
        h = self._yf.shape[-1]
        if self.merge_mode == "concat":
            gf, gb = grad_out[..., :h], grad_out[..., h:]
        elif self.merge_mode == "mul":
            gf, gb = grad_out * self._yb, grad_out * self._yf
        else:
            gf = gb = grad_out * 0.5 if self.merge_mode == "ave" else grad_out
        gb = self._reversed(gb)
        dxf = self.forward_layer.backward(np.ascontiguousarray(gf), need_dx, accumulate)
        dxb = self.backward_layer.backward(np.ascontiguousarray(gb), need_dx, accumulate)
        if not need_dx:
            return None
        dx = self._buffer("dx", dxf.shape)
        np.add(dxf, dxb, out=dx)
        return dx

    # ---- states ----------------------------------------------------------------------------------------------
    @property
    def stateful(self):
        return self.forward_layer.stateful

    @stateful.setter
    def stateful(self, value):
        self.forward_layer.stateful = self.backward_layer.stateful = bool(value)

    @property
    def final_states(self):
        f, b = self.forward_layer.final_states, self.backward_layer.final_states
        return None if f is None else f + b

    @property
    def states(self):
        f, b = self.forward_layer.states, self.backward_layer.states
        return None if f is None else f + b

    def reset_states(self):
        """Zero the carried states of both stateful layers."""
        self.forward_layer.reset_states()
        self.backward_layer.reset_states()

    # ---- config ------------------------------------------------------------------------------------------------
    def get_config(self):
        config = super().get_config()
        config.update(layer={"class_name": type(self.forward_layer).__name__,
                             "config": self.forward_layer.get_config()}, merge_mode=self.merge_mode)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        inner = config.pop("layer", None)
        name = inner.get("class_name") if isinstance(inner, dict) else None
        if name not in _WRAPPABLE or not isinstance(inner.get("config"), dict):
            raise ValueError(f"Bidirectional config must hold a layer of class {', '.join(_WRAPPABLE)} with its "
                             f"config, got {inner!r}")
        return cls(_WRAPPABLE[name].from_config(inner["config"]), **config)

    def _config_repr(self):
        return f"{self.forward_layer!r}, merge_mode={self.merge_mode!r}"
