"""Convolution layers on channels-last (NHWC) images: Conv2D and ZeroPadding2D.

Conv2D runs as im2col + GEMM: the columns of a chunk of output pixels (one row of kh * kw * c_in values per
pixel) are built by a C kernel into a workspace of a few MB, then multiplied by the kernel reshaped to
(kh * kw * c_in, filters), with the bias and activation applied in the GEMM's epilogue. A 1x1 convolution at
stride 1 is a plain GEMM on the input. Other stride-1 convolutions on enough input channels run as implicit
GEMM (src/conv_implicit.c): the GEMM kernels read the image tap by tap, forward and backward, and no column
matrix is built. Among those, 3x3 undilated ones on even output grids with channel counts that are multiples of
16 run their forward pass and input gradient as Winograd F(2x2, 3x3) on AVX-512 (src/conv_winograd_avx512.c):
16 products per 2x2 block of outputs instead of 36, rounded differently from the direct sum (relative errors of
about 1e-6), the same bits for any thread count.
"""
import os

import numpy as np

from .. import _kernels, activations, initializers
from ._conv_pooled import PooledConv
from ._conv_small import SmallChannelConv, takes_small_path
from .base import Layer, ParamSpec
from .core import _Activated

_threads = _kernels.omp_max_threads
_WORKSPACE_BYTES = 4 << 20  # per column workspace: bounds memory whatever the batch
# Inference im2col chunks (per thread): columns that stay in L2 for their GEMM, in rows a multiple of every
# direct GEMM kernel's height.
_L2_CHUNK_BYTES = 128 << 10
_CHUNK_UNIT = 24
# Input channels from which a stride-1 convolution runs as implicit GEMM. Below, its kernel-gradient tiles (c_in
# rows high) and per-tap steps lose to building the columns: measured on one thread, B64, layer forward+backward
# 0.4-0.75x at 1-6 channels, 1.0x at 8, 1.1-1.3x at 12, 1.2-1.4x at 16.
_IMPLICIT_MIN_CHANNELS = 12
# FASTNN_WINOGRAD=0: every convolution on the direct sum (bit for bit im2col + GEMM), never Winograd
_WINOGRAD = os.environ.get("FASTNN_WINOGRAD", "1").strip() != "0"


def _pair(value, what, layer):
    """(a, b) of positive ints from an int or a pair."""
    pair = (value, value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    try:
        pair = tuple(pair)
        ok = len(pair) == 2 and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair)
    except TypeError:
        ok = False
    if not ok or min(pair) < 1:
        raise ValueError(f"{layer} {what} must be a positive int or a pair of positive ints, got {value!r}")
    return int(pair[0]), int(pair[1])


def _padding_mode(padding, layer):
    mode = padding.lower() if isinstance(padding, str) else padding
    if mode not in ("valid", "same"):
        raise ValueError(f"{layer} padding must be 'valid' or 'same', got {padding!r}")
    return mode


def _axis_geometry(size, window, stride, dilation, mode):
    """(output size, pad before, pad after) on one axis, as Keras/TensorFlow: "same" pads a total of
    max((ceil(size / stride) - 1) * stride + span - size, 0), the odd extra at the end (bottom/right)."""
    span = (window - 1) * dilation + 1
    if mode == "valid":
        return (size - span) // stride + 1 if size >= span else 0, 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return out, total // 2, total - total // 2


def _set_conv_arguments(layer, what, filters, kernel_size, strides, padding, dilation_rate, activation, use_bias,
                        kernel_initializer, bias_initializer):
    """Check and set the arguments every convolution layer shares (`what` names the layer in errors)."""
    if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or filters < 1:
        raise ValueError(f"{what} filters must be a positive integer, got {filters!r}")
    layer.filters = int(filters)
    layer.kernel_size = _pair(kernel_size, "kernel_size", what)
    layer.strides = _pair(strides, "strides", what)
    layer.padding = _padding_mode(padding, what)
    layer.dilation_rate = _pair(dilation_rate, "dilation_rate", what)
    layer._set_activation(activation)
    layer.use_bias = bool(use_bias)
    layer.kernel_initializer = initializers.get(kernel_initializer)
    layer.bias_initializer = initializers.get(bias_initializer)


