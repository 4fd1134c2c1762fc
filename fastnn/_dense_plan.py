"""Training and inference steps of a model that is a plain stack of Dense layers, each run as one C call.

`_kernels.DensePlan` (src/dense_plan.c) binds the layers' weights to buffers planned once per batch size and
runs the forward pass, or a whole SGD step (forward, loss, backward and the fused update of every kernel and
bias), in one call: at batch 1 the Python between the kernels was a quarter of a step. The arithmetic is the
layer-by-layer path's, kernel for kernel, so weights, velocity and loss are bitwise the same (tests compare
both). Threads are chosen as on that path (small steps on one). The C side can instead run a step as one
parallel region in which each thread owns the same columns of every layer (`TEAM_*_WORK`); on the shared
2-CPU machine it measured slower, so it is off, except at batch 1 when the first layer's GEMV is summed in
halves: there the two threads own the first kernel by rows, and the step takes the team or one thread by
which has lately been faster (`_timed_choice`). Models the plan does not cover (other layers, other
optimizers or losses, clipping by norm) get None here and take the usual path.
"""
import math

import numpy as np

from . import _fused_step, _kernels, _threads, _timed_choice, activations, losses, optimizers

# Tests switch this off to compare the two ways bit for bit.
ENABLED = True
# Steps with fewer (samples x parameters) than these run as one parallel region, each layer split by columns
# between the threads (training, inference). 0: never, as measured on the mlp workload (README "Dense stacks").
TEAM_STEP_WORK = 0
TEAM_FORWARD_WORK = 0
_MAX_BATCHES = 8  # plans kept per model (e.g. fit's last, shorter batch)

_LOSS_KINDS = {losses.SparseCategoricalCrossentropy: _kernels.DENSE_XENT_SPARSE,
               losses.CategoricalCrossentropy: _kernels.DENSE_XENT_DENSE,
               losses.BinaryCrossentropy: _kernels.DENSE_BCE_LOGITS, losses.MeanSquaredError: _kernels.DENSE_MSE}


def _plain_dense(layers):
    """Whether the layers are all plain Dense on 1-D samples with a softmax only at the end."""
    from .layers.core import Dense
    return all(type(layer) is Dense and len(layer.input_shape) == 1
               and (layer._act != activations.SOFTMAX or layer is layers[-1]) for layer in layers)


def _dense_layers(model):
    """The model's layers when they are all plain Dense on 1-D samples with a softmax only at the end."""
    layers = model._layers
    if not layers or model._arena is None or not _plain_dense(layers):
        return None
    return layers


def _threads_for(work, team_below, serial=False):
    """(team, n_threads) for a call of `work` (samples x parameters): one region on all threads below
    `team_below`, else each kernel on all threads, or on one when `serial` or when other processes want the
    CPUs (`_threads.contended`)."""
    threads = _kernels.omp_max_threads()
    if threads == 1 or _threads.contended():
        return False, 1
    if work < team_below:
        return True, threads
    return False, 1 if serial else threads


class _Plans:
    """(DensePlan, its output buffer) by batch size; make(batch) builds them."""

    def __init__(self, make):
        self.make, self.by_batch = make, {}

    def get(self, batch):
        plan = self.by_batch.get(batch)
        if plan is None:
            if len(self.by_batch) >= _MAX_BATCHES:
                self.by_batch.clear()
            plan = self.by_batch[batch] = self.make(batch)
        return plan


def _layer_tuple(layer, batch, act, kernel_vel=None, bias_vel=None, training=False, need_dx=False):
    """The DensePlan entry of one Dense layer with fresh buffers for `batch` samples."""
    kernel = layer.weights[0]
    n_in, n_out = kernel.shape
    bias = layer.weights[1] if layer.use_bias else None
    y = np.empty((batch, n_out), np.float32)
    z = None
    if act == activations.SOFTMAX:
        z = y
    elif activations.needs_preactivation(act):
        z = np.empty((batch, n_out), np.float32)
    dz = dx = bias_grad = None
    if training:
        dz = np.empty((batch, n_out), np.float32) if act != 0 else None
        dx = np.empty((batch, n_in), np.float32) if need_dx else None
        bias_grad = layer.grads[1] if layer.use_bias else None
    return (kernel, bias, kernel_vel, bias_vel, bias_grad, act, layer._alpha, z, y, dz, dx)


class ForwardPlan:
    """Inference through the model's Dense stack."""

    def __init__(self, model, layers):
        self.arena, self.size = model._arena, model._arena.size

        def make(batch):
            specs = [_layer_tuple(layer, batch, layer._act) for layer in layers]
            return _kernels.DensePlan(batch, specs), specs[-1][8]

        self.plans = _Plans(make)

    def run(self, x):
        """The model's output for x (validated, (batch, n_in)): a buffer of the plan, valid until the next call."""
        plan, out = self.plans.get(len(x))
        team, threads = _threads_for(len(x) * self.size, TEAM_FORWARD_WORK)
        plan.forward(x, team, threads)
        return out

    def step(self, x, _):
        """run(x) as a step of a model's forward plan (x the output of the layer before the stack)."""
        return self.run(np.ascontiguousarray(x))


