"""Conv2D and the 2x2 MaxPool2D after it as one kernel call.

The small-channel kernels (src/conv_small.c) and the implicit GEMM (src/conv_implicit.c) can pool their output
2x2 at stride 2 while it is still in cache, so the pool never reads the full-resolution map back, and inference
never writes it. The model's forward plan (`pooling.forward_steps`) pairs the two layers when `can_fuse_pool`
says so.
"""
import numpy as np

from .. import _kernels, activations

_threads = _kernels.omp_max_threads
_POOLED_ACTS = tuple(activations.code(a) for a in ("linear", "relu", "leaky_relu"))  # applied before pooling


class PooledConv:
    """`forward_pooled` of Conv2D (a mixin: Conv2D provides the rest)."""

    def can_fuse_pool(self, pool):
        """Whether this layer and `pool` (the next layer) may run forward as one kernel call."""
        if not (self._act in _POOLED_ACTS and not self.emit_logits and pool.pool_size == (2, 2)
                and pool.strides == (2, 2) and pool.padding == "valid" and pool.input_shape == self.output_shape):
            return False
        oh, ow, _ = self.output_shape
        return self._small or (self._implicit and oh % 2 == 0 and ow % 2 == 0)

    def forward_pooled(self, x, keep, pool):
        """The forward pass of this layer and of the 2x2 MaxPool2D `pool` after it (`can_fuse_pool`) in one
        kernel call. keep: keep what both backward passes need (the pool's argmax, and this layer's output
        unless the pool's backward computes this layer's dz, `takes_relu_gradient`); else (inference) the
        full-resolution map is never written and neither layer can run backward.
        x is the model's checked input or the previous layer's output (the model's forward plan calls this)."""
        n = x.shape[0]
        pooled = pool._buffer("y", (n,) + pool.output_shape)
        if not keep:
            self._pooled_call(x, None, pooled, None)
            self._x = self._z = self._y = self._cols = pool._x = pool._argmax = pool._pooled = None
            return pooled
        y = None if self.takes_relu_gradient(pool) else self._buffer("y", (n,) + self.output_shape)
        argmax = pool._buffer("argmax", pooled.shape, np.int32)
        self._pooled_call(x, y, pooled, argmax)
        self._x, self._z, self._y, self._cols = x, None, None if y is None else y.reshape(-1, self.filters), None
        pool._x, pool._argmax, pool._pooled = y, argmax, pooled
        return pooled

    def _pooled_call(self, x, y, pooled, argmax):
        if self._small:
            self._small_call(x, y, self._act, pooled, argmax)
            return
        # positional arguments: keywords cost a few hundred ns a call at batch 1
        _kernels.conv2d_implicit_forward(x, self.weights[0].reshape(self._k, self.filters),
                                         None if y is None else y.reshape(-1, self.filters), *self._geom,
                                         self.weights[1] if self.use_bias else None, self._act, self._alpha,
                                         pooled, argmax, _threads(), self._winograd)