def _conv_config(layer):
    """The config entries of the arguments `_set_conv_arguments` sets."""
    return dict(filters=layer.filters, kernel_size=list(layer.kernel_size), strides=list(layer.strides),
                padding=layer.padding, dilation_rate=list(layer.dilation_rate), activation=layer.activation,
                use_bias=layer.use_bias, kernel_initializer=initializers.serialize(layer.kernel_initializer),
                bias_initializer=initializers.serialize(layer.bias_initializer))


def _check_image_shape(layer, input_shape, channels=None):
    if len(input_shape) != 3:
        raise ValueError(f"{type(layer).__name__} {layer.name!r} expects images of per-sample shape (height, width, "
                         f"channels) with channels on the last axis (NHWC), got per-sample shape {tuple(input_shape)}")
    if channels is not None and input_shape[2] != channels:
        raise ValueError(f"{type(layer).__name__} {layer.name!r} was built for {channels} channels (the last axis, "
                         f"NHWC), got per-sample shape {tuple(input_shape)} with {input_shape[2]} channels")


def _contiguous_input(layer, x):
    if x.shape[1:] != layer.input_shape:
        _check_image_shape(layer, x.shape[1:], layer.input_shape[2])
        raise ValueError(f"{type(layer).__name__} {layer.name!r} was built for per-sample shape "
                         f"{layer.input_shape}, got {x.shape[1:]}")
    return np.ascontiguousarray(x, dtype=np.float32)


