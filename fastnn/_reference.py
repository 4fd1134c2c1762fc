"""Plain NumPy twins of the verbs in fastnn.ops, with the same signatures.

They are the specification: tests compare every kernel against them, and they make bugs easy to bisect.
They compute in float64 where that makes them a better reference, and return float32 like the kernels.
"""
import numpy as np

# ---- matrix multiplication ------------------------------------------------------------------------------

def matmul(a, b, trans_a=False, trans_b=False, out=None):
    """op(a) @ op(b) computed in float64 and rounded to float32 (written into out when given)."""
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    result = (a64.T if trans_a else a64) @ (b64.T if trans_b else b64)
    if out is None:
        return result.astype(np.float32)
    out[...] = result
    return out


# ---- activations, softmax, reductions, dropout ----------------------------------------------------------

import math  # noqa: E402  (kept with the section that uses it)

ACTIVATIONS = ("relu", "leaky_relu", "sigmoid", "tanh", "gelu", "linear", "softmax")
_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def _check_activation(name):
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid names: {', '.join(ACTIVATIONS)}")


def _sigmoid(x):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def _normal_cdf(x):
    """Phi(x) = erfc(-x / sqrt 2) / 2, accurate in the lower tail too."""
    return 0.5 * _erfc(-x / math.sqrt(2.0))


def _activation64(x, name, alpha):
    """The element-wise activations in float64 (x float64)."""
    with np.errstate(invalid="ignore"):
        if name == "relu":
            return np.where(x > 0, x, 0.0)
        if name == "leaky_relu":
            return np.where(x > 0, x, float(np.float32(alpha)) * x)
        if name == "sigmoid":
            return _sigmoid(x)
        if name == "tanh":
            return np.tanh(x)
        if name == "gelu":
            return x * _normal_cdf(x)
        return x


def _activation_slope64(x, y, name, alpha):
    """act'(.) in float64 from x (gelu; relu and leaky_relu when given) or y (sigmoid, tanh)."""
    if name == "relu":
        return np.where((y if y is not None else x) > 0, 1.0, 0.0)
    if name == "leaky_relu":
        return np.where((x if x is not None else y) > 0, 1.0, float(np.float32(alpha)))
    if name == "sigmoid":
        return y * (1.0 - y)
    if name == "tanh":
        return 1.0 - y * y
    if name == "gelu":
        return _normal_cdf(x) + x * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    return np.ones_like(x if x is not None else y)


def _f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def activation(x, name, alpha=0.3):
    """Keras' activations in float64: relu (NaN -> 0), leaky_relu, sigmoid, tanh, exact gelu, linear, softmax."""
    _check_activation(name)
    if name == "softmax":
        return softmax(x)
    return _activation64(_f64(x), name, alpha).astype(np.float32)


def activation_backward(x, y, dy, name, alpha=0.3):
    """dy * act'(.) in float64; relu keeps dy's value where it passes (no 0 * inf)."""
    _check_activation(name)
    if name == "softmax":
        return softmax_backward(y, dy)
    dy = _f64(dy)
    slope = _activation_slope64(_f64(x), _f64(y), name, alpha)
    if name == "relu":
        return np.where(slope > 0, dy, 0.0).astype(np.float32)
    return (dy * slope).astype(np.float32)


