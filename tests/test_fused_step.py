"""SGD steps that feed Dense weight gradients straight into the update (fastnn/_fused_step.py and
fnn_gemm_sgd_f32): bitwise the same as storing the gradient and updating from the arena."""
import numpy as np
import pytest

import fastnn
from fastnn import _fused_step, _kernels
from fastnn import layers as L
from kernel_helpers import isa, ISA_IDS, ISAS, threads

SHAPES = [(1, 784, 256), (1, 128, 10), (3, 1, 1), (7, 13, 5), (32, 100, 70), (513, 33, 17), (2, 650, 700),
          (40, 700, 650), (1, 1, 300)]


def _unfused(x, dz, p, v, lr, momentum, nesterov, weight_decay, clipvalue, n_threads):
    g = np.empty(p.shape, np.float32)
    _kernels.gemm(x, dz, g, trans_a=True, n_threads=n_threads)
    flat_p, flat_v = p.reshape(-1), None if v is None else v.reshape(-1)
    update = _kernels.ArenaUpdate(np.array([0], np.int64), np.array([p.size], np.int64), np.ones(1, np.float32),
                                  np.zeros(1), g.reshape(-1), flat_p, () if v is None else (flat_v,))
    update.sgd(False, lr, momentum, nesterov, weight_decay, clipvalue, n_threads)


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@pytest.mark.parametrize("k, m, n", SHAPES)
@pytest.mark.parametrize("momentum, nesterov, weight_decay, clipvalue",
                         [(0.9, False, 0.0, 0.0), (0.9, True, 0.01, 0.05), (0.0, False, 0.0, 0.0)])
def test_gemm_sgd_is_bitwise_gemm_then_sgd(isa_index, k, m, n, momentum, nesterov, weight_decay, clipvalue):
    rng = np.random.default_rng(k * 7919 + m * 31 + n)
    x = rng.standard_normal((k, m), dtype=np.float32)
    dz = rng.standard_normal((k, n), dtype=np.float32)
    p0 = rng.standard_normal((m, n), dtype=np.float32)
    v0 = rng.standard_normal((m, n), dtype=np.float32) if momentum else None
    with isa(isa_index):
        for nt in (1, 2):
            p1, v1 = p0.copy(), None if v0 is None else v0.copy()
            _unfused(x, dz, p1, v1, 0.01, momentum, nesterov, weight_decay, clipvalue, nt)
            p2, v2 = p0.copy(), None if v0 is None else v0.copy()
            _kernels.GemmSgd(p2, v2).step(x, dz, 0.01, momentum, nesterov, weight_decay, clipvalue, nt)
            np.testing.assert_array_equal(p1.view(np.uint32), p2.view(np.uint32))
            if v0 is not None:
                np.testing.assert_array_equal(v1.view(np.uint32), v2.view(np.uint32))


def test_gemm_sgd_rejects_mismatched_shapes():
    p = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="velocity has shape"):
        _kernels.GemmSgd(p, np.zeros((3, 4), np.float32))
    update = _kernels.GemmSgd(p, None)
    with pytest.raises(ValueError, match="does not give the params' shape"):
        update.step(np.zeros((2, 4), np.float32), np.zeros((2, 4), np.float32), 0.1, 0.0, False, 0.0, 0.0, 1)
    with pytest.raises(ValueError, match="does not give the params' shape"):
        update.step(np.zeros((0, 4), np.float32), np.zeros((0, 3), np.float32), 0.1, 0.0, False, 0.0, 0.0, 1)
    with pytest.raises(ValueError, match="invalid argument"):  # momentum without a velocity
        update.step(np.zeros((1, 4), np.float32), np.zeros((1, 3), np.float32), 0.1, 0.9, False, 0.0, 0.0, 1)


