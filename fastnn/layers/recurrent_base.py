"""What SimpleRNN, LSTM and GRU share: Keras' arguments, input checks, states, buffers and the output choice.

A whole sequence runs in one C call, forward (one GEMM for every step's input projection, then per step one
recurrent GEMM and one fused gate pass) and backward (back-propagation through time, then merged weight GEMMs).
"""
import numbers

import numpy as np

from .. import _kernels, initializers
from .base import Layer

_threads = _kernels.omp_max_threads
# The activations the recurrent kernels support (their derivative follows from their output).
ACTIVATIONS = {"linear": _kernels.ACT_LINEAR, "relu": _kernels.ACT_RELU, "sigmoid": _kernels.ACT_SIGMOID,
               "tanh": _kernels.ACT_TANH}
_INITIALIZERS = ("kernel_initializer", "recurrent_initializer", "bias_initializer")


def activation_code(value, what):
    name = "linear" if value is None else value
    if not isinstance(name, str) or name.lower() not in ACTIVATIONS:
        raise ValueError(f"{what} must be one of {', '.join(sorted(ACTIVATIONS))} for recurrent layers, "
                         f"got {value!r}")
    return name.lower(), ACTIVATIONS[name.lower()]


class Recurrent(Layer):
    """Base of the recurrent layers (Keras semantics); see `LSTM` for the arguments.

    Inside a `Sequential` a layer passes one tensor on: the sequence of outputs (batch, steps, units) with
    ``return_sequences=True``, else the last output (batch, units). With ``return_state=True`` the final
    states of the last call are readable as `final_states` ([h] or [h, c]; with ``return_sequences=False``
    h equals the output), as Keras returns them after the output.
    """

    n_gates = 1
    state_names = ("h",)

    def __init__(self, units, activation="tanh", use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", return_sequences=False,
                 return_state=False, go_backwards=False, stateful=False, dropout=0.0, recurrent_dropout=0.0,
                 unroll=False, **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        if isinstance(units, bool) or not isinstance(units, numbers.Integral) or units < 1:
            raise ValueError(f"{cls} units must be a positive integer, got {units!r}")
        for name, value in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if value not in (0, 0.0, None):
                raise NotImplementedError(f"{cls}({name}={value!r}): dropout inside recurrent layers is not "
                                          f"supported; put a Dropout layer before or after it")
        self.units = int(units)
        self.activation, self._act = activation_code(activation, f"{cls} activation")
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)  # accepted for Keras compatibility: the C loop needs no unrolling
        self._states = None         # stateful: the arrays carried from one batch to the next
        self._states_fresh = True   # the next batch may have any size (after reset_states or at first)
        self._final = None
        self._saved = None          # what the last forward kept for backward (None after forward_unsaved)

    # ---- shapes ---------------------------------------------------------------------------------------
    def compute_output_shape(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"{type(self).__name__} expects sequences of shape (steps, features) per sample "
                             f"(batch, steps, features) with the batch axis, got per-sample shape "
                             f"{tuple(input_shape)}")
        return (input_shape[0], self.units) if self.return_sequences else (self.units,)

    def call_work(self):
        """The input projection, all time steps in one call (steps x the kernel); each step's product with the
        recurrent kernel is a call of its own, one step's worth."""
        return int(self.input_shape[0]) * int(np.prod(self.param_specs()[0].shape))

    def _check_input(self, x):
        features = self.input_shape[-1]
        if x.ndim != 3 or x.shape[2] != features:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects input of shape (batch, steps, "
                             f"{features}), got {x.shape}")
        if x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(f"{type(self).__name__} {self.name!r} needs at least one sample and one time "
                             f"step, got input of shape {x.shape} (zero-length sequences have no output)")
        return np.ascontiguousarray(x, dtype=np.float32)

    # ---- states ---------------------------------------------------------------------------------------
    def _initial_states(self, batch):
        """The states a forward pass starts from: the carried ones when stateful, else None (zeros)."""
        if not self.stateful:
            return [None] * len(self.state_names)
        if self._states is None or self._states_fresh and self._states[0].shape[0] != batch:
            self._states = [np.zeros((batch, self.units), np.float32) for _ in self.state_names]
        elif self._states[0].shape[0] != batch:
            raise ValueError(f"stateful {type(self).__name__} {self.name!r} carries states for batches of "
                             f"{self._states[0].shape[0]} samples but got {batch}; every batch of a stateful "
                             f"layer must have the same size (call reset_states() to start over with a new one)")
        return self._states

    def _store_states(self, final):
        self._final = final
        if self.stateful:
            for carried, new in zip(self._states, final):
                carried[...] = new
            self._states_fresh = False

    def reset_states(self, states=None):
        """Zero the carried states of a stateful layer (the next batch may then have any size), or set them
        to `states`: a list of arrays of shape (batch, units), one per state (h, or h and c)."""
        if not self.stateful:
            raise AttributeError(f"{type(self).__name__} {self.name!r} is not stateful; create it with "
                                 f"stateful=True to carry states between batches")
        if states is None:
            if self._states is not None:
                for s in self._states:
                    s.fill(0.0)
            self._states_fresh = True
            return
        if isinstance(states, np.ndarray):
            states = [states]
        states = list(states)
        if len(states) != len(self.state_names):
            raise ValueError(f"{type(self).__name__} has {len(self.state_names)} state(s) "
                             f"({', '.join(self.state_names)}), got {len(states)}")
        arrays = []
        for name, s in zip(self.state_names, states):
            a = np.array(s, dtype=np.float32)
            if a.ndim != 2 or a.shape[1] != self.units or a.shape[0] < 1 or not np.isfinite(a).all():
                raise ValueError(f"state {name} must be a finite array of shape (batch, {self.units}), "
                                 f"got shape {a.shape}")
            arrays.append(a)
        if len({a.shape for a in arrays}) != 1:
            raise ValueError(f"all states must have the same shape, got {[a.shape for a in arrays]}")
        self._states, self._states_fresh = arrays, False

    @property
    def states(self):
        """Stateful layers: the states the next batch starts from ([h] or [h, c], (batch, units) each), or
        None before the first batch; None for layers that are not stateful."""
        if not self.stateful or self._states is None:
            return None
        return list(self._states)

    @property
    def final_states(self):
        """Copies of the final states of the last forward pass ([h] or [h, c]), or None before any."""
        return None if self._final is None else [s.copy() for s in self._final]

    # ---- backward -------------------------------------------------------------------------------------------
    def backward(self, grad_out, need_dx=True, accumulate=False):
        if self._saved is None:
            raise RuntimeError(f"{type(self).__name__} {self.name!r}: backward needs the buffers of a forward pass "
                               f"that kept them (training, or a pass for a gradient), but the last pass was "
                               f"inference or there was none")
        grads = self._weight_grads(accumulate)
        if not need_dx and grads[0] is None:
            return None
        dseq, dh_last = self._grad_inputs(grad_out)
        dxt, dx = self._dx_buffers(self._saved[0], need_dx)
        self._run_backward(dseq, dh_last, dxt, dx, grads, accumulate)
        return dx

    def _run_backward(self, dseq, dh_last, dxt, dx, grads, accumulate):  # pragma: no cover - abstract
        """The cell's kernel on the buffers saved by forward (`_saved`, time-major copy of x first)."""
        raise NotImplementedError

    # ---- buffers and gradients --------------------------------------------------------------------------
    def _saved_buffers(self, x, widths):
        """Time-major buffers kept for backward, (steps, batch, width) each; "xt" is x reordered."""
        b, t = x.shape[:2]
        return [self._buffer(name, (t, b, x.shape[2] if name == "xt" else w * self.units))
                for name, w in widths]

    def _out_buffers(self, x):
        """(seq or None, h_last): the outputs the next layer sees."""
        b, t = x.shape[:2]
        seq = self._buffer("seq", (b, t, self.units)) if self.return_sequences else None
        return seq, self._buffer("h_last", (b, self.units))

    def _dx_buffers(self, xt, need_dx):
        """(dxt, dx): the time-major workspace and the input gradient, or (None, None)."""
        if not need_dx:
            return None, None
        t, b, n = xt.shape
        return self._buffer("dxt", xt.shape), self._buffer("dx", (b, t, n))

    def _output(self, seq, h_last):
        return seq if self.return_sequences else h_last

    def _grad_inputs(self, grad_out):
        """(dseq, dh_last) from the gradient of the output."""
        g = np.ascontiguousarray(grad_out, dtype=np.float32)
        return (g, None) if self.return_sequences else (None, g)

    def _weight_grads(self, accumulate):
        """The gradient arrays to fill (None when frozen: then the grads are zeroed unless accumulating)."""
        if self.trainable:
            return list(self.grads) + [None] * (3 - len(self.grads))
        if not accumulate:
            self._zero_grads()
        return [None, None, None]

    def _weights3(self):
        return list(self.weights) + [None] * (3 - len(self.weights))

    # ---- config -------------------------------------------------------------------------------------------
    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, activation=self.activation, use_bias=self.use_bias,
                      return_sequences=self.return_sequences, return_state=self.return_state,
                      go_backwards=self.go_backwards, stateful=self.stateful, unroll=self.unroll)
        for key in _INITIALIZERS:
            config[key] = initializers.serialize(getattr(self, key))
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**initializers.deserialize_in(config, _INITIALIZERS))

    def _config_repr(self):
        flags = [f for f in ("return_sequences", "return_state", "go_backwards", "stateful") if getattr(self, f)]
        return ", ".join([str(self.units)] + [f"{f}=True" for f in flags])
