"""Pooling layers on channels-last (NHWC) images, with Keras names and arguments.

Windows ignore padding: max pooling takes the max of the valid elements and routes the gradient to the first
maximal one, average pooling divides by the number of valid elements (TensorFlow's "same" rule).
"""
import functools

import numpy as np

from .. import _kernels
from .base import Layer
from .conv import Conv2D, _axis_geometry, _check_image_shape, _contiguous_input, _padding_mode, _pair

_threads = _kernels.omp_max_threads


class _Pooling2D(Layer):
    """Shared by MaxPool2D and AveragePooling2D: window geometry, shapes and config."""

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        kind = type(self).__name__
        self.pool_size = _pair(pool_size, "pool_size", kind)
        self.strides = self.pool_size if strides is None else _pair(strides, "strides", kind)
        self.padding = _padding_mode(padding, kind)

    def _geometry(self, input_shape):
        (h, w, _), (ph, pw), (sh, sw) = input_shape, self.pool_size, self.strides
        oh, pt, _ = _axis_geometry(h, ph, sh, 1, self.padding)
        ow, pl, _ = _axis_geometry(w, pw, sw, 1, self.padding)
        return oh, ow, pt, pl

    def compute_output_shape(self, input_shape):
        _check_image_shape(self, input_shape)
        oh, ow, _, _ = self._geometry(input_shape)
        if oh < 1 or ow < 1:
            raise ValueError(f"{type(self).__name__} {self.name!r}: pool_size {self.pool_size} is larger than the "
                             f"input {tuple(input_shape[:2])} with padding {self.padding!r} (output size "
                             f"{(oh, ow)}); use a smaller pool or padding='same'")
        return oh, ow, input_shape[2]

    def build(self, input_shape):
        super().build(input_shape)
        _, _, pt, pl = self._geometry(self.input_shape)
        self._geom = self.pool_size + self.strides + (pt, pl)

    def get_config(self):
        config = super().get_config()
        config.update(pool_size=list(self.pool_size), strides=list(self.strides), padding=self.padding)
        return config

    def _config_repr(self):
        return f"pool_size={self.pool_size}, strides={self.strides}, padding={self.padding!r}"


class MaxPool2D(_Pooling2D):
    """Max pooling over `pool_size` windows at `strides` (default: `pool_size`), NHWC.

    Examples
    --------
    >>> from fastnn import Sequential, layers
    >>> model = Sequential([layers.Input((4, 4, 2)), layers.MaxPool2D()])
    >>> model.predict(np.zeros((1, 4, 4, 2), np.float32)).shape
    (1, 2, 2, 2)
    """

    gives_relu_gradient = True  # backward_through_relu, for the Conv2D before it (Conv2D.takes_relu_gradient)

    def forward(self, x, training=False):
        x = _contiguous_input(self, x)
        shape = (x.shape[0],) + self.output_shape
        y = self._buffer("y", shape)
        # backward needs where each max came from; inference only the values (backward after an inference
        # pass, e.g. for a saliency map, finds the indices then)
        self._x, self._pooled = x, y
        self._argmax = self._buffer("argmax", shape, np.int32) if training else None
        _kernels.maxpool2d_forward(x, y, self._argmax, *self._geom, _threads())
        return y

    def backward_through_relu(self, grad_out, conv):
        """The gradient through this pool and the ReLU of the Conv2D `conv` before it
        (`conv.takes_relu_gradient(self)`), with conv's bias gradient: conv's dz, its output shape. At
        each window's argmax the ReLU's derivative is (pooled value > 0), so dz never needs a pass of its own
        over the full-resolution map."""
        dy = np.ascontiguousarray(grad_out, dtype=np.float32)
        pooled = self._pooled
        if self._argmax is None:
            self._argmax = self._buffer("argmax", dy.shape, np.int32)
            pooled = self._buffer("y_again", dy.shape)
            _kernels.maxpool2d_forward(self._x, pooled, self._argmax, *self._geom, _threads())
        n = dy.shape[0]
        dz = conv._buffer("dz", (n * self.input_shape[0] * self.input_shape[1], conv.filters))
        _kernels.maxpool2d_backward_relu(dy, self._argmax, pooled, dz.reshape((n,) + self.input_shape),
                                         conv.grads[1], _threads())
        return dz

    def backward(self, grad_out, need_dx=True, accumulate=False):
        if not need_dx:
            return None
        dy = np.ascontiguousarray(grad_out, dtype=np.float32)
        if self._argmax is None:
            self._argmax = self._buffer("argmax", dy.shape, np.int32)
            _kernels.maxpool2d_forward(self._x, self._buffer("y_again", dy.shape), self._argmax, *self._geom,
                                       _threads())
        dx = self._buffer("dx", (dy.shape[0],) + self.input_shape)
        _kernels.maxpool2d_backward(dy, self._argmax, dx, _threads())
        return dx


