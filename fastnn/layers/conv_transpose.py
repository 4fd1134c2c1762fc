"""Conv2DTranspose: the transposed ("fractionally strided") convolution of NHWC images, as Keras'.

A transposed convolution is the input gradient of a convolution, so it runs on Conv2D's kernels the other way
round: forward multiplies each input pixel's channels by the kernel (one GEMM per chunk of pixels, giving a
column matrix of kh * kw * filters values per pixel) and adds the columns into the output image (col2im);
backward gathers the output gradient into columns (im2col) and multiplies: by the kernel for the input
gradient, by the input for the kernel gradient.
"""
import numpy as np

from .. import _kernels, activations, initializers
from .base import Layer, ParamSpec
from .conv import _WORKSPACE_BYTES, _check_image_shape, _contiguous_input, _conv_config, _set_conv_arguments
from .core import _Activated

_threads = _kernels.omp_max_threads


def _output_padding(value, strides):
    if value is None:
        return None
    pair = (value, value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    try:
        pair = tuple(pair)
        ok = len(pair) == 2 and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair)
    except TypeError:
        ok = False
    if not ok or min(pair) < 0:
        raise ValueError(f"Conv2DTranspose output_padding must be None, a non-negative int or a pair of them, "
                         f"got {value!r}")
    if any(p >= s for p, s in zip(pair, strides)):
        raise ValueError(f"Conv2DTranspose output_padding {tuple(pair)} must be smaller than the strides "
                         f"{tuple(strides)}, as in Keras")
    return int(pair[0]), int(pair[1])


