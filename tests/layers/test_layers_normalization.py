"""BatchNormalization: forward (training and inference) and moving statistics against NumPy, backward against
finite differences, thread-count determinism, Keras weight layout, a model that learns and survives save/load,
bad arguments rejected."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastnn
from fastnn import layers as L
from fastnn._arena import Arena
from gradcheck import check_layer_gradients


def _built(layer, shape, seed=0):
    layer.build(shape)
    Arena([layer])
    rng = np.random.default_rng(seed)
    c = shape[-1]
    # non-trivial parameters and moving statistics (only those the layer has, in Keras order)
    values = {"gamma": rng.uniform(0.5, 1.5, c), "beta": rng.standard_normal(c),
              "moving_mean": rng.standard_normal(c), "moving_variance": rng.uniform(0.5, 2.0, c)}
    for w, spec in zip(layer.weights, layer.param_specs()):
        w[...] = values[spec.name]
    return layer


def _np_bn(x, mean, var, gamma, beta, eps):
    x, mean, var = x.astype(np.float64), np.asarray(mean, np.float64), np.asarray(var, np.float64)
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def _axes(x):
    return tuple(range(x.ndim - 1))


SHAPES = [(1,), (5,), (17,), (4, 4, 3), (5, 3, 7)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("batch", [2, 7])
def test_forward_training_uses_batch_statistics(shape, batch):
    layer = _built(L.BatchNormalization(epsilon=1e-3), shape)
    gamma, beta, mm, mv = [w.copy() for w in layer.weights]
    x = np.random.default_rng(1).standard_normal((batch,) + shape).astype(np.float32) * 3 + 2
    y = layer.forward(x, training=True)
    mean, var = x.astype(np.float64).mean(_axes(x)), x.astype(np.float64).var(_axes(x))
    np.testing.assert_allclose(y, _np_bn(x, mean, var, gamma, beta, 1e-3), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.weights[2], 0.99 * mm + 0.01 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.weights[3], 0.99 * mv + 0.01 * var, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
def test_forward_inference_uses_moving_statistics_and_leaves_them(shape):
    layer = _built(L.BatchNormalization(epsilon=0.01), shape)
    before = [w.copy() for w in layer.weights]
    x = np.random.default_rng(2).standard_normal((3,) + shape).astype(np.float32)
    y = layer.forward(x, training=False)
    gamma, beta, mm, mv = before
    np.testing.assert_allclose(y, _np_bn(x, mm, mv, gamma, beta, 0.01), rtol=1e-5, atol=1e-5)
    for w, b in zip(layer.weights, before):
        np.testing.assert_array_equal(w, b)


def test_moving_statistics_after_several_steps():
    layer = _built(L.BatchNormalization(momentum=0.8), (4, 4, 3))
    mm, mv = layer.weights[2].astype(np.float64), layer.weights[3].astype(np.float64)
    rng = np.random.default_rng(3)
    for step in range(6):
        x = (rng.standard_normal((5, 4, 4, 3)) * (step + 1) + step).astype(np.float32)
        layer.forward(x, training=True)
        mm = 0.8 * mm + 0.2 * x.astype(np.float64).mean((0, 1, 2))
        mv = 0.8 * mv + 0.2 * x.astype(np.float64).var((0, 1, 2))  # biased, as Keras 3
    np.testing.assert_allclose(layer.weights[2], mm, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.weights[3], mv, rtol=1e-5, atol=1e-5)


def test_center_and_scale_off_drop_their_weights():
    layer = _built(L.BatchNormalization(center=False, scale=False), (6,))
    assert [s.name for s in layer.param_specs()] == ["moving_mean", "moving_variance"]
    x = np.random.default_rng(4).standard_normal((9, 6)).astype(np.float32)
    y = layer.forward(x, training=True)
    np.testing.assert_allclose(y, _np_bn(x, x.mean(0), x.var(0), 1.0, 0.0, 1e-3), rtol=1e-4, atol=1e-4)
    check_layer_gradients(L.BatchNormalization(center=False), (6,), batch=4, training=True)


@pytest.mark.parametrize("shape,batch", [((5,), 4), ((1,), 6), ((3, 4, 2), 2), ((2, 3, 5), 3)])
def test_backward_training_matches_finite_differences(shape, batch):
    # forward updates the moving statistics, which training-mode outputs do not depend on: the check is valid
    layer = L.BatchNormalization()
    check_layer_gradients(layer, shape, batch=batch, training=True)
    x = np.random.default_rng(5).standard_normal((batch,) + shape).astype(np.float32)
    first = layer.forward(x, training=True).copy()
    np.testing.assert_array_equal(layer.forward(x, training=True), first)


@pytest.mark.parametrize("shape", [(5,), (3, 4, 2)])
def test_backward_inference_is_the_affine_gradient(shape):
    layer = _built(L.BatchNormalization(), shape)
    check_layer_gradients(layer, shape, batch=3, training=False)
    _built(layer, shape)
    gamma, _, mm, mv = layer.weights
    x = np.random.default_rng(6).standard_normal((3,) + shape).astype(np.float32)
    dy = np.random.default_rng(7).standard_normal(x.shape).astype(np.float32)
    layer.forward(x, training=False)
    dx = layer.backward(dy, need_dx=True)
    inv = 1 / np.sqrt(mv.astype(np.float64) + 1e-3)
    np.testing.assert_allclose(dx, dy * gamma * inv, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.grads[0], (dy * (x - mm) * inv).sum(_axes(x)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.grads[1], dy.sum(_axes(x)), rtol=1e-5, atol=1e-5)


SIZES = st.one_of(st.integers(1, 40), st.sampled_from([1, 7, 15, 16, 17, 31, 33, 257, 300, 1031]))


@settings(max_examples=25, deadline=None)
@given(rows=SIZES, c=SIZES, scale=st.sampled_from([0.01, 1.0, 50.0]), seed=st.integers(0, 2**31))
def test_training_forward_and_backward_match_numpy(rows, c, scale, seed):
    rng = np.random.default_rng(seed)
    layer = _built(L.BatchNormalization(), (c,), seed)
    gamma, beta = (w.astype(np.float64) for w in layer.weights[:2])
    x = (rng.standard_normal((rows, c)) * scale + scale).astype(np.float32)
    dy = rng.standard_normal((rows, c)).astype(np.float32)
    y = layer.forward(x, training=True)
    dx = layer.backward(dy)
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    mean, var = x64.mean(0), x64.var(0)
    inv = 1 / np.sqrt(var + 1e-3)
    xhat = (x64 - mean) * inv
    np.testing.assert_allclose(y, gamma * xhat + beta, rtol=1e-4, atol=1e-4)
    dgamma, dbeta = (dy64 * xhat).sum(0), dy64.sum(0)
    tol = 1e-4 * np.sqrt(rows)
    np.testing.assert_allclose(layer.grads[0], dgamma, rtol=1e-4, atol=tol)
    np.testing.assert_allclose(layer.grads[1], dbeta, rtol=1e-5, atol=tol)
    expected = gamma * inv * (dy64 - dbeta / rows - xhat * dgamma / rows)
    np.testing.assert_allclose(dx, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max() + 1e-5)


def test_gradients_accumulate():
    layer = _built(L.BatchNormalization(), (4,))
    x = np.random.default_rng(8).standard_normal((6, 4)).astype(np.float32)
    dy = np.random.default_rng(9).standard_normal((6, 4)).astype(np.float32)
    layer.forward(x, training=True)
    layer.backward(dy, need_dx=False)
    once = [g.copy() for g in layer.grads]
    layer.backward(dy, need_dx=False, accumulate=True)
    for g, g1 in zip(layer.grads, once):
        np.testing.assert_allclose(g, 2 * g1, rtol=1e-6)


def test_batch_of_one_outputs_beta_and_zero_input_gradient():
    layer = _built(L.BatchNormalization(), (5,))
    x = np.random.default_rng(10).standard_normal((1, 5)).astype(np.float32)
    y = layer.forward(x, training=True)
    np.testing.assert_array_equal(y[0], layer.weights[1])
    dx = layer.backward(np.ones((1, 5), np.float32))
    np.testing.assert_array_equal(dx, 0.0)
    assert np.all(np.isfinite(layer.weights[3]))


def test_one_and_two_threads_are_bitwise_equal():
    old = fastnn.get_num_threads()
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((64, 20, 20, 24)) * 5 + 3).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    results = []
    try:
        for n in (1, 2):
            fastnn.set_num_threads(n)
            layer = _built(L.BatchNormalization(), (20, 20, 24))
            y = layer.forward(x, training=True).copy()
            dx = layer.backward(dy).copy()
            results.append([y, dx] + [w.copy() for w in layer.weights] + [g.copy() for g in layer.grads])
    finally:
        fastnn.set_num_threads(old)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_weights_layout_and_non_trainable_state():
    model = fastnn.Sequential([L.Input((4, 4, 3)), L.BatchNormalization()])
    assert [w.shape for w in model.get_weights()] == [(3,)] * 4
    assert model.count_params() == 12
    assert len(model.layers[0].grads) == 2
    assert model._arena.size == 6


def test_frozen_layer_runs_in_inference_mode():
    layer = _built(L.BatchNormalization(trainable=False), (4,))
    gamma, beta, mm, mv = [w.copy() for w in layer.weights]
    x = np.random.default_rng(12).standard_normal((5, 4)).astype(np.float32)
    y = layer.forward(x, training=True)
    np.testing.assert_allclose(y, _np_bn(x, mm, mv, gamma, beta, 1e-3), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(layer.weights[2], mm)


def test_model_with_batchnorm_learns_digits_and_round_trips(tmp_path):
    (x, y), (xt, yt) = fastnn.datasets.load_digits()
    x, xt = (x / 16.0).reshape(-1, 64).astype(np.float32), (xt / 16.0).reshape(-1, 64).astype(np.float32)
    fastnn.set_seed(0)
    model = fastnn.Sequential([L.Input((64,)), L.Dense(32), L.BatchNormalization(momentum=0.9),
                               L.Activation("relu"), L.Dense(10, activation="softmax")])
    model.compile(optimizer=fastnn.optimizers.Adam(learning_rate=0.005), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=10, verbose=0)
    assert not np.allclose(model.layers[1].weights[2], 0.0)  # the moving mean moved
    accuracy = model.evaluate(xt, yt, return_dict=True, verbose=0)["accuracy"]
    assert accuracy >= 0.90
    path = tmp_path / "bn.fnn"
    model.save(path)
    again = fastnn.load_model(path)
    for a, b in zip(again.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(again.predict(xt), model.predict(xt))


def test_config_round_trips():
    layer = L.BatchNormalization(momentum=0.5, epsilon=0.1, center=False, gamma_initializer="zeros", name="bn_x")
    again = L.BatchNormalization.from_config(layer.get_config())
    assert again.get_config() == layer.get_config()


@pytest.mark.parametrize("axis,shape", [(1, (4, 4, 3)), (-2, (4, 3)), (0, (3,)), ([1, 2], (4, 3))])
def test_axis_other_than_last_is_rejected(axis, shape):
    with pytest.raises(NotImplementedError, match="last axis|the last"):
        fastnn.Sequential([L.Input(shape), L.BatchNormalization(axis=axis)])


@pytest.mark.parametrize("axis,shape", [(3, (4, 4, 3)), (1, (5,)), (-1, (2, 2))])
def test_last_axis_by_index_is_accepted(axis, shape):
    model = fastnn.Sequential([L.Input(shape), L.BatchNormalization(axis=axis)])
    assert [w.shape for w in model.get_weights()] == [(shape[-1],)] * 4


@pytest.mark.parametrize("momentum", [-0.1, 1.5, float("nan"), "0.9", True])
def test_bad_momentum_is_rejected(momentum):
    with pytest.raises(ValueError, match="momentum must be a number in \\[0, 1\\]"):
        L.BatchNormalization(momentum=momentum)


@pytest.mark.parametrize("epsilon", [0.0, -1e-3, float("inf"), float("nan"), None])
def test_bad_epsilon_is_rejected(epsilon):
    with pytest.raises(ValueError, match="epsilon must be a positive number"):
        L.BatchNormalization(epsilon=epsilon)


def test_kernel_bindings_reject_mismatched_shapes():
    from fastnn import _kernels
    x, c3, c4 = np.ones((5, 4), np.float32), np.ones(3, np.float32), np.ones(4, np.float32)
    with pytest.raises(ValueError, match="gamma must have one value per channel \\(4\\), got 3"):
        _kernels.batchnorm_forward(x, c4, c4, c3, c4, 1e-3, np.empty_like(x))
    with pytest.raises(ValueError, match="both moving_mean and moving_var, or neither"):
        _kernels.batchnorm_stats(x, c4.copy(), c4.copy(), 0.9, c4.copy(), None)
    with pytest.raises(ValueError, match="dy must have the shape of x"):
        _kernels.batchnorm_backward(x, np.ones((4, 4), np.float32), c4, c4, c4, 1e-3, True)
    with pytest.raises(ValueError, match="batchnorm_stats: invalid argument"):
        _kernels.batchnorm_stats(x, c4.copy(), c4.copy(), 1.5)
