"""Dense stacks run as one C call per step (fastnn/_dense_plan.py, src/dense_plan.c): bitwise the layer-by-layer
path (weights, velocity, loss, outputs), the same for any thread count and either way of splitting the work,
and everything the plan does not cover falls back to the usual path."""
import contextlib

import numpy as np
import pytest

import fastnn
from fastnn import _dense_plan, _kernels, _threads
from fastnn import layers as L
from fastnn.training import NonFiniteLossError
from kernel_helpers import isa, ISA_IDS, ISAS, threads


@contextlib.contextmanager
def mode(enabled, team=None):
    """The plan on or off; team True/False forces one parallel region (or none) whatever the step's size."""
    saved = (_dense_plan.ENABLED, _dense_plan.TEAM_STEP_WORK, _dense_plan.TEAM_FORWARD_WORK, _threads.contended)
    _dense_plan.ENABLED = enabled
    if team is not None:
        _dense_plan.TEAM_STEP_WORK = _dense_plan.TEAM_FORWARD_WORK = 10 ** 18 if team else 0
        _threads.contended = lambda: False
    try:
        yield
    finally:
        (_dense_plan.ENABLED, _dense_plan.TEAM_STEP_WORK, _dense_plan.TEAM_FORWARD_WORK,
         _threads.contended) = saved


# (input size, [(units, activation, use_bias)], loss)
CASES = {
    "mlp_sparse": (784, [(256, "relu", True), (128, "relu", True), (10, "softmax", True)],
                   "sparse_categorical_crossentropy"),
    "odd_sizes": (13, [(33, "tanh", True), (17, "leaky_relu", False), (5, "softmax", True)],
                  "categorical_crossentropy"),
    "ones": (1, [(1, "sigmoid", True), (1, "linear", True), (3, "softmax", True)], "sparse_categorical_crossentropy"),
    "gelu_bce": (20, [(40, "gelu", True), (7, "linear", True), (3, "sigmoid", True)], "binary_crossentropy"),
    "mse_tanh_out": (9, [(70, "relu", False), (2, "tanh", True)], "mse"),
    "single_linear": (31, [(48, "linear", True)], "mse"),
}

OPTIMIZERS = {
    "momentum": lambda: fastnn.optimizers.SGD(0.05, momentum=0.9),
    "nesterov_decay_clip": lambda: fastnn.optimizers.SGD(0.05, momentum=0.8, nesterov=True, weight_decay=0.01,
                                                         clipvalue=0.02),
    "plain": lambda: fastnn.optimizers.SGD(0.1),
}


def _build(case, optimizer="momentum", metrics=None, seed=3):
    n_in, spec, loss = CASES[case]
    fastnn.set_seed(seed)
    model = fastnn.Sequential([L.Input((n_in,))] + [L.Dense(u, activation=a, use_bias=b) for u, a, b in spec])
    model.compile(optimizer=OPTIMIZERS[optimizer](), loss=loss, metrics=metrics)
    return model


def _batch(case, batch, rng):
    n_in, spec, loss = CASES[case]
    c = spec[-1][0]
    x = rng.standard_normal((batch, n_in), dtype=np.float32)
    if loss == "sparse_categorical_crossentropy":
        return x, rng.integers(0, c, batch)
    if loss == "categorical_crossentropy":
        return x, rng.dirichlet(np.ones(c), batch).astype(np.float32)
    if loss == "binary_crossentropy":
        return x, (rng.random((batch, c)) < 0.5).astype(np.float32)
    return x, rng.standard_normal((batch, c), dtype=np.float32)


def _train(case, optimizer, batch, enabled, team=None, n_threads=2, steps=3, weighted=False):
    """Losses, weights + optimizer state, and predictions after `steps` steps; the model."""
    with mode(enabled, team), threads(n_threads):
        model = _build(case, optimizer)
        rng = np.random.default_rng(batch)
        losses = []
        for _ in range(steps):
            x, y = _batch(case, batch, rng)
            w = rng.random(batch).astype(np.float32) if weighted else None
            losses.append(model.train_on_batch(x, y, sample_weight=w))
        out = model.predict_on_batch(x)
        state = model.get_weights() + list(model.optimizer.variables().values())
        return losses, state, out, model


