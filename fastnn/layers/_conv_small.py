"""Conv2D's path for few channels: the direct kernels of src/conv_small.c instead of im2col + GEMM.

`Conv2D` takes it (`takes_small_path`, decided at build) for stride-1, undilated convolutions with few input
channels and filters, where the GEMM's 16-wide tiles would be mostly empty. Forward and backward run one
kernel call each; `_small_call` can also pool the output 2x2 in the same call (`_conv_pooled.PooledConv`).
"""
import numpy as np

from .. import _kernels, activations

_threads = _kernels.omp_max_threads

# The direct kernels beat im2col + GEMM up to these channel counts (lenet's 1 -> 6 and 6 -> 16 filters of 5x5
# ran 2.5x and 1.3x faster; cnn32's 3 -> 32 filters of 3x3 ran 1.15x slower).
_SMALL_MAX_CIN = 8
_SMALL_MAX_FILTERS = 16
_SMALL_ACTS = tuple(activations.code(a) for a in ("linear", "relu", "leaky_relu"))  # fused in its epilogue


def takes_small_path(layer):
    """Whether a built Conv2D runs on the small-channel kernels (not for 1x1 stride-1 ones: a plain GEMM)."""
    return (layer.strides == (1, 1) and layer.dilation_rate == (1, 1) and layer.input_shape[2] <= _SMALL_MAX_CIN
            and layer.filters <= _SMALL_MAX_FILTERS)


class SmallChannelConv:
    """The small-channel forward and backward passes of Conv2D (a mixin: Conv2D provides the rest)."""

    def _small_forward(self, x):
        act = self._act
        kact = act if act in _SMALL_ACTS and not self.emit_logits else 0
        post = not self.emit_logits and kact != act  # an activation the kernel does not fuse
        y = self._buffer("y", (x.shape[0],) + self.output_shape)
        z = self._buffer("z", y.shape) if post and activations.needs_preactivation(act) else y
        self._small_call(x, z, kact)
        if post:
            self._activate(z.reshape(-1, self.filters), y.reshape(-1, self.filters))
        rows = (-1, self.filters)
        self._x, self._z, self._y, self._cols = x, (z.reshape(rows) if post else None), y.reshape(rows), None
        return y

    def _small_call(self, x, y, act, pooled=None, argmax=None):
        g = self._geom  # positional arguments: keywords cost a few hundred ns a call at batch 1
        _kernels.conv2d_small_forward(x, self.weights[0], y, g[4], g[5], g[8], g[9],
                                      self.weights[1] if self.use_bias else None, act, self._alpha, pooled, argmax,
                                      _threads())

    def _small_backward(self, grad_out, need_dx, accumulate):
        x, nt = self._x, _threads()
        dy = np.ascontiguousarray(grad_out, dtype=np.float32).reshape(-1, self.filters)
        if self.emit_logits or self._act == 0:
            dz = dy
        else:
            dz = self._buffer("dz", dy.shape)
            self._activation_grad(self._z, self._y, dy, dz)
        dz = dz.reshape((x.shape[0],) + self.output_shape)
        pt, pl = self._geom[4], self._geom[5]
        if self.trainable:  # the bias gradient in the same pass (a general column sum is slow on 6 columns)
            _kernels.conv2d_small_backward_filter(x, dz, self.grads[0], pt, pl, accumulate, nt,
                                                  self.grads[1] if self.use_bias else None)
        elif not accumulate:
            self._zero_grads()
        if not need_dx:
            return None
        dx = self._buffer("dx", x.shape)
        _kernels.conv2d_small_backward_input(dz, self.weights[0], dx, pt, pl, nt)
        return dx
