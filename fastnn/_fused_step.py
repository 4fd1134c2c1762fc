"""Training steps that feed Dense weight gradients straight into the SGD update.

With plain SGD and no clipping by norm, the update of a weight matrix needs only that matrix's own gradient.
So during the step's backward pass each Dense layer hands ``x.T @ dz`` to `_kernels.GemmSgd`, which computes
it tile by tile and updates the weights and velocity while the tile is in L1: the gradient is never written
to the gradient arena and read back (at batch 1 that round trip was a third of the step). The result is
bitwise that of storing the gradient and updating afterwards; the other tensors (biases, other layers) take
the usual arena update after the backward pass. Their entries in the gradient arena are left unwritten.
"""
from . import _kernels, optimizers

# Tests switch this off to compare the two ways bit for bit.
ENABLED = True


class _KernelSink:
    """Called by one Dense layer's backward with (x, dz, n_threads): one fused SGD step of its kernel."""

    __slots__ = ("update", "args")

    def __init__(self, update, args):
        self.update, self.args = update, args

    def __call__(self, x, dz, n_threads):
        lr, momentum, nesterov, weight_decay, clipvalue = self.args
        self.update.step(x, dz, lr, momentum, nesterov, weight_decay, clipvalue, n_threads)


class FusedStep:
    """The fused layers of one model and optimizer, and the arena segments left to the usual update."""

    def __init__(self, model, fused):
        arena, opt = model._arena, model.optimizer
        velocity = opt._arrays(arena.params.shape[0]).get("velocity") if opt.momentum > 0.0 else None
        self.key = _key(model)
        self.args = [0.0, 0.0, False, 0.0, 0.0]
        self.sinks = []
        offsets = {}
        for layer in fused:
            kernel = layer.weights[0]
            offset = (kernel.__array_interface__["data"][0] - arena.params.__array_interface__["data"][0]) // 4
            offsets[offset] = kernel.size
            vel = None if velocity is None else velocity[offset:offset + kernel.size].reshape(kernel.shape)
            self.sinks.append((layer, _KernelSink(_kernels.GemmSgd(kernel, vel), self.args)))
        self.rest = [(o, s) for o, s in arena.segments if offsets.get(o) != s]

    def run(self, model, x, t, w, metrics):
        """One training step (forward, loss, backward with the fused updates, the rest of the update)."""
        opt, arena = model.optimizer, model._arena
        self.args[:] = (opt.learning_rate, opt.momentum, opt.nesterov, opt.weight_decay or 0.0,
                        opt.clipvalue or 0.0)
        for layer, sink in self.sinks:
            layer._kernel_gradient_sink = sink
        try:
            loss = model._compute_gradients(x, t, w, metrics)
        finally:
            for layer, _ in self.sinks:
                layer._kernel_gradient_sink = None
        opt.apply(arena.params, arena.grads, self.rest)
        return loss


def _key(model):
    """What a FusedStep depends on: the objects (compared by identity) and the trainable flags."""
    opt = model.optimizer
    return ((opt, model._arena, opt._state.get("velocity")),
            [opt.momentum > 0.0] + [layer.trainable for layer in model._layers])


def _same(key, model):
    (opt, arena, velocity), flags = key
    if opt is not model.optimizer or arena is not model._arena or velocity is not opt._state.get("velocity") \
            or flags[0] != (opt.momentum > 0.0):
        return False
    return flags[1:] == [layer.trainable for layer in model._layers]


def plan_for(model, cached):
    """The FusedStep for the model's current layers and optimizer (`cached` when it still fits), or None when
    nothing can be fused."""
    opt = model.optimizer
    if not ENABLED or type(opt) is not optimizers.SGD or opt.clipnorm is not None \
            or opt.global_clipnorm is not None:
        return None
    if cached is not None and _same(cached.key, model):
        return cached
    from .layers.core import Dense
    fused = [layer for layer in model._layers if type(layer) is Dense and layer.trainable and layer.weights
             and layer.weights[0].flags.c_contiguous]
    return FusedStep(model, fused) if fused else None
