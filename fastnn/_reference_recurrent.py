"""Plain NumPy twins of the recurrent and embedding verbs of fastnn.ops (re-exported by fastnn._reference), with
the same signatures: float64 loops over time steps, written as the maths reads, and back-propagation through
time step by step."""
import numpy as np


def _act(x, name):
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if name == "tanh":
        return np.tanh(x)
    return x


def _slope(y, name):
    """act'(.) from the output y."""
    if name == "relu":
        return (y > 0).astype(np.float64)
    if name == "sigmoid":
        return y * (1.0 - y)
    if name == "tanh":
        return 1.0 - y * y
    return np.ones_like(y)


def _prepare(x, kernel, recurrent_kernel, bias, initial_state, n_states):
    x, k, r = (np.asarray(a, np.float64) for a in (x, kernel, recurrent_kernel))
    b = None if bias is None else np.asarray(bias, np.float64)
    units = r.shape[0]
    if initial_state is None:
        states = [np.zeros((x.shape[0], units)) for _ in range(n_states)]
    else:
        states = [initial_state] if isinstance(initial_state, np.ndarray) else list(initial_state)
        states = [np.asarray(s, np.float64) for s in states]
    return x, k, r, b, states


def _times(steps, go_backwards):
    return list(range(steps))[::-1] if go_backwards else list(range(steps))


def _f32(*arrays):
    return tuple(None if a is None else a.astype(np.float32) for a in arrays)


def _simple_steps(x, k, r, b, h, activation, go_backwards):
    hs, outs = [], []
    for t in _times(x.shape[1], go_backwards):
        hs.append(h)
        h = _act(x[:, t] @ k + h @ r + (0 if b is None else b), activation)
        outs.append(h)
    return hs, outs


def simple_rnn(x, kernel, recurrent_kernel, bias=None, initial_state=None, activation="tanh", go_backwards=False):
    x, k, r, b, (h,) = _prepare(x, kernel, recurrent_kernel, bias, initial_state, 1)
    _, outs = _simple_steps(x, k, r, b, h, activation, go_backwards)
    return _f32(np.stack(outs, 1), outs[-1])


def _grads(x, k, r, b, times, dzs, dzrs, hs):
    dx = np.zeros_like(x)
    dk, dr = np.zeros_like(k), np.zeros_like(r)
    db = None if b is None else np.zeros_like(b)
    for t, dz, dzr, hp in zip(times, dzs, dzrs, hs):
        dx[:, t] = dz @ k.T
        dk += x[:, t].T @ dz
        dr += hp.T @ dzr
        if db is not None:
            if db.ndim == 2:
                db[0] += dz.sum(0)
                db[1] += dzr.sum(0)
            else:
                db += dz.sum(0)
    return _f32(dx, dk, dr, db)


def _d_step(d_sequences, d_last, s, steps, shape):
    dh = np.zeros(shape) if d_sequences is None else np.asarray(d_sequences, np.float64)[:, s].copy()
    if s == steps - 1 and d_last is not None:
        dh += np.asarray(d_last, np.float64)
    return dh


def simple_rnn_backward(x, kernel, recurrent_kernel, bias, d_sequences, d_last, initial_state=None,
                        activation="tanh", go_backwards=False):
    x, k, r, b, (h,) = _prepare(x, kernel, recurrent_kernel, bias, initial_state, 1)
    hs, outs = _simple_steps(x, k, r, b, h, activation, go_backwards)
    times, steps = _times(x.shape[1], go_backwards), x.shape[1]
    carry, dzs = np.zeros_like(h), [None] * steps
    for s in range(steps - 1, -1, -1):
        dh = carry + _d_step(d_sequences, d_last, s, steps, h.shape)
        dzs[s] = dh * _slope(outs[s], activation)
        carry = dzs[s] @ r.T
    return _grads(x, k, r, b, times, dzs, dzs, hs)


def _lstm_steps(x, k, r, b, h, c, activation, recurrent_activation, go_backwards):
    saved, outs = [], []
    for t in _times(x.shape[1], go_backwards):
        z = x[:, t] @ k + h @ r + (0 if b is None else b)
        zi, zf, zc, zo = np.split(z, 4, axis=1)
        i, f, o = (_act(v, recurrent_activation) for v in (zi, zf, zo))
        g = _act(zc, activation)
        saved.append((h, c, i, f, g, o))
        c = f * c + i * g
        h = o * _act(c, activation)
        outs.append((h, c))
    return saved, outs


def lstm(x, kernel, recurrent_kernel, bias=None, initial_state=None, activation="tanh",
         recurrent_activation="sigmoid", go_backwards=False):
    x, k, r, b, (h, c) = _prepare(x, kernel, recurrent_kernel, bias, initial_state, 2)
    _, outs = _lstm_steps(x, k, r, b, h, c, activation, recurrent_activation, go_backwards)
    return _f32(np.stack([o[0] for o in outs], 1), outs[-1][0], outs[-1][1])


