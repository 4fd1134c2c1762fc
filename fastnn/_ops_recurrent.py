"""Recurrent cells and embedding lookups (src/rnn.c, src/lstm.c, src/gru.c, src/embedding.c): the validated
verbs of fastnn.ops (see its docstring).

Each cell verb runs a whole sequence x (batch, steps, features) with Keras weight layouts and returns the
outputs of every step in processing order (reversed with go_backwards, as Keras) and the final states. Each
backward verb takes the gradients of those outputs (of the sequence and/or of the last h) and returns
(dx, dkernel, drecurrent_kernel, dbias), running the forward again to get what it needs.
"""
import numpy as np

from . import _kernels
from ._threads import effective_threads
from ._validation import as_float32_array, as_token_ids
from .layers.recurrent_base import activation_code

_GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}


def _cell_args(cell, x, kernel, recurrent_kernel, bias, initial_state):
    """Validated (x, kernel, recurrent, bias, states) for a cell with `gates` blocks of columns."""
    g = _GATES[cell]
    x = as_float32_array(x, "x", ndim=3)
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"x must hold at least one sequence of at least one step, got shape {x.shape}")
    recurrent = as_float32_array(recurrent_kernel, "recurrent_kernel", ndim=2)
    units = recurrent.shape[0]
    if units < 1 or recurrent.shape != (units, g * units):
        raise ValueError(f"recurrent_kernel must have shape (units, {g} * units), got {recurrent.shape}")
    kernel = as_float32_array(kernel, "kernel", ndim=2)
    if kernel.shape != (x.shape[2], g * units):
        raise ValueError(f"kernel must have shape ({x.shape[2]}, {g * units}) for x of shape {x.shape}, got "
                         f"{kernel.shape}")
    if bias is not None:
        want = (2, 3 * units) if cell == "gru" else (g * units,)
        bias = as_float32_array(bias, "bias")
        if bias.shape != want:
            raise ValueError(f"bias must have shape {want}, got {bias.shape}")
    n_states = 2 if cell == "lstm" else 1
    if initial_state is None:
        states = [None] * n_states
    else:
        states = [initial_state] if isinstance(initial_state, np.ndarray) else list(initial_state)
        if len(states) != n_states:
            raise ValueError(f"initial_state must hold {n_states} array(s) of shape ({x.shape[0]}, {units}), got "
                             f"{len(states)}")
        states = [as_float32_array(s, f"initial_state[{i}]", ndim=2) for i, s in enumerate(states)]
        for s in states:
            if s.shape != (x.shape[0], units):
                raise ValueError(f"initial states must have shape ({x.shape[0]}, {units}), got {s.shape}")
    return x, kernel, recurrent, bias, states


def _codes(activation, recurrent_activation=None):
    act = activation_code(activation, "activation")[1]
    return act if recurrent_activation is None else (act, activation_code(recurrent_activation,
                                                                          "recurrent_activation")[1])


def _buffers(x, units, *gates):
    """The time-major copy of x, then one (steps, batch, g * units) buffer per g in `gates`."""
    b, t = x.shape[:2]
    return [np.empty((t, b, x.shape[2]), np.float32)] + [np.empty((t, b, g * units), np.float32) for g in gates]


def _run_simple(x, kernel, rec, bias, h0, act, go_backwards):
    b, t, u = x.shape[0], x.shape[1], rec.shape[0]
    xt, gates, h_prev = _buffers(x, u, 1, 1)
    seq, h = np.empty((b, t, u), np.float32), np.empty((b, u), np.float32)
    _kernels.simple_rnn_forward(x, kernel, rec, bias, h0, act, go_backwards, xt, gates, h_prev, h, seq,
                                effective_threads())
    return seq, h, xt, gates, h_prev


def simple_rnn(x, kernel, recurrent_kernel, bias=None, initial_state=None, activation="tanh", go_backwards=False):
    """SimpleRNN over x: ``h_t = act(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)``.

    Parameters
    ----------
    x : array (batch, steps, features), finite
    kernel : (features, units); recurrent_kernel : (units, units); bias : (units,) or None
    initial_state : array (batch, units) or [h0], optional (zeros)
    activation : {"tanh", "sigmoid", "relu", "linear"}
    go_backwards : bool

    Returns
    -------
    sequences : (batch, steps, units), in processing order; h : (batch, units), the final state

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn import ops
    >>> seq, h = ops.simple_rnn(np.ones((1, 2, 1)), np.ones((1, 1)), np.zeros((1, 1)))
    >>> h.round(4)
    array([[0.7616]], dtype=float32)
    """
    x, kernel, rec, bias, (h0,) = _cell_args("simple_rnn", x, kernel, recurrent_kernel, bias, initial_state)
    return _run_simple(x, kernel, rec, bias, h0, _codes(activation), bool(go_backwards))[:2]