def _assert_bitwise(a, b):
    la, sa, oa, _ = a
    lb, sb, ob, _ = b
    assert la == lb
    assert len(sa) == len(sb)
    for u, v in zip(sa, sb):
        np.testing.assert_array_equal(u.view(np.uint32), v.view(np.uint32))
    np.testing.assert_array_equal(oa.view(np.uint32), ob.view(np.uint32))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("batch", [1, 5, 32])
def test_plan_is_bitwise_the_layer_path(case, optimizer, batch):
    plain = _train(case, optimizer, batch, False)
    teamed = _train(case, optimizer, batch, True, team=True)
    assert teamed[3]._dense_train is not None and type(teamed[3]._dense_forward) is _dense_plan.ForwardPlan
    _assert_bitwise(plain, teamed)
    _assert_bitwise(plain, _train(case, optimizer, batch, True, team=False))


@pytest.mark.parametrize("case", ["mlp_sparse", "odd_sizes", "gelu_bce"])
@pytest.mark.parametrize("n_threads", [1, 3])
def test_plan_is_the_same_for_any_thread_count(case, n_threads):
    two = _train(case, "momentum", 3, True, team=True)
    _assert_bitwise(two, _train(case, "momentum", 3, True, team=True, n_threads=n_threads))
    _assert_bitwise(two, _train(case, "momentum", 3, True, team=False, n_threads=n_threads))


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
def test_plan_is_bitwise_on_every_instruction_set(isa_index):
    with isa(isa_index):
        _assert_bitwise(_train("odd_sizes", "nesterov_decay_clip", 2, False),
                        _train("odd_sizes", "nesterov_decay_clip", 2, True, team=True))


@pytest.mark.parametrize("case", ["mlp_sparse", "gelu_bce", "mse_tanh_out"])
def test_sample_weights_take_the_plan_bitwise(case):
    plain = _train(case, "momentum", 4, False, weighted=True)
    planned = _train(case, "momentum", 4, True, team=True, weighted=True)
    assert planned[3]._dense_train is not None
    _assert_bitwise(plain, planned)


def test_large_batches_run_layer_after_layer_bitwise():
    _assert_bitwise(_train("odd_sizes", "momentum", 300, False, steps=2),
                    _train("odd_sizes", "momentum", 300, True, steps=2))


def test_metrics_and_fit_match_the_layer_path():
    rng = np.random.default_rng(0)
    x, y = _batch("odd_sizes", 70, rng)
    results = []
    for enabled in (False, True):
        with mode(enabled, team=True):
            model = _build("odd_sizes", metrics=["accuracy", "mse"])
            fastnn.set_seed(11)
            history = model.fit(x, y, batch_size=8, epochs=2, verbose=0, validation_split=0.2)
            one = model.train_on_batch(x[:3], y[:3], return_dict=True)
            results.append((history.history, one, model.get_weights(), model.predict(x, batch_size=16)))
            assert (model._dense_train is not None) == enabled
    (h0, o0, w0, p0), (h1, o1, w1, p1) = results
    assert h0 == h1 and o0 == o1
    for a, b in zip(w0 + [p0], w1 + [p1]):
        np.testing.assert_array_equal(a, b)