def lstm_backward(x, kernel, recurrent_kernel, bias, d_sequences, d_last, initial_state=None, activation="tanh",
                  recurrent_activation="sigmoid", go_backwards=False):
    x, k, r, b, (h, c) = _prepare(x, kernel, recurrent_kernel, bias, initial_state, 2)
    saved, outs = _lstm_steps(x, k, r, b, h, c, activation, recurrent_activation, go_backwards)
    steps = x.shape[1]
    carry_h, carry_c, dzs = np.zeros_like(h), np.zeros_like(c), [None] * steps
    for s in range(steps - 1, -1, -1):
        _, cp, i, f, g, o = saved[s]
        tc = _act(outs[s][1], activation)
        dh = carry_h + _d_step(d_sequences, d_last, s, steps, h.shape)
        dc = carry_c + dh * o * _slope(tc, activation)
        dzs[s] = np.concatenate([dc * g * _slope(i, recurrent_activation), dc * cp * _slope(f, recurrent_activation),
                                 dc * i * _slope(g, activation), dh * tc * _slope(o, recurrent_activation)], 1)
        carry_c = dc * f
        carry_h = dzs[s] @ r.T
    return _grads(x, k, r, b, _times(steps, go_backwards), dzs, dzs, [sv[0] for sv in saved])


def _gru_steps(x, k, r, b, h, activation, recurrent_activation, go_backwards):
    u = r.shape[0]
    saved, outs = [], []
    for t in _times(x.shape[1], go_backwards):
        xp = x[:, t] @ k + (0 if b is None else b[0])
        rp = h @ r + (0 if b is None else b[1])
        z = _act(xp[:, :u] + rp[:, :u], recurrent_activation)
        rr = _act(xp[:, u:2 * u] + rp[:, u:2 * u], recurrent_activation)
        n = _act(xp[:, 2 * u:] + rr * rp[:, 2 * u:], activation)
        saved.append((h, z, rr, n, rp[:, 2 * u:]))
        h = z * h + (1 - z) * n
        outs.append(h)
    return saved, outs


def gru(x, kernel, recurrent_kernel, bias=None, initial_state=None, activation="tanh",
        recurrent_activation="sigmoid", go_backwards=False):
    x, k, r, b, (h,) = _prepare(x, kernel, recurrent_kernel, bias, initial_state, 1)
    _, outs = _gru_steps(x, k, r, b, h, activation, recurrent_activation, go_backwards)
    return _f32(np.stack(outs, 1), outs[-1])


def gru_backward(x, kernel, recurrent_kernel, bias, d_sequences, d_last, initial_state=None, activation="tanh",
                 recurrent_activation="sigmoid", go_backwards=False):
    x, k, r, b, (h,) = _prepare(x, kernel, recurrent_kernel, bias, initial_state, 1)
    saved, _ = _gru_steps(x, k, r, b, h, activation, recurrent_activation, go_backwards)
    steps = x.shape[1]
    carry, dzx, dzr = np.zeros_like(h), [None] * steps, [None] * steps
    for s in range(steps - 1, -1, -1):
        hp, z, rr, n, rh = saved[s]
        dh = carry + _d_step(d_sequences, d_last, s, steps, h.shape)
        dz = dh * (hp - n) * _slope(z, recurrent_activation)
        dn = dh * (1 - z) * _slope(n, activation)
        dr = dn * rh * _slope(rr, recurrent_activation)
        dzx[s] = np.concatenate([dz, dr, dn], 1)
        dzr[s] = np.concatenate([dz, dr, dn * rr], 1)
        carry = dh * z + dzr[s] @ r.T
    return _grads(x, k, r, b, _times(steps, go_backwards), dzx, dzr, [sv[0] for sv in saved])


def embedding(ids, table):
    ids = np.asarray(ids)
    if ids.size and (ids != np.round(ids)).any():
        raise ValueError("embedding ids must be whole numbers")
    table = np.asarray(table, np.float32)
    ids = ids.astype(np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= table.shape[0]):
        raise ValueError(f"embedding ids must lie in [0, {table.shape[0]})")
    return table[ids]


def embedding_backward(ids, dy, input_dim):
    ids = np.asarray(ids).astype(np.int64).reshape(-1)
    dy = np.asarray(dy, np.float64)
    dy = dy.reshape(len(ids), dy.shape[-1])
    out = np.zeros((int(input_dim), dy.shape[1]))
    np.add.at(out, ids, dy)
    return out.astype(np.float32)