def _grads_in(x, units, d_sequences, d_last):
    shape = (x.shape[0], x.shape[1], units)
    dseq = None if d_sequences is None else as_float32_array(d_sequences, "d_sequences")
    dh = None if d_last is None else as_float32_array(d_last, "d_last")
    if dseq is not None and dseq.shape != shape:
        raise ValueError(f"d_sequences must have shape {shape}, got {dseq.shape}")
    if dh is not None and dh.shape != shape[::2]:
        raise ValueError(f"d_last must have shape {shape[::2]}, got {dh.shape}")
    return dseq, dh


def _grads_out(x, kernel, rec, bias):
    """dxt (the time-major workspace), dx, dkernel, drecurrent, dbias."""
    return (np.empty((x.shape[1], x.shape[0], x.shape[2]), np.float32), np.empty_like(x), np.empty_like(kernel),
            np.empty_like(rec), None if bias is None else np.empty_like(bias))


def simple_rnn_backward(x, kernel, recurrent_kernel, bias, d_sequences, d_last, initial_state=None,
                        activation="tanh", go_backwards=False):
    """Gradients of `simple_rnn` given those of its outputs (d_sequences (batch, steps, units) and/or d_last
    (batch, units); None for none): returns (dx, dkernel, drecurrent_kernel, dbias or None)."""
    x, kernel, rec, bias, (h0,) = _cell_args("simple_rnn", x, kernel, recurrent_kernel, bias, initial_state)
    act = _codes(activation)
    dseq, dh = _grads_in(x, rec.shape[0], d_sequences, d_last)
    _, _, xt, gates, h_prev = _run_simple(x, kernel, rec, bias, h0, act, bool(go_backwards))
    dxt, dx, dk, dr, db = _grads_out(x, kernel, rec, bias)
    _kernels.simple_rnn_backward(xt, kernel, rec, gates, h_prev, dseq, dh, act, bool(go_backwards),
                                 np.empty_like(gates), dxt, dx, dk, dr, db, False, effective_threads())
    return dx, dk, dr, db


def _run_lstm(x, kernel, rec, bias, h0, c0, act, rec_act, go_backwards):
    b, t, u = x.shape[0], x.shape[1], rec.shape[0]
    xt, gates, h_prev, c_prev = _buffers(x, u, 4, 1, 1)
    seq, h, c = np.empty((b, t, u), np.float32), np.empty((b, u), np.float32), np.empty((b, u), np.float32)
    _kernels.lstm_forward(x, kernel, rec, bias, h0, c0, act, rec_act, go_backwards, xt, gates, h_prev, c_prev, h,
                          c, seq, effective_threads())
    return seq, h, c, xt, gates, h_prev, c_prev


def lstm(x, kernel, recurrent_kernel, bias=None, initial_state=None, activation="tanh",
         recurrent_activation="sigmoid", go_backwards=False):
    """LSTM over x with Keras' layout (gates i, f, c, o in blocks of columns).

    Parameters
    ----------
    x : array (batch, steps, features), finite
    kernel : (features, 4 units); recurrent_kernel : (units, 4 units); bias : (4 units,) or None
    initial_state : [h0, c0], each (batch, units), optional (zeros)
    activation, recurrent_activation : {"tanh", "sigmoid", "relu", "linear"}
    go_backwards : bool

    Returns
    -------
    sequences : (batch, steps, units) in processing order; h, c : (batch, units), the final states
    """
    x, kernel, rec, bias, (h0, c0) = _cell_args("lstm", x, kernel, recurrent_kernel, bias, initial_state)
    act, rec_act = _codes(activation, recurrent_activation)
    return _run_lstm(x, kernel, rec, bias, h0, c0, act, rec_act, bool(go_backwards))[:3]