def _softmax64(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax(x):
    """exp(x - max) / sum along the last axis, in float64."""
    return _softmax64(_f64(x)).astype(np.float32)


def softmax_backward(y, dy):
    """y * (dy - sum(dy * y)) along the last axis, in float64."""
    y, dy = _f64(y), _f64(dy)
    return (y * (dy - (dy * y).sum(axis=-1, keepdims=True))).astype(np.float32)


def column_sum(x):
    """Sum over all axes but the last, in float64."""
    x = _f64(x)
    return x.reshape(-1, x.shape[-1]).sum(axis=0).astype(np.float32)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(z):
    """SplitMix64's finaliser on uint64 arrays (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _dropout_mask(n, rate, seed):
    """The kernel's mask for n elements: element i is kept when the top 32 bits of
    mix64(key + (i + 1) * golden) are >= rate * 2**32, with key = mix64(seed + golden)."""
    key = _mix64(np.array([seed], dtype=np.uint64) + _GOLDEN)
    counters = np.arange(1, n + 1, dtype=np.uint64)
    bits = _mix64(key + counters * _GOLDEN) >> np.uint64(32)
    threshold = int(float(np.float32(rate)) * 2.0**32)
    return (bits >= np.uint64(threshold)).astype(np.uint8)


def dropout(x, rate, seed):
    """Inverted dropout with the kernel's counter-based mask; y = x * (mask / (1 - rate)) in float32."""
    x = np.asarray(x, dtype=np.float32)
    mask = _dropout_mask(x.size, rate, seed).reshape(x.shape)
    scale = np.float32(1.0) / (np.float32(1.0) - np.float32(rate))
    return x * np.where(mask == 1, scale, np.float32(0.0)), mask


def dropout_backward(dy, mask, rate):
    """dy * mask / (1 - rate) in float32, as the kernel."""
    dy = np.asarray(dy, dtype=np.float32)
    scale = np.float32(1.0) / (np.float32(1.0) - np.float32(rate))
    return dy * np.where(np.asarray(mask) == 1, scale, np.float32(0.0))


# ---- losses ---------------------------------------------------------------------------------------------

def _weights(sample_weight, n):
    return np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).reshape(n)


def _softmax_xent64(z, t, w):
    """(loss, d loss / d z) in float64 for logits z (n, c), targets t (n, c), weights w (n,)."""
    n = len(z)
    shifted = z - z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    per_sample = (t * (lse - shifted)).sum(axis=1)
    grad = (np.exp(shifted - lse) * t.sum(axis=1, keepdims=True) - t) * (w / n)[:, None]
    return float((w * per_sample).sum() / n), grad


def _mse64(p, t, w):
    n, c = p.shape
    d = p - t
    return float((w * (d * d).mean(axis=1)).sum() / n), 2.0 * d * (w / (n * c))[:, None]


def _sigmoid_bce64(z, t, w):
    n, c = z.shape
    per_element = np.maximum(z, 0.0) - z * t + np.log1p(np.exp(-np.abs(z)))
    return float((w * per_element.mean(axis=1)).sum() / n), (_sigmoid(z) - t) * (w / (n * c))[:, None]


def _as_2d(a):
    a = _f64(a)
    return a.reshape(-1, 1) if a.ndim == 1 else a