def _run(fused, optimizer, batch, n_threads, frozen=False, steps=4):
    before = _fused_step.ENABLED
    _fused_step.ENABLED = fused
    try:
        with threads(n_threads):
            fastnn.set_seed(5)
            model = fastnn.Sequential([L.Input((20,)), L.Dense(33, activation="relu"), L.Dropout(0.2),
                                       L.Dense(16, activation="tanh", trainable=not frozen),
                                       L.Dense(4, activation="softmax")])
            model.compile(optimizer=optimizer(), loss="sparse_categorical_crossentropy")
            rng = np.random.default_rng(batch)
            for _ in range(steps):
                x = rng.standard_normal((batch, 20), dtype=np.float32)
                model.train_on_batch(x, rng.integers(0, 4, batch))
            return model, model.get_weights() + list(model.optimizer.variables().values())
    finally:
        _fused_step.ENABLED = before


OPTIMIZERS = {
    "momentum": lambda: fastnn.optimizers.SGD(0.05, momentum=0.9),
    "nesterov_decay_clip": lambda: fastnn.optimizers.SGD(0.05, momentum=0.8, nesterov=True, weight_decay=0.01,
                                                         clipvalue=0.02),
    "plain": lambda: fastnn.optimizers.SGD(0.1),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("batch", [1, 5, 32])
@pytest.mark.parametrize("frozen", [False, True])
def test_fused_training_is_bitwise_the_unfused_training(name, batch, frozen):
    model, fused = _run(True, OPTIMIZERS[name], batch, 2, frozen)
    assert model._fused_step is not None and len(model._fused_step.sinks) == 3 - frozen
    _, plain = _run(False, OPTIMIZERS[name], batch, 2, frozen)
    _, one_thread = _run(True, OPTIMIZERS[name], batch, 1, frozen)
    for a, b, c in zip(fused, plain, one_thread):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("optimizer", [lambda: fastnn.optimizers.SGD(0.05, momentum=0.9, clipnorm=1.0),
                                       lambda: fastnn.optimizers.SGD(0.05, global_clipnorm=1.0),
                                       lambda: fastnn.optimizers.Adam(1e-3)])
def test_no_fusion_when_the_update_needs_the_whole_gradient(optimizer):
    model, _ = _run(True, optimizer, 4, 1, steps=1)
    assert model._fused_step is None


def test_layers_leave_the_fused_step_unfused():
    """Outside a training step (a gradient computed for inspection), backward writes the gradient arena."""
    model, _ = _run(True, OPTIMIZERS["momentum"], 3, 1)
    params = model._arena.params.copy()
    model._arena.grads[:] = 0.0
    x = np.ones((2, 20), np.float32)
    model._compute_gradients(x, model._prepare_targets(np.array([0, 1]), 2), None, [])
    np.testing.assert_array_equal(model._arena.params, params)
    assert np.count_nonzero(model[0].grads[0]) > 0


def test_restored_optimizer_state_is_used_by_the_fused_step():
    model, _ = _run(True, OPTIMIZERS["momentum"], 3, 1, steps=2)
    state = model.optimizer.variables()
    twin, _ = _run(True, OPTIMIZERS["momentum"], 3, 1, steps=2)
    twin.optimizer.set_variables({k: v * 0.5 for k, v in state.items()})
    model.optimizer.set_variables({k: v * 0.5 for k, v in state.items()})
    x, y = np.ones((3, 20), np.float32), np.array([0, 1, 2])
    fastnn.set_seed(9)  # the same dropout masks for both
    model.train_on_batch(x, y)
    _fused_step.ENABLED = False
    try:
        fastnn.set_seed(9)
        twin.train_on_batch(x, y)
    finally:
        _fused_step.ENABLED = True
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@pytest.mark.parametrize("k", [1, 2])
def test_gemm_sgd_keeps_signed_zeros_and_underflow_bitwise(isa_index, k):
    """Zero and underflowing products (flushed to signed zeros) come out as the stored GEMM's do."""
    rng = np.random.default_rng(k)
    x = rng.choice(np.array([0.0, -0.0, 1e-30, -1e-30, 1.0, -2.5], np.float32), (k, 37))
    dz = rng.choice(np.array([0.0, -0.0, 1e-20, -1e-20, 3.0], np.float32), (k, 19))
    p0 = rng.choice(np.array([0.0, -0.0, 1.0], np.float32), (37, 19))
    v0 = rng.choice(np.array([0.0, -0.0, 1e-38, -0.5], np.float32), (37, 19))
    with isa(isa_index):
        p1, v1 = p0.copy(), v0.copy()
        _unfused(x, dz, p1, v1, 0.01, 0.9, False, 0.0, 0.0, 1)
        p2, v2 = p0.copy(), v0.copy()
        _kernels.GemmSgd(p2, v2).step(x, dz, 0.01, 0.9, False, 0.0, 0.0, 1)
    np.testing.assert_array_equal(p1.view(np.uint32), p2.view(np.uint32))
    np.testing.assert_array_equal(v1.view(np.uint32), v2.view(np.uint32))


def _c_rule(p, v, g, lr, momentum, nesterov, weight_decay):
    """fnn_sgd_decay_clip_f32's arithmetic (scale 1, no clipping), op for op in float32."""
    f = np.float32
    with np.errstate(invalid="ignore"):
        w = p - p * f(weight_decay) * f(lr)
    if not momentum:
        return w - g * f(lr), v
    vi = v * f(momentum) - g * f(lr)
    return (w + (vi * f(momentum) - g * f(lr)) if nesterov else w + vi), vi


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@pytest.mark.parametrize("momentum, nesterov, weight_decay", [(0.9, False, 0.0), (0.8, True, 0.0), (0.0, False, 0.0),
                                                              (0.9, False, 0.01)])
def test_sgd_rule_is_exact_on_special_values(isa_index, momentum, nesterov, weight_decay):
    """Without decay or clipping the kernels leave that arithmetic out; the bits (signed zeros, infinities, NaN
    positions) stay those of the full rule, through the arena update and the batch-1 fused update."""
    special = np.array([0.0, -0.0, 1.5, -2.0, np.inf, -np.inf, np.nan, 3e-3], np.float32)
    rng = np.random.default_rng(4)
    p0 = rng.choice(special, (9, 33))
    v0 = rng.choice(np.array([0.0, -0.0, 0.5, -0.25], np.float32), (9, 33)) if momentum else None
    a = rng.choice(np.array([0.0, -0.0, 1.0, -3.0], np.float32), (1, 9))
    b = rng.choice(np.array([0.0, -0.0, 2.0, -0.5], np.float32), (1, 33))
    g = a.T * b + np.float32(0.0)  # one rounding, as the fused multiply-add onto zero
    want_p, want_v = _c_rule(p0, None if v0 is None else v0.copy(), g, 0.01, momentum, nesterov, weight_decay)

    def same(got, want):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        ok = ~np.isnan(want)
        np.testing.assert_array_equal(got[ok].view(np.uint32), want[ok].view(np.uint32))

    with isa(isa_index):
        p1, v1 = p0.copy(), None if v0 is None else v0.copy()
        _kernels.GemmSgd(p1, v1).step(a, b, 0.01, momentum, nesterov, weight_decay, 0.0, 1)
        p2, v2 = p0.copy(), None if v0 is None else v0.copy()
        update = _kernels.ArenaUpdate(np.array([0], np.int64), np.array([p2.size], np.int64),
                                      np.ones(1, np.float32), np.zeros(1), g.reshape(-1), p2.reshape(-1),
                                      () if v2 is None else (v2.reshape(-1),))
        update.sgd(False, 0.01, momentum, nesterov, weight_decay, 0.0, 1)
    for got_p, got_v in ((p1, v1), (p2, v2)):
        same(got_p, want_p)
        if momentum:
            same(got_v, want_v)
