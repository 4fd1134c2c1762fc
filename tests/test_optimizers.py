"""Optimizers: every rule against a float32 NumPy transcription of Keras 3 over many steps (with weight decay and
each kind of clipping), against PyTorch where the rules agree, thread/ISA determinism, models, state, config."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fastnn
from fastnn import _kernels, optimizers as O
from fastnn import layers as L

F = np.float32
SHAPES = [(3, 3, 2, 5), (5,), (17, 7), (1,), (33,)]  # odd sizes: the arena has alignment padding between them
OPTIMIZERS = {
    "sgd": lambda **kw: O.SGD(0.05, **kw),
    "sgd_momentum": lambda **kw: O.SGD(0.05, momentum=0.9, **kw),
    "sgd_nesterov": lambda **kw: O.SGD(0.05, momentum=0.8, nesterov=True, **kw),
    "adam": lambda **kw: O.Adam(0.01, **kw),
    "adamw": lambda **kw: O.AdamW(0.01, **{"weight_decay": 0.05, **kw}),
    "rmsprop": lambda **kw: O.RMSprop(0.01, **kw),
    "rmsprop_centered_momentum": lambda **kw: O.RMSprop(0.01, rho=0.8, momentum=0.5, centered=True, **kw),
    "adagrad": lambda **kw: O.Adagrad(0.05, **kw),
}
EXTRAS = {"plain": {}, "weight_decay": {"weight_decay": 0.1}, "clipvalue": {"clipvalue": 0.5},
          "clipnorm": {"clipnorm": 1.0}, "global_clipnorm": {"global_clipnorm": 2.0}}


# ---- the reference: Keras 3's update rules, op for op in float32, one tensor at a time ---------------------
def keras_clip(gs, opt):
    if opt.clipnorm is not None:
        c = opt.clipnorm
        return [(g * F(c)) / F(max(math.sqrt((g.astype(np.float64) ** 2).sum()), c)) for g in gs]
    if opt.global_clipnorm is not None:
        c = opt.global_clipnorm
        norm = math.sqrt(sum((g.astype(np.float64) ** 2).sum() for g in gs))
        return [g * F(c * min(1.0 / norm, 1.0 / c)) for g in gs]
    if opt.clipvalue is not None:
        return [np.clip(g, F(-opt.clipvalue), F(opt.clipvalue)) for g in gs]
    return gs


def keras_step(opt, ws, gs, state, lr, t):
    """One step on the lists of tensors `ws` (in place) with gradients `gs`; `state` maps name -> tensors."""
    gs = keras_clip(gs, opt)
    lr = F(lr)
    for i, (w, g) in enumerate(zip(ws, gs)):
        if opt.weight_decay is not None:
            w -= w * F(opt.weight_decay) * lr
        s = {name: arrays[i] for name, arrays in state.items()}
        if isinstance(opt, O.SGD):
            if opt.momentum > 0:
                s["velocity"][...] = s["velocity"] * F(opt.momentum) - g * lr
                w += s["velocity"] * F(opt.momentum) - g * lr if opt.nesterov else s["velocity"]
            else:
                w -= g * lr
        elif isinstance(opt, O.Adam):
            # beta**t correctly rounded to float32, as C's powf gives it (NumPy's float32 power is less exact)
            b1p, b2p = F(float(F(opt.beta_1)) ** t), F(float(F(opt.beta_2)) ** t)
            alpha = lr * np.sqrt(F(1) - b2p) / (F(1) - b1p)
            s["momentum"] += (g - s["momentum"]) * F(1 - opt.beta_1)
            s["velocity"] += (g * g - s["velocity"]) * F(1 - opt.beta_2)
            w -= (s["momentum"] * alpha) / (np.sqrt(s["velocity"]) + F(opt.epsilon))
        elif isinstance(opt, O.RMSprop):
            rho = F(opt.rho)
            s["velocity"][...] = rho * s["velocity"] + F(1 - opt.rho) * (g * g)
            denominator = s["velocity"] + F(opt.epsilon)
            if opt.centered:
                s["average_gradient"][...] = rho * s["average_gradient"] + F(1 - opt.rho) * g
                denominator = s["velocity"] - s["average_gradient"] * s["average_gradient"] + F(opt.epsilon)
            increment = (lr * g) / np.sqrt(denominator)
            if opt.momentum > 0:
                s["momentum"][...] = F(opt.momentum) * s["momentum"] + increment
                increment = s["momentum"]
            w -= increment
        else:
            s["accumulator"] += g * g
            w -= (lr * g) / np.sqrt(s["accumulator"] + F(opt.epsilon))


def make_arena(shapes, rng):
    """params/grads arenas with 16-float aligned tensors and sentinel padding, and their segments."""
    segments, n = [], 0
    for shape in shapes:
        segments.append((n, int(np.prod(shape))))
        n += -(-segments[-1][1] // 16) * 16
    params, grads = np.full(n, 7.0, F), np.full(n, 3.0, F)
    for offset, size in segments:
        params[offset:offset + size] = rng.standard_normal(size)
    return params, grads, segments


def run_both(opt, steps=60, seed=0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    params, grads, segments = make_arena(shapes, rng)
    ws = [params[o:o + s].copy() for o, s in segments]
    state = {name: [np.full(s, opt._state_initial(name), F) for _, s in segments] for name in opt._state_names()}
    for t in range(1, steps + 1):
        gs = [(rng.standard_normal(s) * rng.choice([0.1, 1.0, 4.0])).astype(F) for _, s in segments]
        for (o, s), g in zip(segments, gs):
            grads[o:o + s] = g
        lr = opt.learning_rate
        opt.apply(params, grads, segments)
        keras_step(opt, ws, gs, state, lr, t)
    return params, ws, segments, state


@pytest.mark.parametrize("extra", EXTRAS)
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_update_matches_keras_rule_over_many_steps(name, extra):
    opt = OPTIMIZERS[name](**EXTRAS[extra])
    params, ws, segments, state = run_both(opt)
    assert opt.iterations == 60
    # Clipping by norm rounds the scale once more than Keras (g * (c / norm) against g * c / norm).
    exact = extra not in ("clipnorm", "global_clipnorm")
    compare = np.testing.assert_array_equal if exact else lambda a, b: np.testing.assert_allclose(a, b, 2e-5, 1e-6)
    padding = np.ones(len(params), bool)
    for k, (o, s) in enumerate(segments):
        compare(params[o:o + s], ws[k])
        for name_, arrays in state.items():
            compare(opt.variables()[name_][o:o + s], arrays[k])
        padding[o:o + s] = False
    assert (params[padding] == 7.0).all(), "padding between tensors must not be touched"


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 300), min_size=1, max_size=6), name=st.sampled_from(sorted(OPTIMIZERS)),
       extra=st.sampled_from(["plain", "weight_decay", "clipvalue"]), seed=st.integers(0, 2**16))
def test_any_tensor_layout_matches_keras_rule_exactly(sizes, name, extra, seed):
    opt = OPTIMIZERS[name](**EXTRAS[extra])
    params, ws, segments, _ = run_both(opt, steps=5, seed=seed, shapes=[(s,) for s in sizes])
    for k, (o, s) in enumerate(segments):
        np.testing.assert_array_equal(params[o:o + s], ws[k])


def test_non_finite_gradients_with_norm_clipping_follow_keras():
    g = np.r_[np.full(4, np.inf, F), np.ones(4, F)]
    p = np.zeros(8, F)
    O.SGD(1.0, global_clipnorm=1.0).apply(p, g, [(0, 4), (4, 4)])
    assert np.isnan(p).all()  # an infinite global norm makes every gradient NaN
    p = np.zeros(8, F)
    O.SGD(1.0, clipnorm=1.0).apply(p, np.r_[np.full(4, np.nan, F), np.ones(4, F)], [(0, 4), (4, 4)])
    assert np.isnan(p[:4]).all() and np.allclose(p[4:], -0.5)  # per tensor: only the NaN tensor


def test_clipping_really_clips():
    g = np.full(100, 3.0, F)  # two tensors of norm 3 sqrt(50), global norm 30
    for opt, expected in [(O.SGD(1.0, clipnorm=3.0), 3 / math.sqrt(50)), (O.SGD(1.0, global_clipnorm=15.0), 1.5),
                          (O.SGD(1.0, clipvalue=0.25), 0.25), (O.SGD(1.0), 3.0)]:
        p = np.zeros(100, F)
        opt.apply(p, g, [(0, 50), (50, 50)])
        np.testing.assert_allclose(p, -expected, rtol=1e-6)
    p = np.zeros(100, F)
    O.SGD(1.0, clipnorm=3.0).apply(p, np.r_[np.full(50, 3.0, F), np.full(50, 0.1, F)], [(0, 50), (50, 50)])
    np.testing.assert_allclose(p, np.r_[np.full(50, -3 / math.sqrt(50)), np.full(50, -0.1)], rtol=1e-6)


def test_weight_decay_is_decoupled_and_applied_before_the_update():
    p = np.full(8, 2.0, F)
    O.SGD(0.1, weight_decay=0.5).apply(p, np.ones(8, F))
    np.testing.assert_allclose(p, 2.0 - 2.0 * 0.5 * 0.1 - 0.1)


def test_sq_norms_match_numpy_for_odd_segments():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(210_003).astype(F)
    sizes = np.array([0, 1, 7, 4095, 4096, 4097, 100_000, 91_000], np.int64)
    offsets = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64) + 3
    out = np.empty(len(sizes))
    _kernels.sq_norms(offsets, sizes, x, out, 2)
    expected = [(x[o:o + s].astype(np.float64) ** 2).sum() for o, s in zip(offsets, sizes)]
    np.testing.assert_allclose(out, expected, rtol=1e-13)
    with pytest.raises(ValueError, match="sq_norms"):
        _kernels.sq_norms(np.array([210_000], np.int64), np.array([10], np.int64), x, np.empty(1), 1)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_same_bits_for_any_thread_count_and_instruction_set(name):
    shapes = [(3, 3, 32, 64), (64,), (4096, 65), (65,), (7,)]  # ~285k parameters: the parallel paths run
    results = []
    saved_isa, saved_threads = _kernels.isa_current(), fastnn.get_num_threads()
    try:
        for isa in [i for i in range(3) if _kernels.isa_supported(i)]:
            for threads in (1, 2):
                _kernels.isa_select(isa)
                fastnn.set_num_threads(threads)
                rng = np.random.default_rng(5)
                params, grads, segments = make_arena(shapes, rng)
                opt = OPTIMIZERS[name](clipnorm=1.0)
                for _ in range(3):
                    grads[:] = rng.standard_normal(len(grads))
                    opt.apply(params, grads, segments)
                results.append((params, opt.variables()))
    finally:
        _kernels.isa_select(saved_isa)
        fastnn.set_num_threads(saved_threads)
    for params, state in results[1:]:
        assert np.array_equal(params, results[0][0])
        assert all(np.array_equal(state[k], results[0][1][k]) for k in state)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop", "adagrad", O.SGD(0.1, momentum=0.9),
                                       O.Adam(0.01, clipnorm=1.0), O.AdamW(0.01, global_clipnorm=1.0),
                                       O.RMSprop(0.005, centered=True, momentum=0.5), O.Adagrad(0.1, clipvalue=1.0)])
def test_a_model_trains_with_each_optimizer(optimizer):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 6)).astype(F)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    fastnn.set_seed(0)
    model = fastnn.Sequential([L.Input((6,)), L.Dense(8, activation="tanh"), L.Dense(2, activation="softmax")])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    first = model.train_on_batch(x, y)
    for _ in range(40):
        last = model.train_on_batch(x, y)
    assert last < first * (0.99 if isinstance(optimizer, str) else 0.7)  # Keras defaults learn slowly here
    assert model.optimizer.iterations == 41


@pytest.mark.parametrize("make, error, match", [
    (lambda: O.Adam(learning_rate=0), ValueError, "learning_rate"),
    (lambda: O.RMSprop(learning_rate=float("nan")), ValueError, "learning_rate"),
    (lambda: O.Adam(beta_1=-0.1), ValueError, "beta_1"),
    (lambda: O.Adam(beta_2=float("nan")), ValueError, "beta_2"),
    (lambda: O.AdamW(beta_1=1.0), ValueError, r"beta_1 must be in \[0, 1\)"),
    (lambda: O.Adam(epsilon=-1e-7), ValueError, "epsilon"),
    (lambda: O.Adagrad(epsilon=float("nan")), ValueError, "epsilon"),
    (lambda: O.RMSprop(rho=1.5), ValueError, "rho"),
    (lambda: O.RMSprop(momentum=-0.5), ValueError, "momentum"),
    (lambda: O.Adagrad(initial_accumulator_value=-1), ValueError, "initial_accumulator_value"),
    (lambda: O.SGD(weight_decay=-0.1), ValueError, "weight_decay"),
    (lambda: O.AdamW(weight_decay=float("nan")), ValueError, "weight_decay"),
    (lambda: O.AdamW(weight_decay=None), ValueError, "weight_decay"),
    (lambda: O.SGD(clipnorm=0), ValueError, "clipnorm must be > 0"),
    (lambda: O.Adam(clipvalue=-1.0), ValueError, "clipvalue must be > 0"),
    (lambda: O.Adam(global_clipnorm=float("inf")), ValueError, "global_clipnorm"),
    (lambda: O.Adam(clipnorm=1.0, global_clipnorm=1.0), ValueError, "only one of clipnorm, clipvalue and global"),
    (lambda: O.SGD(clipnorm=1.0, clipvalue=1.0), ValueError, "clipnorm=1.0, clipvalue=1.0"),
    (lambda: O.Adam(beta_1="0.9"), TypeError, "beta_1 must be a number"),
    (lambda: O.get("adamax"), ValueError, "valid names: adagrad, adam, adamw, rmsprop, sgd"),
])
def test_bad_hyperparameters_are_clear_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_bad_segments_and_state_are_clear_errors():
    with pytest.raises(ValueError, match="segments must be sorted, disjoint"):
        O.Adam().apply(np.zeros(10, F), np.zeros(10, F), [(0, 6), (4, 6)])
    with pytest.raises(ValueError, match="grads has 9 elements, the parameters 10"):
        O.Adam().apply(np.zeros(10, F), np.zeros(9, F))
    opt = O.Adam()
    with pytest.raises(ValueError, match=r"has state \['momentum', 'velocity'\], got \['velocity'\]"):
        opt.set_variables({"velocity": np.zeros(10)})
    with pytest.raises(ValueError, match="equal lengths"):
        opt.set_variables({"velocity": np.zeros(10), "momentum": np.zeros(11)})
    opt.set_variables({"velocity": np.zeros(10), "momentum": np.zeros(10)})
    with pytest.raises(ValueError, match="restored state has 10 elements per array, but the parameters have 12"):
        opt.apply(np.zeros(12, F), np.zeros(12, F))


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_restored_state_continues_the_run_bit_for_bit(name):
    rng = np.random.default_rng(3)
    params, grads, segments = make_arena(SHAPES, rng)
    steps = [rng.standard_normal(len(grads)).astype(F) for _ in range(6)]
    whole, first = OPTIMIZERS[name](), OPTIMIZERS[name]()
    p_whole, p_split = params.copy(), params.copy()
    for g in steps:
        whole.apply(p_whole, g, segments)
    for g in steps[:3]:
        first.apply(p_split, g, segments)
    second = O.deserialize(O.serialize(first))
    second.set_variables({k: v.copy() for k, v in first.variables().items()})
    second.iterations = first.iterations
    for g in steps[3:]:
        second.apply(p_split, g, segments)
    assert np.array_equal(p_whole, p_split)


def _momentum_model(opt, head):
    fastnn.set_seed(4)
    model = fastnn.Sequential([L.Input((6,)), L.Dense(5, activation="tanh")] + head + [L.Dense(3, activation="softmax")])
    model.compile(opt, "sparse_categorical_crossentropy")
    return model


# Each way a step can run: the one-call Dense plan, the fused Dense kernel update (a non-Dense layer in the
# stack), the arena update (clipping by norm) and RMSprop's momentum buffer.
_MOMENTUM_CASES = {"dense plan": ([], {}), "fused step": ([L.Activation("relu")], {}),
                   "arena update": ([], {"clipnorm": 0.5})}


@pytest.mark.parametrize("kind", ["SGD", "RMSprop"])
@pytest.mark.parametrize("case", _MOMENTUM_CASES)
def test_momentum_changed_between_steps_takes_effect(kind, case):
    """Setting momentum to 0 after steps with it, or from 0 to a value, changes the rule at the next step (a
    velocity starting from zero), as a model compiled with that momentum would step from the same weights."""
    x = np.random.default_rng(5).standard_normal((8, 6)).astype(np.float32)
    y = np.arange(8) % 3
    make = getattr(O, kind)
    for before, after in ((0.9, 0.0), (0.0, 0.9)):
        head, kw = _MOMENTUM_CASES[case]
        changed = _momentum_model(make(0.05, momentum=before, **kw), [type(l)(**l.get_config()) for l in head])
        for _ in range(3):
            changed.train_on_batch(x, y)
        changed.optimizer.momentum = after
        fresh = _momentum_model(make(0.05, momentum=after, **kw), [type(l)(**l.get_config()) for l in head])
        fresh.set_weights(changed.get_weights())
        if kind == "RMSprop":  # its squared-gradient average carries over; only the momentum buffer restarts
            state = {k: v.copy() for k, v in changed.optimizer.variables().items()}
            state["momentum"] = np.zeros_like(state["velocity"])
            fresh.optimizer.set_variables({k: v for k, v in state.items() if after > 0.0 or k != "momentum"})
        changed.train_on_batch(x, y)
        fresh.train_on_batch(x, y)
        for a, b in zip(changed.get_weights(), fresh.get_weights()):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_serialize_round_trip(name):
    opt = OPTIMIZERS[name](clipnorm=0.5)
    config = O.serialize(opt)
    assert config["class_name"] == type(opt).__name__
    again = O.deserialize(config)
    assert type(again) is type(opt) and again.get_config() == opt.get_config()
    assert type(O.get(config)) is type(opt)


def test_deserialize_accepts_only_fastnn_classes():
    class Mine(O.Adam):
        pass
    with pytest.raises(TypeError, match="only fastnn's own optimizers"):
        O.serialize(Mine())
    with pytest.raises(TypeError, match="not one of fastnn's own"):
        O.serialize(O.SGD(learning_rate=lambda step: 0.1))
    with pytest.raises(ValueError, match="unknown optimizer class 'os.system'"):
        O.deserialize({"class_name": "os.system", "config": {}})
    with pytest.raises(ValueError, match="keys 'class_name' and 'config'"):
        O.deserialize({"class_name": "Adam", "config": {}, "module": "x"})
    with pytest.raises(ValueError, match="invalid config for Adam: .*amsgrad"):
        O.deserialize({"class_name": "Adam", "config": {"amsgrad": True}})
    with pytest.raises(ValueError, match="unknown schedule class 'Evil'"):
        O.deserialize({"class_name": "SGD", "config": {"learning_rate": {"class_name": "Evil", "config": {}}}})


# ---- PyTorch, where its rules coincide with Keras' (epsilon 0 removes the placement difference) -----------
TORCH_PAIRS = {
    "sgd_momentum": (lambda: O.SGD(0.05, momentum=0.9), lambda t, p: t.optim.SGD(p, lr=0.05, momentum=0.9)),
    "sgd_nesterov": (lambda: O.SGD(0.05, momentum=0.8, nesterov=True),
                     lambda t, p: t.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True)),
    "adam": (lambda: O.Adam(0.01, epsilon=0.0), lambda t, p: t.optim.Adam(p, lr=0.01, eps=0.0)),
    "adamw": (lambda: O.AdamW(0.01, weight_decay=0.1, epsilon=0.0),
              lambda t, p: t.optim.AdamW(p, lr=0.01, weight_decay=0.1, eps=0.0)),
    "rmsprop": (lambda: O.RMSprop(0.01, rho=0.9, momentum=0.5, centered=True, epsilon=0.0),
                lambda t, p: t.optim.RMSprop(p, lr=0.01, alpha=0.9, momentum=0.5, centered=True, eps=0.0)),
    "adagrad": (lambda: O.Adagrad(0.05, epsilon=0.0),
                lambda t, p: t.optim.Adagrad(p, lr=0.05, initial_accumulator_value=0.1, eps=0.0)),
}


@pytest.mark.parametrize("name", TORCH_PAIRS)
def test_matches_pytorch_where_the_rules_agree(name):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    params, grads, segments = make_arena(SHAPES, rng)
    tensors = [torch.tensor(params[o:o + s]) for o, s in segments]
    for t in tensors:
        t.requires_grad_(True)
    ours, theirs = TORCH_PAIRS[name][0](), TORCH_PAIRS[name][1](torch, tensors)
    for _ in range(50):
        grads[:] = rng.standard_normal(len(grads))
        ours.apply(params, grads, segments)
        for (o, s), t in zip(segments, tensors):
            t.grad = torch.tensor(grads[o:o + s])
        theirs.step()
    for (o, s), t in zip(segments, tensors):
        np.testing.assert_allclose(params[o:o + s], t.detach().numpy(), rtol=1e-4, atol=2e-6)