def softmax_cross_entropy(logits, labels, sample_weight=None):
    """mean_i w_i * -sum_j t_ij log softmax(z_i)_j in float64, along the last axis, for class indices (n, ...)
    or (n, ..., 1), or target rows (n, ..., c); logits (n, ..., c) are rows of c, the loss their mean, each
    sample's weight repeated over its positions; grad (softmax(z) sum(t) - t) w / rows."""
    z = _f64(logits)
    c = z.shape[-1]
    rows = z.size // c
    if np.ndim(labels) == z.ndim and not (np.shape(labels)[-1] == 1 and c > 1):
        t = _f64(labels).reshape(rows, c)
    else:
        t = np.zeros((rows, c))
        t[np.arange(rows), np.asarray(labels, dtype=np.int64).reshape(rows)] = 1.0
    w = np.repeat(_weights(sample_weight, len(z)), rows // len(z))
    loss, grad = _softmax_xent64(z.reshape(rows, c), t, w)
    return loss, grad.astype(np.float32).reshape(z.shape)


def mean_squared_error(pred, target, sample_weight=None):
    """mean_i w_i mean_j (p - t)^2 in float64; grad 2 (p - t) w / (n c), in pred's shape."""
    p = _as_2d(pred)
    loss, grad = _mse64(p, _as_2d(target), _weights(sample_weight, len(p)))
    return loss, grad.astype(np.float32).reshape(np.shape(pred))


def sigmoid_binary_cross_entropy(logits, target, sample_weight=None):
    """mean_i w_i mean_j [max(z, 0) - z t + log1p(exp(-|z|))] in float64; grad (sigmoid(z) - t) w / (n c)."""
    z = _as_2d(logits)
    loss, grad = _sigmoid_bce64(z, _as_2d(target), _weights(sample_weight, len(z)))
    return loss, grad.astype(np.float32).reshape(np.shape(logits))


# ---- optimizer updates ----------------------------------------------------------------------------------

def sgd_update(params, grads, velocity, learning_rate, momentum=0.0, nesterov=False):
    """Keras' SGD step in float32, in place, written as Keras writes it:
    m = -g * lr + m * momentum; p += m, or with nesterov p += -g * lr + m * momentum; momentum 0: p += -g * lr."""
    g = np.asarray(grads, dtype=np.float32)
    lr, mom = np.float32(learning_rate), np.float32(momentum)
    if mom == 0:
        params += -g * lr
        return params
    velocity[...] = -g * lr + velocity * mom
    params += (-g * lr + velocity * mom) if nesterov else velocity
    return params


# ---- recurrent cells and embeddings ---------------------------------------------------------------------

from ._reference_recurrent import (embedding, embedding_backward, gru, gru_backward, lstm,  # noqa: E402,F401
                                   lstm_backward, simple_rnn, simple_rnn_backward)


# ---- restricted Boltzmann machines ----------------------------------------------------------------------

def _rbm_draws(n, key, counter):
    """Draw i of the stream (key, counter): mix64(mix64(key + counter * golden) + (i + 1) * golden)."""
    with np.errstate(over="ignore"):
        base = _mix64(np.array([key], dtype=np.uint64) + np.uint64(counter) * _GOLDEN)
        return _mix64(base + np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN)


def rbm_uniform(n, key, counter=0):
    """The kernel's uniforms: the top 24 bits of each draw over 2**24."""
    return ((_rbm_draws(n, key, counter) >> np.uint64(40)).astype(np.float64) / 2.0**24).astype(np.float32)


def rbm_sample(mean, key, counter=0, kind="bernoulli", out=None):
    """Bernoulli (u < mean) or mean + Box-Muller normal (u1 from the top 24 bits, u2 from the next 24)."""
    mean = np.asarray(mean, dtype=np.float32)
    z = _rbm_draws(mean.size, key, counter).reshape(mean.shape)
    if kind == "bernoulli":
        u = ((z >> np.uint64(40)).astype(np.float64) / 2.0**24).astype(np.float32)
        result = (u < mean).astype(np.float32)
    else:
        u1 = ((z >> np.uint64(40)) + np.uint64(1)).astype(np.float64) / 2.0**24
        u2 = ((z >> np.uint64(16)) & np.uint64(0xFFFFFF)).astype(np.float64) / 2.0**24
        result = mean + (np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)).astype(np.float32)
    if out is None:
        return result
    out[...] = result
    return out


def rbm_update(v0, h0, vk, hk, weights, visible_bias, hidden_bias, weights_inc, visible_inc, hidden_inc,
               learning_rate, momentum=0.0, weight_decay=0.0):
    """The CD step of the kernel, statistics in float64, increments in float32 in the kernel's order."""
    v0, h0, vk, hk = (np.asarray(a, dtype=np.float64) for a in (v0, h0, vk, hk))
    batch = len(v0)
    lr, mom, wd = np.float32(learning_rate), np.float32(momentum), np.float32(weight_decay)
    grad = (v0.T @ h0 - vk.T @ hk).astype(np.float32)
    weights_inc[...] = mom * weights_inc + (grad * (lr / np.float32(batch)) - (lr * wd) * weights)
    weights += weights_inc
    scale = float(learning_rate) / batch
    visible_inc[...] = mom * visible_inc + ((v0 - vk).sum(axis=0) * scale).astype(np.float32)
    visible_bias += visible_inc
    hidden_inc[...] = mom * hidden_inc + ((h0 - hk).sum(axis=0) * scale).astype(np.float32)
    hidden_bias += hidden_inc
    return weights, visible_bias, hidden_bias
# ---- image resizing ---------------------------------------------------------------------------------------

def _resize_taps(n_in, n_out, interpolation):
    """Per output index: (lower source index, upper source index, weight of the upper), half-pixel centres."""
    taps = []
    for o in range(n_out):
        src = (o + 0.5) * n_in / n_out - 0.5
        if interpolation == "nearest":
            i = min(int(np.floor(src + 0.5)), n_in - 1)
            taps.append((i, i, 0.0))
        else:
            f = int(np.floor(src))
            taps.append((max(f, 0), min(f + 1, n_in - 1), src - f))
    return taps