def _transpose_axis(size, window, stride, dilation, mode, output_padding):
    """(output length, pad before) on one axis, as Keras/TensorFlow: the output is the input of the forward
    convolution (same window, stride and padding rule) whose output has `size` pixels."""
    span = (window - 1) * dilation + 1
    if output_padding is None:
        out = size * stride + max(span - stride, 0) if mode == "valid" else size * stride
    else:
        out = (size - 1) * stride + span - 2 * (span // 2 if mode == "same" else 0) + output_padding
    pad = max((size - 1) * stride + span - out, 0) // 2 if mode == "same" else 0
    return out, pad


class Conv2DTranspose(Layer, _Activated):
    """Transposed 2-D convolution over NHWC images, ``y = activation(conv_transpose(x, kernel) + bias)``.

    Parameters
    ----------
    filters : int
        Output channels.
    kernel_size : int or (int, int)
    strides : int or (int, int)
        The factor by which the image grows.
    padding : {"valid", "same"}
        "same" gives an output of input * strides pixels per axis; "valid" input * strides + max(kernel - strides,
        0) (kernel spans counted with dilation).
    output_padding : None, int or (int, int)
        When given (each < strides), the output is (input - 1) * strides + kernel - 2 * pad + output_padding,
        pad = kernel // 2 for "same", 0 for "valid": it picks one of the input sizes a strided convolution maps
        onto the same output size.
    dilation_rate : int or (int, int)
    activation : str, optional
        linear (default), relu, leaky_relu, sigmoid, tanh, gelu or softmax (over channels).
    use_bias : bool
    kernel_initializer, bias_initializer : str or Initializer
        glorot_uniform and zeros by default, as in Keras.

    Notes
    -----
    Input (batch, height, width, c_in); output (batch, out_h, out_w, filters). Weights as Keras: kernel
    (kh, kw, filters, c_in) (the layout of the forward convolution it transposes), bias (filters,).

    Examples
    --------
    >>> from fastnn import Sequential, layers
    >>> model = Sequential([layers.Input((4, 4, 3)), layers.Conv2DTranspose(2, 3, strides=2, padding="same")])
    >>> model.predict(np.zeros((1, 4, 4, 3), np.float32)).shape
    (1, 8, 8, 2)
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None, dilation_rate=1,
                 activation=None, use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 **kwargs):
        super().__init__(**kwargs)
        _set_conv_arguments(self, "Conv2DTranspose", filters, kernel_size, strides, padding, dilation_rate,
                            activation, use_bias, kernel_initializer, bias_initializer)
        self.output_padding = _output_padding(output_padding, self.strides)

    def _geometry(self, input_shape):
        op = self.output_padding or (None, None)
        return [_transpose_axis(size, k, s, d, self.padding, p) for size, k, s, d, p in
                zip(input_shape[:2], self.kernel_size, self.strides, self.dilation_rate, op)]

    def compute_output_shape(self, input_shape):
        _check_image_shape(self, input_shape)
        (oh, _), (ow, _) = self._geometry(input_shape)
        if oh < 1 or ow < 1:
            raise ValueError(f"Conv2DTranspose {self.name!r}: input {tuple(input_shape[:2])} with kernel "
                             f"{self.kernel_size}, strides {self.strides}, padding {self.padding!r} and "
                             f"output_padding {self.output_padding} gives output size {(oh, ow)}")
        for axis, (size, out, s) in enumerate(zip(input_shape[:2], (oh, ow), self.strides)):
            if self.padding == "same" and -(-out // s) != size:
                raise ValueError(f"Conv2DTranspose {self.name!r}: with padding 'same', kernel {self.kernel_size} "
                                 f"and output_padding {self.output_padding}, axis {axis} would grow from {size} to "
                                 f"{out} pixels, which a 'same' convolution at stride {s} maps to "
                                 f"{-(-out // s)}, not back to {size} (TensorFlow rejects it too); use an odd "
                                 f"kernel or output_padding >= 1")
        return oh, ow, self.filters

    def build(self, input_shape):
        super().build(input_shape)
        (_, pt), (_, pl) = self._geometry(self.input_shape)
        h, w, _ = self.input_shape
        kh, kw = self.kernel_size
        # the forward convolution's geometry: from this layer's output grid to its input grid
        self._geom = (kh, kw) + self.strides + (pt, pl) + self.dilation_rate + (h, w)
        self._k = kh * kw * self.filters
        self._direct = (kh, kw) == (1, 1) and self.strides == (1, 1)  # a plain GEMM on the pixels
        self._chunk = max(1, _WORKSPACE_BYTES // (4 * self._k))

    def param_specs(self):
        (kh, kw), c_in = self.kernel_size, self.input_shape[2]
        fan_in, fan_out = kh * kw * self.filters, kh * kw * c_in  # Keras' fans for this kernel's shape
        specs = [ParamSpec("kernel", (kh, kw, self.filters, c_in), self.kernel_initializer, fan_in, fan_out, True)]
        if self.use_bias:
            specs.append(ParamSpec("bias", (self.filters,), self.bias_initializer, fan_in, fan_out, True))
        return specs

    def _chunks(self, rows):
        step = min(self._chunk, rows)
        return step, [(r0, min(step, rows - r0)) for r0 in range(0, rows, step)]

    def forward(self, x, training=False):
        x = _contiguous_input(self, x)
        n, nt, c_in = x.shape[0], _threads(), self.input_shape[2]
        x2 = x.reshape(-1, c_in)
        kernel = self.weights[0].reshape(self._k, c_in)
        bias = self.weights[1] if self.use_bias else None
        shape = (n,) + self.output_shape
        y = self._buffer("y", shape)
        act = self._act
        direct_fuse = (self._direct and act != activations.SOFTMAX and not activations.needs_preactivation(act)
                       and not self.emit_logits)
        keep_z = not (direct_fuse or self.emit_logits or act in (0, activations.SOFTMAX))
        z = self._buffer("z", shape) if keep_z else y
        if self._direct:
            _kernels.gemm(x2, kernel, z.reshape(-1, self.filters), bias=bias, act=act if direct_fuse else 0,
                          act_alpha=self._alpha, trans_b=True, n_threads=nt)
        else:
            if bias is None:
                z.fill(0.0)
            else:
                z[...] = bias
            step, chunks = self._chunks(x2.shape[0])
            ws = self._buffer("cols", (step, self._k))
            for r0, size in chunks:
                cols = ws[:size]
                _kernels.gemm(x2[r0:r0 + size], kernel, cols, trans_b=True, n_threads=nt)
                _kernels.col2im(cols, z, *self._geom, r0, nt)
        if not direct_fuse and not self.emit_logits and act != 0:
            self._activate(z.reshape(-1, self.filters), y.reshape(-1, self.filters))
        self._x2, self._z, self._y = x2, (z if keep_z else None), y
        return y

    def backward(self, grad_out, need_dx=True, accumulate=False):
        x2, nt, c_in = self._x2, _threads(), self.input_shape[2]
        dy = np.ascontiguousarray(grad_out, dtype=np.float32)
        if self.emit_logits or self._act == 0:
            dz = dy
        else:
            dz = self._buffer("dz", dy.shape)
            z2 = None if self._z is None else self._z.reshape(-1, self.filters)
            self._activation_grad(z2, self._y.reshape(-1, self.filters), dy.reshape(-1, self.filters),
                                  dz.reshape(-1, self.filters))
        dz2 = dz.reshape(-1, self.filters)
        kernel = self.weights[0].reshape(self._k, c_in)
        train = self.trainable
        if train and self.use_bias:
            _kernels.colsum(dz2, self.grads[1], accumulate, nt)
        elif not train and not accumulate:
            self._zero_grads()
        dkernel = self.grads[0].reshape(self._k, c_in) if train else None
        dx2 = self._buffer("dx", x2.shape) if need_dx else None
        if self._direct:
            if train:
                _kernels.gemm(dz2, x2, dkernel, trans_a=True, accumulate=accumulate, n_threads=nt)
            if need_dx:
                _kernels.gemm(dz2, kernel, dx2, n_threads=nt)
        elif train or need_dx:
            step, chunks = self._chunks(x2.shape[0])
            ws = self._buffer("cols", (step, self._k))
            for r0, size in chunks:
                cols = ws[:size]
                _kernels.im2col(dz, cols, *self._geom, r0, nt)
                if need_dx:
                    _kernels.gemm(cols, kernel, dx2[r0:r0 + size], n_threads=nt)
                if train:  # chunks add up in chunk order: the same sum for any thread count
                    _kernels.gemm(cols, x2[r0:r0 + size], dkernel, trans_a=True, accumulate=accumulate or r0 > 0,
                                  n_threads=nt)
        return None if dx2 is None else dx2.reshape((dy.shape[0],) + self.input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(_conv_config(self),
                      output_padding=None if self.output_padding is None else list(self.output_padding))
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**initializers.deserialize_in(config))

    def _config_repr(self):
        return (f"{self.filters}, {self.kernel_size}, strides={self.strides}, padding={self.padding!r}, "
                f"activation={self.activation!r}")