def with_dense_tail(model, steps):
    """Inference `steps` (pooling.forward_steps of the model's layers) with the Dense layers that end the model,
    when two or more on 1-D samples, as one ForwardPlan call: at batch 1 the Python of each layer call is
    most of its time."""
    from .layers.core import Dense
    tail = []
    for f, _ in reversed(steps):
        layer = getattr(f, "__self__", None)
        if type(layer) is not Dense or f.__func__ is not Dense.forward:
            break
        tail.insert(0, layer)
    if not ENABLED or len(tail) < 2 or not _plain_dense(tail):
        return steps
    return steps[:len(steps) - len(tail)] + [(ForwardPlan(model, tail).step, None)]


class NoPlan:
    """forward_plan_for's answer for a model that is not a Dense stack, kept as long as its arena (asking
    again costs more than a microsecond a batch)."""

    def __init__(self, arena):
        self.arena = arena


def forward_plan_for(model, cached):
    """The ForwardPlan for the model (`cached` when it still fits), NoPlan when the model is not a Dense
    stack, None when plans are off."""
    if not ENABLED:
        return None
    if cached is not None and cached.arena is model._arena:
        return cached  # a change of layers drops the plan (TrainingMixin._on_structure_change)
    layers = _dense_layers(model)
    return NoPlan(model._arena) if layers is None else ForwardPlan(model, layers)


class TrainPlan:
    """SGD training steps of the model's Dense stack with its loss."""

    def __init__(self, model, layers, loss_kind):
        opt, arena = model.optimizer, model._arena
        velocity = opt._arrays(arena.params.shape[0]).get("velocity")
        if opt.momentum == 0.0:
            velocity = None  # a momentum set to 0 between steps leaves the old velocity in the state, unused
        self.key = (_fused_step._key(model), model.loss, model._logits)
        self.loss_kind, self.size = loss_kind, arena.size
        base = arena.params.__array_interface__["data"][0]

        def state(param):
            if velocity is None or param is None:
                return None
            offset = (param.__array_interface__["data"][0] - base) // 4
            return velocity[offset:offset + param.size].reshape(param.shape)

        logits_last = model._fused_layer is layers[-1]

        def make(batch):
            specs = []
            for layer in layers:
                act = 0 if (logits_last and layer is layers[-1]) else layer._act
                bias = layer.weights[1] if layer.use_bias else None
                specs.append(_layer_tuple(layer, batch, act, state(layer.weights[0]), state(bias), True,
                                          layer is not layers[0]))
            grad = np.empty((batch, layers[-1].units), np.float32)
            return _kernels.DensePlan(batch, specs, grad), specs[-1][8]

        self.plans = _Plans(make)
        # at batch 1 the C step can run the first layer's GEMV in halves on two threads, each updating the rows
        # it read (src/dense_plan.c): no line of that kernel or its velocity moves between the cores
        self.halves_first = _kernels.gemv_in_halves(1, layers[0].weights[0].shape[0])
        self.by_rows = _timed_choice.TimedChoice()

    def run(self, model, x, t, w, metrics, serial):
        """One training step on validated x, targets t and weights w (or None); returns the loss. `serial`: a
        step too small for more than one thread unless in one region."""
        opt = model.optimizer
        plan, out = self.plans.get(len(x))
        team, threads = _threads_for(len(x) * self.size, TEAM_STEP_WORK, serial)
        sparse = self.loss_kind == _kernels.DENSE_XENT_SPARSE
        args = (x, self.loss_kind, t if sparse else None, None if sparse else t, w, opt.learning_rate, opt.momentum,
                opt.nesterov, opt.weight_decay or 0.0, opt.clipvalue or 0.0)
        n = _kernels.omp_max_threads()
        if not team and self.halves_first and len(x) == 1 and serial and n > 1 and not _threads.contended():
            # one thread, or a team sharing the first kernel by rows: whichever has lately been faster
            way = self.by_rows.next_way()
            start = _timed_choice.clock()
            loss = plan.sgd_step(*args, way == 1, n if way else 1)
            self.by_rows.took(way, _timed_choice.clock() - start)
        else:
            loss = plan.sgd_step(*args, team, threads)
        if not math.isfinite(loss):
            from .training import NonFiniteLossError
            raise NonFiniteLossError(loss)
        for m in metrics:
            m.update(out, t, model._logits, w)
        opt.iterations += 1
        return loss


def train_plan_for(model, cached):
    """The TrainPlan for the model's layers, optimizer and loss (`cached` when it still fits), or None when
    the step is not one the plan runs."""
    opt, loss = model.optimizer, model.loss
    if not ENABLED or type(opt) is not optimizers.SGD or opt.clipnorm is not None \
            or opt.global_clipnorm is not None:
        return None
    if cached is not None and cached.key[1] is loss and cached.key[2] == model._logits \
            and _fused_step._same(cached.key[0], model):
        return cached  # (the same loss object: the same kind) a change of layers drops the plan
    kind = _LOSS_KINDS.get(type(loss))
    if kind is None or (kind != _kernels.DENSE_MSE and not model._logits):
        return None
    layers = _dense_layers(model)
    if layers is None or not all(layer.trainable for layer in layers):
        return None
    if layers[-1]._act == activations.SOFTMAX and model._fused_layer is not layers[-1]:
        return None
    return TrainPlan(model, layers, kind)