def _resize_matrix(n_in, n_out, interpolation):
    """The (n_out, n_in) linear map that resizes one axis."""
    m = np.zeros((n_out, n_in))
    for o, (lo, hi, f) in enumerate(_resize_taps(n_in, n_out, interpolation)):
        m[o, lo] += 1.0 - f
        m[o, hi] += f
    return m


def resize2d(x, size, interpolation="bilinear"):
    """Separable resize in float64: y[n] = Ry @ x[n] @ Rx^T per channel."""
    x = np.asarray(x, np.float64)
    ry, rx = _resize_matrix(x.shape[1], size[0], interpolation), _resize_matrix(x.shape[2], size[1], interpolation)
    return np.einsum("ph,nhwc,qw->npqc", ry, x, rx).astype(np.float32)


def resize2d_backward(dy, input_size, interpolation="bilinear"):
    """The transpose of `resize2d`'s linear map applied to dy."""
    dy = np.asarray(dy, np.float64)
    ry = _resize_matrix(input_size[0], dy.shape[1], interpolation)
    rx = _resize_matrix(input_size[1], dy.shape[2], interpolation)
    return np.einsum("ph,npqc,qw->nhwc", ry, dy, rx).astype(np.float32)


# ---- stride-1 convolution by direct loops (the small-channel kernels of src/conv_small.c) ---------------

def _zero_padded(x, pt, pl, rows, cols):
    """x (batch, h, w, c) placed at (pt, pl) in a zero (batch, rows, cols, c) array, cut where it overhangs."""
    out = np.zeros((x.shape[0], rows, cols, x.shape[3]))
    h, w = min(x.shape[1], rows - pt), min(x.shape[2], cols - pl)
    out[:, pt:pt + h, pl:pl + w] = x[:, :h, :w]
    return out


def conv2d_stride1(x, kernel, bias, padding, output_size, activation="linear", alpha=0.2):
    """y[n, oy, ox, f] = act(sum over (ky, kx, c) of x[n, oy + ky - pt, ox + kx - pl, c] * kernel[ky, kx, c, f]
    + bias[f]), zero outside x; padding (pt, pl), output_size (oh, ow); float64 loops over the taps."""
    (pt, pl), (oh, ow), (kh, kw) = padding, output_size, kernel.shape[:2]
    xp = _zero_padded(np.asarray(x, np.float64), pt, pl, oh + kh - 1, ow + kw - 1)
    y = np.zeros((x.shape[0], oh, ow, kernel.shape[3]))
    for ky in range(kh):
        for kx in range(kw):
            y += xp[:, ky:ky + oh, kx:kx + ow] @ np.asarray(kernel[ky, kx], np.float64)
    if bias is not None:
        y += bias
    return _activation64(y, activation, alpha).astype(np.float32)


def conv2d_stride1_backward(x, kernel, dz, padding):
    """(dx, dkernel) of `conv2d_stride1` for the gradient dz of its pre-activation output."""
    (pt, pl), (_, oh, ow, _), (kh, kw) = padding, dz.shape, kernel.shape[:2]
    xp = _zero_padded(np.asarray(x, np.float64), pt, pl, oh + kh - 1, ow + kw - 1)
    dz = np.asarray(dz, np.float64)
    dxp, dkernel = np.zeros_like(xp), np.zeros(kernel.shape)
    for ky in range(kh):
        for kx in range(kw):
            dkernel[ky, kx] = np.einsum("nhwc,nhwf->cf", xp[:, ky:ky + oh, kx:kx + ow], dz)
            dxp[:, ky:ky + oh, kx:kx + ow] += dz @ np.asarray(kernel[ky, kx], np.float64).T
    dx = np.zeros(x.shape)
    h, w = min(x.shape[1], dxp.shape[1] - pt), min(x.shape[2], dxp.shape[2] - pl)
    dx[:, :h, :w] = dxp[:, pt:pt + h, pl:pl + w]
    return dx.astype(np.float32), dkernel.astype(np.float32)


def max_pool_2x2(y):
    """2 x 2 max pool at stride 2 ("valid": an odd last row/column dropped) of NHWC y."""
    n, h, w, c = y.shape
    return y[:, :h // 2 * 2, :w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
