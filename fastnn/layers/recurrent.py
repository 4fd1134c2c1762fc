"""Recurrent layers with Keras' names, arguments and weight layouts: SimpleRNN, LSTM, GRU.

Every layer takes sequences (batch, steps, features) and runs a whole sequence in one C call (src/rnn.c,
src/lstm.c, src/gru.c). Common arguments, states and outputs: see `recurrent_base.Recurrent`.
"""
import numpy as np

from .. import _kernels
from .base import ParamSpec
from .recurrent_base import Recurrent, activation_code

_threads = _kernels.omp_max_threads

_COMMON_DOC = """
    Parameters
    ----------
    units : int
        Size of the output and of each state.
    activation : {"tanh", "sigmoid", "relu", "linear"}
        Applied to the candidate (and, for LSTM, to the cell state before the output gate).
    use_bias : bool
    kernel_initializer, recurrent_initializer, bias_initializer : str or Initializer
        glorot_uniform, orthogonal and zeros by default, as in Keras.
    return_sequences : bool
        Output every step's h (batch, steps, units) instead of the last one (batch, units).
    return_state : bool
        Keep the final states readable as `final_states` after each call (a Sequential passes one tensor, the
        output above, to the next layer).
    go_backwards : bool
        Process the sequence from its last step to its first; with return_sequences the outputs are in
        processing order (reversed), as Keras.
    stateful : bool
        The final states of a batch are the initial states of the next (batches must keep their size until
        `reset_states()`); read them with `states`. Gradients do not flow from one batch into the previous.
    dropout, recurrent_dropout : 0 only (not supported inside the cell).
"""


class SimpleRNN(Recurrent):
    """Fully connected recurrence: ``h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)``.
    """ + _COMMON_DOC + """
    Notes
    -----
    Weights, as Keras: kernel (features, units), recurrent_kernel (units, units), bias (units,).

    Examples
    --------
    >>> from fastnn import Sequential, layers
    >>> m = Sequential([layers.Input((5, 3)), layers.SimpleRNN(4)])
    >>> m.predict(np.zeros((2, 5, 3), np.float32)).shape
    (2, 4)
    """

    def param_specs(self):
        n_in, u = self.input_shape[-1], self.units
        specs = [ParamSpec("kernel", (n_in, u), self.kernel_initializer, n_in, u, True),
                 ParamSpec("recurrent_kernel", (u, u), self.recurrent_initializer, u, u, True)]
        if self.use_bias:
            specs.append(ParamSpec("bias", (u,), self.bias_initializer, n_in, u, True))
        return specs

    def forward(self, x, training=False):
        x = self._check_input(x)
        (h0,) = self._initial_states(x.shape[0])
        kernel, rec, bias = self._weights3()
        xt, gates, h_prev = self._saved_buffers(x, (("xt", 0), ("gates", 1), ("h_prev", 1)))
        seq, h_last = self._out_buffers(x)
        _kernels.simple_rnn_forward(x, kernel, rec, bias, h0, self._act, self.go_backwards, xt, gates, h_prev,
                                    h_last, seq, _threads())
        self._saved = (xt, gates, h_prev)
        self._store_states([h_last])
        return self._output(seq, h_last)

    def _run_backward(self, dseq, dh_last, dxt, dx, grads, accumulate):
        xt, gates, h_prev = self._saved
        kernel, rec, _ = self._weights3()
        _kernels.simple_rnn_backward(xt, kernel, rec, gates, h_prev, dseq, dh_last, self._act, self.go_backwards,
                                     self._buffer("dz", gates.shape), dxt, dx, *grads, accumulate, _threads())