class AveragePooling2D(_Pooling2D):
    """Average pooling over `pool_size` windows at `strides` (default: `pool_size`), NHWC; padded positions are
    not counted in the mean."""

    def forward(self, x, training=False):
        x = _contiguous_input(self, x)
        y = self._buffer("y", (x.shape[0],) + self.output_shape)
        _kernels.avgpool2d_forward(x, y, *self._geom, _threads())
        return y

    def backward(self, grad_out, need_dx=True, accumulate=False):
        if not need_dx:
            return None
        dy = np.ascontiguousarray(grad_out, dtype=np.float32)
        dx = self._buffer("dx", (dy.shape[0],) + self.input_shape)
        _kernels.avgpool2d_backward(dy, dx, *self._geom, _threads())
        return dx


class _GlobalPooling2D(Layer):
    """Pools each channel over the whole image: output (channels,), or (1, 1, channels) with keepdims."""

    def __init__(self, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape):
        _check_image_shape(self, input_shape)
        return (1, 1, input_shape[2]) if self.keepdims else (input_shape[2],)

    def build(self, input_shape):
        super().build(input_shape)
        h, w, _ = self.input_shape
        self._geom = (h, w, 1, 1, 0, 0)  # one window covering the image

    def _pooled(self, n):
        return self._buffer("y", (n, 1, 1, self.input_shape[2]))

    def _out(self, y):
        return y if self.keepdims else y.reshape(y.shape[0], -1)

    def _dy(self, grad_out):
        return np.ascontiguousarray(grad_out, dtype=np.float32).reshape(-1, 1, 1, self.input_shape[2])

    def get_config(self):
        config = super().get_config()
        config["keepdims"] = self.keepdims
        return config


class GlobalAveragePooling2D(_GlobalPooling2D):
    """Mean of each channel over height and width (NHWC)."""

    def forward(self, x, training=False):
        x = _contiguous_input(self, x)
        y = self._pooled(x.shape[0])
        _kernels.avgpool2d_forward(x, y, *self._geom, _threads())
        return self._out(y)

    def backward(self, grad_out, need_dx=True, accumulate=False):
        if not need_dx:
            return None
        dy = self._dy(grad_out)
        dx = self._buffer("dx", (dy.shape[0],) + self.input_shape)
        _kernels.avgpool2d_backward(dy, dx, *self._geom, _threads())
        return dx


class GlobalMaxPool2D(_GlobalPooling2D):
    """Max of each channel over height and width (NHWC); the gradient goes to the first maximal element."""

    def forward(self, x, training=False):
        x = _contiguous_input(self, x)
        y = self._pooled(x.shape[0])
        self._argmax = self._buffer("argmax", y.shape, np.int32)
        _kernels.maxpool2d_forward(x, y, self._argmax, *self._geom, _threads())
        return self._out(y)

    def backward(self, grad_out, need_dx=True, accumulate=False):
        if not need_dx:
            return None
        dy = self._dy(grad_out)
        dx = self._buffer("dx", (dy.shape[0],) + self.input_shape)
        _kernels.maxpool2d_backward(dy, self._argmax, dx, _threads())
        return dx


def forward_steps(layers, training, keep):
    """The forward pass of a layer sequence as (callable, argument) pairs, ``x = f(x, arg)`` in turn: each
    Conv2D that its kernel lets feed the 2x2 MaxPool2D after it runs both in one call (`forward_pooled`, which
    keeps what backward needs when `keep`), the others ``layer.forward(x, training)``, or their
    ``forward_unsaved`` when they have one and nothing is kept."""
    steps, i = [], 0
    while i < len(layers):
        layer = layers[i]
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if type(layer) is Conv2D and type(nxt) is MaxPool2D and layer.can_fuse_pool(nxt):
            steps.append((functools.partial(layer.forward_pooled, pool=nxt), keep))
            i += 2
        else:
            unsaved = not keep and type(layer).forward_unsaved is not Layer.forward_unsaved
            steps.append((layer.forward_unsaved if unsaved else layer.forward, training))
            i += 1
    return steps


def backward_steps(layers):
    """The backward pass of a layer sequence as (callable, need_dx) pairs, ``dy = f(dy, need_dx)`` in turn (last
    layer first), each layer ``layer.backward(dy, need_dx)`` except: a layer after a Conv2D that
    `takes_relu_gradient` from it (a MaxPool2D, or an implicit-GEMM Conv2D) hands that Conv2D its dz and bias
    gradient directly, and that Conv2D's step starts from dz (`backward_from_dz`)."""
    steps = []
    for i in range(len(layers) - 1, -1, -1):
        layer, prev = layers[i], layers[i - 1] if i > 0 else None
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        gives = type(prev) is Conv2D and prev.takes_relu_gradient(layer)
        if type(layer) is MaxPool2D and gives:
            steps.append((functools.partial(_through_relu, layer, prev), True))
        elif type(layer) is Conv2D:
            step = layer.backward_from_dz if nxt is not None and layer.takes_relu_gradient(nxt) else layer.backward
            steps.append((functools.partial(step, relu_below=prev) if gives else step, i > 0))
        else:
            steps.append((layer.backward, i > 0))
    return steps


def _through_relu(pool, conv, dy, need_dx):
    return pool.backward_through_relu(dy, conv)


# Keras' other spellings
MaxPooling2D = MaxPool2D
AvgPool2D = AveragePooling2D
GlobalAvgPool2D = GlobalAveragePooling2D
GlobalMaxPooling2D = GlobalMaxPool2D