class Conv2D(Layer, _Activated, SmallChannelConv, PooledConv):
    """2-D convolution over NHWC images: ``y = activation(conv(x, kernel) + bias)``.

    Parameters
    ----------
    filters : int
        Output channels.
    kernel_size : int or (int, int)
    strides : int or (int, int)
    padding : {"valid", "same"}
        "same" pads as Keras/TensorFlow (the odd extra row/column at the bottom/right).
    dilation_rate : int or (int, int)
    activation : str, optional
        linear (default), relu, leaky_relu, sigmoid, tanh, gelu or softmax (over channels).
    use_bias : bool
    kernel_initializer, bias_initializer : str or Initializer
        glorot_uniform and zeros by default, as in Keras.

    Notes
    -----
    Input (batch, height, width, c_in); output (batch, out_h, out_w, filters). Weights as Keras: kernel
    (kh, kw, c_in, filters), bias (filters,).

    Examples
    --------
    >>> from fastnn import Sequential, layers
    >>> model = Sequential([layers.Input((8, 8, 1)), layers.Conv2D(4, 3, activation="relu")])
    >>> model.predict(np.zeros((2, 8, 8, 1), np.float32)).shape
    (2, 6, 6, 4)
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", dilation_rate=1, activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        _set_conv_arguments(self, "Conv2D", filters, kernel_size, strides, padding, dilation_rate, activation,
                            use_bias, kernel_initializer, bias_initializer)

    def _geometry(self, input_shape):
        (h, w, _), (kh, kw), (sh, sw), (dh, dw) = input_shape, self.kernel_size, self.strides, self.dilation_rate
        oh, pt, _ = _axis_geometry(h, kh, sh, dh, self.padding)
        ow, pl, _ = _axis_geometry(w, kw, sw, dw, self.padding)
        return oh, ow, pt, pl

    def compute_output_shape(self, input_shape):
        _check_image_shape(self, input_shape)
        oh, ow, _, _ = self._geometry(input_shape)
        if oh < 1 or ow < 1:
            raise ValueError(f"Conv2D {self.name!r}: kernel {self.kernel_size} with dilation {self.dilation_rate} "
                             f"spans more than the {self.padding}-padded input {tuple(input_shape[:2])} "
                             f"(output size {(oh, ow)}); use a smaller kernel or padding='same'")
        return oh, ow, self.filters

    def build(self, input_shape):
        super().build(input_shape)
        oh, ow, pt, pl = self._geometry(self.input_shape)
        kh, kw = self.kernel_size
        self._geom = (kh, kw) + self.strides + (pt, pl) + self.dilation_rate + (oh, ow)
        self._k = kh * kw * self.input_shape[2]
        self._direct = (kh, kw) == (1, 1) and self.strides == (1, 1)  # the input is its own column matrix
        self._chunk = max(1, _WORKSPACE_BYTES // (4 * self._k))
        self._implicit = (not self._direct and self.strides == (1, 1)
                          and self.input_shape[2] >= _IMPLICIT_MIN_CHANNELS)
        self._small = not self._direct and takes_small_path(self)
        # 3x3 undilated implicit convolutions ask for Winograd F(2x2, 3x3), forward and input gradient alike; C
        # takes it where the grid and channels fit (conv2d_winograd_applies), else runs the direct chain
        self._winograd = _WINOGRAD and self._implicit and (kh, kw) == (3, 3) and self.dilation_rate == (1, 1)

    def param_specs(self):
        (kh, kw), c_in = self.kernel_size, self.input_shape[2]
        specs = [ParamSpec("kernel", (kh, kw, c_in, self.filters), self.kernel_initializer, kh * kw * c_in,
                           kh * kw * self.filters, True)]
        if self.use_bias:
            specs.append(ParamSpec("bias", (self.filters,), self.bias_initializer, kh * kw * c_in,
                                   kh * kw * self.filters, True))
        return specs

    def _chunks(self, rows):
        step = min(self._chunk, rows)
        return step, [(r0, min(step, rows - r0)) for r0 in range(0, rows, step)]

    def forward(self, x, training=False):
        x = _contiguous_input(self, x)
        if self._small:
            return self._small_forward(x)
        n, nt = x.shape[0], _threads()
        rows = n * self.output_shape[0] * self.output_shape[1]
        kernel = self.weights[0].reshape(self._k, self.filters)
        bias = self.weights[1] if self.use_bias else None
        y = self._buffer("y", (rows, self.filters))
        act = self._act
        fuse = act != activations.SOFTMAX and not activations.needs_preactivation(act) and not self.emit_logits
        z = y if (fuse or self.emit_logits or act == activations.SOFTMAX) else self._buffer("z", y.shape)
        gemm_act = act if fuse else 0
        self._cols = None
        if self._direct:
            _kernels.gemm(x.reshape(rows, self._k), kernel, z, bias=bias, act=gemm_act, act_alpha=self._alpha,
                          n_threads=nt)
        elif self._implicit:
            _kernels.conv2d_implicit_forward(x, kernel, z, *self._geom, bias=bias, act=gemm_act,
                                             act_alpha=self._alpha, n_threads=nt, winograd=self._winograd)
        elif not training:  # chunked in C, each chunk's columns still in L2 for its GEMM, a chunk per thread at least
            chunk = min(rows, max(_CHUNK_UNIT, _L2_CHUNK_BYTES // (4 * self._k) // _CHUNK_UNIT * _CHUNK_UNIT),
                        -(-rows // (nt * _CHUNK_UNIT)) * _CHUNK_UNIT)
            cols = self._buffer("chunk_cols", (nt, chunk, self._k))
            _kernels.conv2d_forward(x, kernel, z, cols, *self._geom, bias=bias, act=gemm_act,
                                    act_alpha=self._alpha, n_threads=nt)
        else:
            step, chunks = self._chunks(rows)
            ws = self._buffer("cols", (step, self._k))
            for r0, size in chunks:
                cols = ws[:size]
                _kernels.im2col(x, cols, *self._geom, r0, nt)
                _kernels.gemm(cols, kernel, z[r0:r0 + size], bias=bias, act=gemm_act, act_alpha=self._alpha,
                              n_threads=nt)
            if len(chunks) == 1:
                self._cols = ws  # backward reuses the columns instead of rebuilding them
        if not fuse and not self.emit_logits:
            self._activate(z, y)
        self._x, self._z, self._y = x, (None if fuse else z), y
        return y.reshape((n,) + self.output_shape)

    def backward(self, grad_out, need_dx=True, accumulate=False, relu_below=None):
        """As Layer.backward; relu_below: the Conv2D before this one when it `takes_relu_gradient(self)`: dx
        is then that layer's dz (through its ReLU), and its bias gradient is written."""
        if self._small:
            return self._small_backward(grad_out, need_dx, accumulate)
        x, nt = self._x, _threads()
        dy = grad_out.reshape(-1, self.filters)
        train = self.trainable
        linear = self.emit_logits or self._act == 0
        if train and self.use_bias and self._act != activations.SOFTMAX:
            # the activation gradient and the bias gradient in one pass over dz
            dy = np.ascontiguousarray(dy)
            dz = dy if linear else self._buffer("dz", dy.shape)
            z, y = (None, None) if linear else (self._z, self._y.reshape(dy.shape))
            _kernels.act_backward_colsum(None if z is None else z.reshape(dy.shape), y, dy, dz, self.grads[1],
                                         0 if linear else self._act, self._alpha, accumulate, nt)
        else:
            dz = dy
            if not linear:
                dz = self._buffer("dz", dy.shape)
                self._activation_grad(self._z, self._y, dy, dz)
            if train and self.use_bias:
                _kernels.colsum(dz, self.grads[1], accumulate, nt)
        return self._backward_from_dz(dz, need_dx, accumulate, relu_below)

    @property
    def gives_relu_gradient(self):
        """Whether this layer's input gradient can be masked by the ReLU before it (`takes_relu_gradient`)."""
        return self._implicit

    def takes_relu_gradient(self, nxt):
        """Whether the layer `nxt` right after this one may compute this layer's dz (the gradient through its
        ReLU) and bias gradient: a ReLU with a bias, off the small-channel path, before a layer that
        `gives_relu_gradient` (MaxPool2D.backward_through_relu, or an implicit Conv2D's masked input
        gradient). This layer's backward then starts from dz (`backward_from_dz`)."""
        return (not self._small and self._act == activations.code("relu") and self.use_bias
                and not self.emit_logits and nxt.input_shape == self.output_shape
                and getattr(nxt, "gives_relu_gradient", False))

    def backward_from_dz(self, dz, need_dx, relu_below=None):
        """The rest of backward once the layer after this one wrote dz (this layer's output shape) and the bias
        gradient: the kernel gradient and, when need_dx, the input gradient (relu_below as in backward)."""
        return self._backward_from_dz(dz.reshape(-1, self.filters), need_dx, False, relu_below)

    def _backward_from_dz(self, dz, need_dx, accumulate, relu_below=None):
        x, nt, train = self._x, _threads(), self.trainable
        kernel = self.weights[0].reshape(self._k, self.filters)
        if not train and not accumulate:
            self._zero_grads()
        dx = self._buffer("dx", x.shape) if need_dx else None
        if self._direct:
            x2 = x.reshape(-1, self._k)
            if train:
                _kernels.gemm(x2, dz, self.grads[0].reshape(self._k, self.filters), trans_a=True,
                              accumulate=accumulate, n_threads=nt)
            if need_dx:
                _kernels.gemm(dz, kernel, dx.reshape(x2.shape), trans_b=True, n_threads=nt)
            return dx
        if not (train or need_dx):
            return None
        if self._implicit:
            dz = np.ascontiguousarray(dz)
            # below's dz and bias gradient (the column sums of its dz, this dx) in the same pass
            relu_y, dbias = (None, None) if relu_below is None else (relu_below._y.reshape(x.shape),
                                                                     relu_below.grads[1])
            # both gradients in one call, chunks of images staying in cache for both
            dkernel = self.grads[0].reshape(self._k, self.filters) if train else None
            _kernels.conv2d_implicit_backward(x, dz, kernel, dkernel, dx, *self._geom, relu_y, dbias, accumulate, nt,
                                              self._winograd)
            return dx
        step, chunks = self._chunks(dz.shape[0])
        if need_dx:
            dx.fill(0.0)
            dcols_ws = self._buffer("dcols", (step, self._k))
        reuse = self._cols is not None and len(chunks) == 1
        ws = self._cols if reuse else self._buffer("cols", (step, self._k))
        dkernel = self.grads[0].reshape(self._k, self.filters) if train else None
        for r0, size in chunks:
            dz_chunk = dz[r0:r0 + size]
            if train:
                cols = ws[:size]
                if not reuse:
                    _kernels.im2col(x, cols, *self._geom, r0, nt)
                # the chunks' contributions add up in chunk order: the same sum for any thread count
                _kernels.gemm(cols, dz_chunk, dkernel, trans_a=True, accumulate=accumulate or r0 > 0, n_threads=nt)
            if need_dx:
                dcols = dcols_ws[:size]
                _kernels.gemm(dz_chunk, kernel, dcols, trans_b=True, n_threads=nt)
                _kernels.col2im(dcols, dx, *self._geom, r0, nt)
        return dx

    def get_config(self):
        config = super().get_config()
        config.update(_conv_config(self))
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**initializers.deserialize_in(config))

    def _config_repr(self):
        return (f"{self.filters}, {self.kernel_size}, strides={self.strides}, padding={self.padding!r}, "
                f"activation={self.activation!r}")