def lstm_backward(x, kernel, recurrent_kernel, bias, d_sequences, d_last, initial_state=None, activation="tanh",
                  recurrent_activation="sigmoid", go_backwards=False):
    """Gradients of `lstm` given those of its outputs (d_sequences and/or d_last, the final h; None for none):
    returns (dx, dkernel, drecurrent_kernel, dbias or None)."""
    x, kernel, rec, bias, (h0, c0) = _cell_args("lstm", x, kernel, recurrent_kernel, bias, initial_state)
    act, rec_act = _codes(activation, recurrent_activation)
    dseq, dh = _grads_in(x, rec.shape[0], d_sequences, d_last)
    _, _, c, xt, gates, h_prev, c_prev = _run_lstm(x, kernel, rec, bias, h0, c0, act, rec_act, bool(go_backwards))
    dxt, dx, dk, dr, db = _grads_out(x, kernel, rec, bias)
    _kernels.lstm_backward(xt, kernel, rec, gates, h_prev, c_prev, c, dseq, dh, act, rec_act, bool(go_backwards),
                           np.empty_like(gates), dxt, dx, dk, dr, db, False, effective_threads())
    return dx, dk, dr, db


def _run_gru(x, kernel, rec, bias, h0, act, rec_act, go_backwards):
    b, t, u = x.shape[0], x.shape[1], rec.shape[0]
    xt, gates, rec_h, h_prev = _buffers(x, u, 3, 1, 1)
    seq, h = np.empty((b, t, u), np.float32), np.empty((b, u), np.float32)
    _kernels.gru_forward(x, kernel, rec, bias, h0, act, rec_act, go_backwards, xt, gates, rec_h, h_prev, h, seq,
                         effective_threads())
    return seq, h, xt, gates, rec_h, h_prev


def gru(x, kernel, recurrent_kernel, bias=None, initial_state=None, activation="tanh",
        recurrent_activation="sigmoid", go_backwards=False):
    """GRU over x as Keras with reset_after=True (gates z, r, h; bias (2, 3 units): input row, recurrent row).

    Returns
    -------
    sequences : (batch, steps, units) in processing order; h : (batch, units), the final state
    """
    x, kernel, rec, bias, (h0,) = _cell_args("gru", x, kernel, recurrent_kernel, bias, initial_state)
    act, rec_act = _codes(activation, recurrent_activation)
    return _run_gru(x, kernel, rec, bias, h0, act, rec_act, bool(go_backwards))[:2]


def gru_backward(x, kernel, recurrent_kernel, bias, d_sequences, d_last, initial_state=None, activation="tanh",
                 recurrent_activation="sigmoid", go_backwards=False):
    """Gradients of `gru` given those of its outputs: (dx, dkernel, drecurrent_kernel, dbias or None)."""
    x, kernel, rec, bias, (h0,) = _cell_args("gru", x, kernel, recurrent_kernel, bias, initial_state)
    act, rec_act = _codes(activation, recurrent_activation)
    dseq, dh = _grads_in(x, rec.shape[0], d_sequences, d_last)
    _, _, xt, gates, rec_h, h_prev = _run_gru(x, kernel, rec, bias, h0, act, rec_act, bool(go_backwards))
    dxt, dx, dk, dr, db = _grads_out(x, kernel, rec, bias)
    _kernels.gru_backward(xt, kernel, rec, gates, rec_h, h_prev, dseq, dh, act, rec_act, bool(go_backwards),
                          np.empty_like(gates), np.empty_like(gates), dxt, dx, dk, dr, db, False,
                          effective_threads())
    return dx, dk, dr, db


def embedding(ids, table):
    """table[ids]: ids (any shape) whole numbers in [0, input_dim), table (input_dim, output_dim).

    Returns
    -------
    array of shape ids.shape + (output_dim,), float32
    """
    table = as_float32_array(table, "table", ndim=2)
    ids = as_token_ids(ids, table.shape[0], "embedding ids")
    y = np.empty((ids.size, table.shape[1]), np.float32)
    _kernels.embedding_forward(ids.reshape(-1), table, y, effective_threads())
    return y.reshape(ids.shape + (table.shape[1],))


def embedding_backward(ids, dy, input_dim):
    """The table's gradient: rows of dy (ids.shape + (output_dim,)) added into the rows of their ids."""
    ids = as_token_ids(ids, int(input_dim), "embedding_backward ids")
    dy = as_float32_array(dy, "dy")
    if dy.shape[:-1] != ids.shape or dy.ndim != ids.ndim + 1:
        raise ValueError(f"dy must have shape {ids.shape} + (output_dim,), got {dy.shape}")
    out = np.empty((int(input_dim), dy.shape[-1]), np.float32)
    _kernels.embedding_backward(ids.reshape(-1), dy.reshape(-1, dy.shape[-1]), out, False, effective_threads())
    return out
