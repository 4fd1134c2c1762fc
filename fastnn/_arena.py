"""The flat parameter arenas of a model.

All trainable parameters live in one float32 array and their gradients in another of the same layout, so an
optimizer step is one kernel call and a data-parallel allreduce is one buffer. Non-trainable state (such as
batch normalization's moving statistics) lives in a third array. Every tensor starts on a 64-byte boundary.
"""
import numpy as np

_ALIGN = 16  # floats: 64 bytes


def _aligned(n):
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def _aligned_empty(size):
    raw = np.zeros(size + _ALIGN, np.float32)
    skip = (-raw.ctypes.data % 64) // 4
    return raw[skip:skip + size]


class Arena:
    """Parameter, gradient and state arenas for a list of built layers; attaches views to each layer.

    Existing weights of a layer whose parameter shapes are unchanged are kept (a model that grows by
    `add` after being built keeps what it had); new parameters are drawn from their initializers.
    """

    def __init__(self, layers):
        plans = []
        n_train = n_state = 0
        for layer in layers:
            for spec in layer.param_specs():
                size = int(np.prod(spec.shape))
                if spec.trainable:
                    plans.append((layer, spec, True, n_train, size))
                    n_train += _aligned(size)
                else:
                    plans.append((layer, spec, False, n_state, size))
                    n_state += _aligned(size)
        self.params = _aligned_empty(n_train)
        self.grads = _aligned_empty(n_train)
        self.state = _aligned_empty(n_state)
        self.size = sum(size for *_, trainable, _, size in plans if trainable)
        self.call_work = max((layer.call_work() for layer in layers), default=0)
        # (offset, size) of each trainable tensor in `params`/`grads`, in order: the optimizer updates these
        # (skipping the alignment padding) and clips each one's gradient separately with clipnorm.
        self.segments = [(offset, size) for _, _, trainable, offset, size in plans if trainable]
        by_layer = {}
        for layer, spec, trainable, offset, size in plans:
            store = self.params if trainable else self.state
            view = store[offset:offset + size].reshape(spec.shape)
            grad = self.grads[offset:offset + size].reshape(spec.shape) if trainable else None
            weights, grads, old = by_layer.setdefault(id(layer), ([], [], list(layer.weights)))
            previous = old[len(weights)] if len(old) > len(weights) else None
            if previous is not None and previous.shape == view.shape:
                view[...] = previous
            else:
                view[...] = spec.initializer(spec.shape, spec.fan_in, spec.fan_out)
            weights.append(view)
            if grad is not None:
                grads.append(grad)
        for layer in layers:
            weights, grads, _ = by_layer.get(id(layer), ([], [], None))
            layer.attach(weights, grads)