class ZeroPadding2D(Layer):
    """Pads NHWC images with zeros: ``padding`` is an int, (rows, cols), or ((top, bottom), (left, right))."""

    def __init__(self, padding=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.padding = self._parse(padding)

    @staticmethod
    def _parse(padding):
        def amount(v):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"ZeroPadding2D padding must hold non-negative ints, got {padding!r}")
            return int(v)

        if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
            p = amount(padding)
            return (p, p), (p, p)
        try:
            a, b = padding
            if isinstance(a, (int, np.integer)) and isinstance(b, (int, np.integer)):
                return (amount(a), amount(a)), (amount(b), amount(b))
            (t, bo), (le, r) = a, b
            return (amount(t), amount(bo)), (amount(le), amount(r))
        except (TypeError, ValueError) as exc:
            if "non-negative" in str(exc):
                raise
            raise ValueError(f"ZeroPadding2D padding must be an int, (rows, cols) or ((top, bottom), "
                             f"(left, right)), got {padding!r}") from None

    def compute_output_shape(self, input_shape):
        _check_image_shape(self, input_shape)
        (t, b), (le, r) = self.padding
        h, w, c = input_shape
        return h + t + b, w + le + r, c

    def forward(self, x, training=False):
        x = _contiguous_input(self, x)
        (t, _), (le, _) = self.padding
        h, w, _ = self.input_shape
        y = self._buffer("y", (x.shape[0],) + self.output_shape)
        y.fill(0.0)
        y[:, t:t + h, le:le + w, :] = x
        return y

    def backward(self, grad_out, need_dx=True, accumulate=False):
        if not need_dx:
            return None
        (t, _), (le, _) = self.padding
        h, w, _ = self.input_shape
        dx = self._buffer("dx", (grad_out.shape[0],) + self.input_shape)
        dx[...] = grad_out[:, t:t + h, le:le + w, :]
        return dx

    def get_config(self):
        config = super().get_config()
        config["padding"] = [list(self.padding[0]), list(self.padding[1])]
        return config