class _Gated(Recurrent):
    """LSTM and GRU: a recurrent activation for the gates."""

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", **kwargs):
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation, self._rec_act = activation_code(
            recurrent_activation, f"{type(self).__name__} recurrent_activation")

    _infer_kernel = None  # the cell's inference kernel: forward's outputs, nothing saved for backward

    def forward_unsaved(self, x, training=False):
        """`forward`'s outputs from `_infer_kernel`, which keeps each step's gates and states in cache (LSTM at
        batch 256: 1.15-1.2x faster); batches of fewer than two rows a thread take `forward`."""
        if x.shape[0] < 2 * _threads():
            return self.forward(x, training)
        x = self._check_input(x)
        states = self._initial_states(x.shape[0])
        kernel, rec, bias = self._weights3()
        seq, h_last = self._out_buffers(x)
        finals = [h_last] + [self._buffer(name + "_last", h_last.shape) for name in self.state_names[1:]]
        self._infer_kernel(x, kernel, rec, bias, *states, self._act, self._rec_act, self.go_backwards, *finals, seq,
                           _threads())
        self._saved = None
        self._store_states(finals)
        return self._output(seq, h_last)

    def get_config(self):
        config = super().get_config()
        config["recurrent_activation"] = self.recurrent_activation
        return config


class LSTM(_Gated):
    """Long short-term memory (Hochreiter and Schmidhuber, 1997), as Keras:
    ``z = x_t @ kernel + h_{t-1} @ recurrent_kernel + bias`` split into gates i, f, c, o;
    ``c_t = f * c_{t-1} + i * g`` with i, f, o = recurrent_activation(z_i, z_f, z_o), g = activation(z_c);
    ``h_t = o * activation(c_t)``.
    """ + _COMMON_DOC + """    recurrent_activation : {"sigmoid", "tanh", "relu", "linear"}
        For the i, f, o gates.
    unit_forget_bias : bool
        Start the forget gate's bias at 1 (the rest from bias_initializer), as Keras.

    Notes
    -----
    Weights, as Keras: kernel (features, 4 units), recurrent_kernel (units, 4 units), bias (4 units,), the
    four blocks of columns in the order i, f, c, o. States: [h, c].

    Examples
    --------
    >>> from fastnn import Sequential, layers
    >>> m = Sequential([layers.Input((5, 3)), layers.LSTM(4, return_sequences=True)])
    >>> m.predict(np.zeros((2, 5, 3), np.float32)).shape
    (2, 5, 4)
    """

    n_gates = 4
    state_names = ("h", "c")
    _infer_kernel = staticmethod(_kernels.lstm_infer)

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", unit_forget_bias=True, **kwargs):
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    def param_specs(self):
        n_in, u = self.input_shape[-1], self.units
        specs = [ParamSpec("kernel", (n_in, 4 * u), self.kernel_initializer, n_in, 4 * u, True),
                 ParamSpec("recurrent_kernel", (u, 4 * u), self.recurrent_initializer, u, 4 * u, True)]
        if self.use_bias:
            specs.append(ParamSpec("bias", (4 * u,), self._bias_init, n_in, 4 * u, True))
        return specs

    def _bias_init(self, shape, fan_in, fan_out):
        bias = np.asarray(self.bias_initializer(shape, fan_in, fan_out), np.float32)
        if self.unit_forget_bias:
            bias[self.units:2 * self.units] = 1.0
        return bias

    def forward(self, x, training=False):
        x = self._check_input(x)
        h0, c0 = self._initial_states(x.shape[0])
        kernel, rec, bias = self._weights3()
        xt, gates, h_prev, c_prev = self._saved_buffers(x, (("xt", 0), ("gates", 4), ("h_prev", 1),
                                                             ("c_prev", 1)))
        seq, h_last = self._out_buffers(x)
        c_last = self._buffer("c_last", h_last.shape)
        _kernels.lstm_forward(x, kernel, rec, bias, h0, c0, self._act, self._rec_act, self.go_backwards, xt, gates,
                              h_prev, c_prev, h_last, c_last, seq, _threads())
        self._saved = (xt, gates, h_prev, c_prev, c_last)
        self._store_states([h_last, c_last])
        return self._output(seq, h_last)

    def _run_backward(self, dseq, dh_last, dxt, dx, grads, accumulate):
        xt, gates, h_prev, c_prev, c_last = self._saved
        kernel, rec, _ = self._weights3()
        _kernels.lstm_backward(xt, kernel, rec, gates, h_prev, c_prev, c_last, dseq, dh_last, self._act,
                               self._rec_act, self.go_backwards, self._buffer("dz", gates.shape), dxt, dx, *grads,
                               accumulate, _threads())

    def get_config(self):
        config = super().get_config()
        config["unit_forget_bias"] = self.unit_forget_bias
        return config