def test_plan_follows_changes_between_steps():
    """The learning rate and momentum are read at every step; a new optimizer or restored state is picked up."""
    rng = np.random.default_rng(1)
    batches = [_batch("odd_sizes", 4, rng) for _ in range(5)]
    runs = []
    for enabled in (False, True):
        with mode(enabled, team=True):
            model = _build("odd_sizes")
            model.train_on_batch(*batches[0])
            model.optimizer.learning_rate = 0.2
            model.optimizer.momentum = 0.5
            model.train_on_batch(*batches[1])
            model.optimizer.set_variables({k: v * 0.5 for k, v in model.optimizer.variables().items()})
            model.train_on_batch(*batches[2])
            model.compile(optimizer=fastnn.optimizers.SGD(0.03), loss="categorical_crossentropy")
            model.train_on_batch(*batches[3])
            model.set_weights([w * 0.9 for w in model.get_weights()])
            model.train_on_batch(*batches[4])
            runs.append(model.get_weights() + [model.optimizer.iterations])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def _with_layer(layer):
    fastnn.set_seed(0)
    model = fastnn.Sequential([L.Input((6,)), L.Dense(5, activation="relu"), layer, L.Dense(3, activation="softmax")])
    model.compile(optimizer=fastnn.optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize("make", [
    lambda: _with_layer(L.Dropout(0.3)),
    lambda: _with_layer(L.Dense(4, activation="softmax")),  # a softmax inside the stack
    lambda: _with_layer(L.Dense(4, trainable=False)),
])
def test_other_stacks_fall_back_to_the_layer_path(make):
    model = make()
    x, y = np.ones((2, 6), np.float32), np.array([0, 2])
    loss = model.train_on_batch(x, y)
    assert model._dense_train is None and np.isfinite(loss)


@pytest.mark.parametrize("optimizer, loss", [
    (lambda: fastnn.optimizers.Adam(1e-3), "sparse_categorical_crossentropy"),
    (lambda: fastnn.optimizers.SGD(0.1, clipnorm=1.0), "sparse_categorical_crossentropy"),
    (lambda: fastnn.optimizers.SGD(0.1, global_clipnorm=1.0), "sparse_categorical_crossentropy"),
    (lambda: fastnn.optimizers.SGD(0.1), fastnn.losses.SparseCategoricalCrossentropy(from_logits=True)),
])
def test_other_optimizers_and_losses_fall_back(optimizer, loss):
    fastnn.set_seed(0)
    model = fastnn.Sequential([L.Input((6,)), L.Dense(5, activation="relu"), L.Dense(3, activation="softmax")])
    model.compile(optimizer=optimizer(), loss=loss)
    before = model.get_weights()
    model.train_on_batch(np.ones((2, 6), np.float32), np.array([0, 2]))
    assert model._dense_train is None
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_probability_loss_without_logits_falls_back():
    """Cross-entropy on a sigmoid output (probabilities, not fused) keeps the NumPy loss path; inference still
    takes the plan."""
    fastnn.set_seed(0)
    model = fastnn.Sequential([L.Input((4,)), L.Dense(3, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    model.train_on_batch(np.ones((2, 4), np.float32), np.eye(3, dtype=np.float32)[[0, 1]])
    model.predict_on_batch(np.ones((2, 4), np.float32))
    assert model._dense_train is None and type(model._dense_forward) is _dense_plan.ForwardPlan


def test_non_finite_loss_raises_and_leaves_the_weights():
    for enabled in (False, True):
        with mode(enabled, team=True):
            model = _build("single_linear")
            x, y = _batch("single_linear", 2, np.random.default_rng(0))
            model.train_on_batch(x, y)
            kernel, bias = model.get_weights()
            model.set_weights([np.full_like(kernel, 1e37), bias])
            before = model.get_weights() + list(model.optimizer.variables().values())
            with pytest.raises(NonFiniteLossError):
                model.train_on_batch(np.full_like(x, 10.0), y)
            after = model.get_weights() + list(model.optimizer.variables().values())
            for a, b in zip(before, after):
                np.testing.assert_array_equal(a, b)
            assert model.optimizer.iterations == 1


@pytest.mark.parametrize("x, y, error, match", [
    (np.ones((2, 5), np.float32), np.array([0, 1]), ValueError, "per-sample shape"),
    (np.ones((2, 784), np.float32), np.array([0, 10]), ValueError, "out of range"),
    (np.full((2, 784), np.nan, np.float32), np.array([0, 1]), ValueError, "NaN"),
    (np.ones((0, 784), np.float32), np.array([], np.int64), ValueError, "empty"),
    (np.ones((2, 784), np.float32), np.array([0]), ValueError, "labels"),
    (np.ones(784, np.float32), np.array([0]), ValueError, "batch axis"),
])
def test_bad_input_raises_the_same_errors(x, y, error, match):
    messages = []
    for enabled in (False, True):
        with mode(enabled):
            model = _build("mlp_sparse")
            with pytest.raises(error, match=match) as info:
                model.train_on_batch(x, y)
            messages.append(str(info.value))
            if x.ndim == 2 and x.shape[1] == 784 and len(x):
                continue
            with pytest.raises(error) as info:
                model.predict_on_batch(x)
            messages.append(str(info.value))
    assert messages[:len(messages) // 2] == messages[len(messages) // 2:]


def test_kernel_plan_checks_its_arrays():
    kernel = np.zeros((4, 3), np.float32)
    layer = (kernel, None, None, None, None, 0, 0.0, None, np.zeros((2, 3), np.float32), None, None)
    with pytest.raises(ValueError, match="y has shape"):
        _kernels.DensePlan(1, [layer])
    with pytest.raises(ValueError, match="at least one layer"):
        _kernels.DensePlan(1, [])
    plan = _kernels.DensePlan(2, [layer])
    with pytest.raises(ValueError, match="x has shape"):
        plan.forward(np.zeros((2, 5), np.float32), False, 1)
    with pytest.raises(ValueError, match="without a grad buffer"):
        plan.sgd_step(np.zeros((2, 4), np.float32), _kernels.DENSE_MSE, None, np.zeros((2, 3), np.float32), None,
                      0.1, 0.0, False, 0.0, 0.0, False, 1)
    bad = (np.zeros((5, 2), np.float32), None, None, None, None, 0, 0.0, None, np.zeros((2, 2), np.float32), None,
           None)
    with pytest.raises(ValueError, match="takes 5 inputs"):
        _kernels.DensePlan(2, [layer, bad])


def test_momentum_set_to_zero_between_steps_drops_the_velocity():
    """The plan then takes plain SGD steps (the stale velocity stays in the state, unused)."""
    rng = np.random.default_rng(2)
    batches = [_batch("odd_sizes", 3, rng) for _ in range(2)]
    with mode(True, team=True):
        model, twin = _build("odd_sizes"), _build("odd_sizes")
        for m in (model, twin):
            m.train_on_batch(*batches[0])
        model.optimizer.momentum = 0.0
        model.train_on_batch(*batches[1])
        twin.compile(optimizer=fastnn.optimizers.SGD(0.05), loss="categorical_crossentropy")
        twin.train_on_batch(*batches[1])
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("batch", [1, 5, 300])
def test_the_dense_layers_ending_a_conv_model_predict_as_one_plan_bitwise(batch):
    fastnn.set_seed(6)
    model = fastnn.Sequential([L.Input((8, 8, 2)), L.Conv2D(4, 3, activation="relu"), L.MaxPool2D(),
                               L.Flatten(), L.Dense(20, activation="relu"), L.Dense(7, activation="tanh"),
                               L.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x = np.random.default_rng(1).standard_normal((batch, 8, 8, 2)).astype(np.float32)
    with mode(True):
        planned = model.predict_on_batch(x)
        steps = model._steps[False, False]
        assert isinstance(steps[-1][0].__self__, _dense_plan.ForwardPlan) and len(steps) == 3
        assert model.predict(x, batch_size=2, verbose=0).tobytes() == np.concatenate(
            [model.predict_on_batch(x[i:i + 2]) for i in range(0, batch, 2)]).tobytes()
        trained = model(x, training=True)  # training keeps the layers (backward needs them)
    with mode(False):
        model._steps.clear()
        assert model.predict_on_batch(x).tobytes() == planned.tobytes()
        assert len(model._steps[False, False]) == 5
    np.testing.assert_array_equal(trained, planned)


def test_a_single_dense_layer_or_a_sequence_dense_keeps_its_own_step():
    fastnn.set_seed(7)
    one = fastnn.Sequential([L.Input((6, 6, 1)), L.Conv2D(3, 3), L.Flatten(), L.Dense(4)])
    seq = fastnn.Sequential([L.Input((5, 3)), L.Dense(4), L.Dense(2)])  # Dense on (time, features) samples
    for model, shape in ((one, (2, 6, 6, 1)), (seq, (2, 5, 3))):
        model.predict_on_batch(np.zeros(shape, np.float32))
        assert not any(isinstance(getattr(f, "__self__", None), _dense_plan.ForwardPlan)
                       for f, _ in model._steps[False, False])