class GRU(_Gated):
    """Gated recurrent unit (Cho et al., 2014) as Keras with reset_after=True (the cuDNN form):
    ``z, r = recurrent_activation(x_t @ kernel[:, z|r] + b_in + h_{t-1} @ recurrent_kernel[:, z|r] + b_rec)``,
    ``n = activation(x_t @ kernel[:, h] + b_in_h + r * (h_{t-1} @ recurrent_kernel[:, h] + b_rec_h))``,
    ``h_t = z * h_{t-1} + (1 - z) * n``.
    """ + _COMMON_DOC + """    recurrent_activation : {"sigmoid", "tanh", "relu", "linear"}
        For the z and r gates.
    reset_after : True only
        Keras' default; the older form (reset before the matrix product) is not supported.

    Notes
    -----
    Weights, as Keras: kernel (features, 3 units), recurrent_kernel (units, 3 units), bias (2, 3 units)
    (row 0 the input bias, row 1 the recurrent bias), blocks of columns in the order z, r, h. States: [h].

    Examples
    --------
    >>> from fastnn import Sequential, layers
    >>> m = Sequential([layers.Input((5, 3)), layers.GRU(4)])
    >>> [w.shape for w in m.get_weights()]
    [(3, 12), (4, 12), (2, 12)]
    """

    n_gates = 3
    _infer_kernel = staticmethod(_kernels.gru_infer)

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", reset_after=True, **kwargs):
        if not reset_after:
            raise NotImplementedError("GRU(reset_after=False) is not supported: fastnn implements Keras' default "
                                      "reset_after=True (bias of shape (2, 3 units))")
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation, **kwargs)
        self.reset_after = True

    def param_specs(self):
        n_in, u = self.input_shape[-1], self.units
        specs = [ParamSpec("kernel", (n_in, 3 * u), self.kernel_initializer, n_in, 3 * u, True),
                 ParamSpec("recurrent_kernel", (u, 3 * u), self.recurrent_initializer, u, 3 * u, True)]
        if self.use_bias:
            specs.append(ParamSpec("bias", (2, 3 * u), self.bias_initializer, n_in, 3 * u, True))
        return specs

    def forward(self, x, training=False):
        x = self._check_input(x)
        (h0,) = self._initial_states(x.shape[0])
        kernel, rec, bias = self._weights3()
        xt, gates, rec_h, h_prev = self._saved_buffers(x, (("xt", 0), ("gates", 3), ("rec_h", 1), ("h_prev", 1)))
        seq, h_last = self._out_buffers(x)
        _kernels.gru_forward(x, kernel, rec, bias, h0, self._act, self._rec_act, self.go_backwards, xt, gates,
                             rec_h, h_prev, h_last, seq, _threads())
        self._saved = (xt, gates, rec_h, h_prev)
        self._store_states([h_last])
        return self._output(seq, h_last)

    def _run_backward(self, dseq, dh_last, dxt, dx, grads, accumulate):
        xt, gates, rec_h, h_prev = self._saved
        kernel, rec, _ = self._weights3()
        _kernels.gru_backward(xt, kernel, rec, gates, rec_h, h_prev, dseq, dh_last, self._act, self._rec_act,
                              self.go_backwards, self._buffer("dzx", gates.shape), self._buffer("dzr", gates.shape),
                              dxt, dx, *grads, accumulate, _threads())

    def get_config(self):
        config = super().get_config()
        config["reset_after"] = True
        return config
