"""Dense, Activation, Flatten, Reshape, Dropout: forward against NumPy, backward against finite differences,
configs round-trip, bad arguments rejected."""
import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn._arena import Arena
from gradcheck import check_layer_gradients

ACTIVATIONS = ["linear", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softmax"]


def _np_act(z, name):
    from math import erf
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.where(z > 0, z, 0.2 * z)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "gelu":
        return 0.5 * z * (1 + np.vectorize(erf)(z / np.sqrt(2)))
    if name == "softmax":
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    return z


def _built(layer, shape):
    layer.build(shape)
    Arena([layer])
    return layer


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("n_in,units,batch", [(1, 1, 1), (7, 5, 3), (33, 17, 9)])
def test_dense_forward_matches_numpy(activation, n_in, units, batch):
    layer = _built(L.Dense(units, activation=activation), (n_in,))
    rng = np.random.default_rng(1)
    layer.weights[1][...] = rng.standard_normal(units)
    x = rng.standard_normal((batch, n_in)).astype(np.float32)
    expected = _np_act(x.astype(np.float64) @ layer.weights[0] + layer.weights[1], activation)
    np.testing.assert_allclose(layer.forward(x), expected, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense_backward_finite_differences(activation):
    check_layer_gradients(L.Dense(6, activation=activation), (5,), batch=4, seed=3)


def test_dense_without_bias_and_on_3d_input():
    check_layer_gradients(L.Dense(4, use_bias=False), (3, 5), batch=2)
    layer = _built(L.Dense(4, use_bias=False), (3, 5))
    assert [w.shape for w in layer.weights] == [(5, 4)]
    x = np.random.default_rng(0).standard_normal((2, 3, 5)).astype(np.float32)
    np.testing.assert_allclose(layer.forward(x), x @ layer.weights[0], rtol=1e-5, atol=1e-6)


def test_dense_on_sequences_of_another_length():
    """Built for (8, 5), Dense maps the last axis of any (batch, T, 5): generation feeds one step at a time."""
    layer = _built(L.Dense(4, activation="softmax"), (8, 5))
    x = np.random.default_rng(2).standard_normal((2, 1, 5)).astype(np.float32)
    y = layer.forward(x)
    assert y.shape == (2, 1, 4)
    np.testing.assert_allclose(y, _np_act(x @ layer.weights[0] + layer.weights[1], "softmax"), rtol=1e-5)
    assert layer.backward(np.ones_like(y)).shape == x.shape


def test_parameter_gradients_accumulate_on_request():
    layer = _built(L.Dense(3), (4,))
    x = np.ones((2, 4), np.float32)
    dy = np.ones((2, 3), np.float32)
    layer.forward(x)
    layer.backward(dy, need_dx=False, accumulate=False)
    once = [g.copy() for g in layer.grads]
    layer.backward(dy, need_dx=False, accumulate=True)
    for g, g1 in zip(layer.grads, once):
        np.testing.assert_allclose(g, 2 * g1, rtol=1e-6)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_layer(activation):
    x = np.random.default_rng(2).standard_normal((3, 4, 5)).astype(np.float32)
    layer = _built(L.Activation(activation), (4, 5))
    np.testing.assert_allclose(layer.forward(x), _np_act(x.astype(np.float64), activation), rtol=2e-5, atol=2e-6)
    check_layer_gradients(L.Activation(activation), (4, 5), batch=2, seed=4)


def test_flatten_and_reshape_are_views_with_exact_gradients():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    flat = _built(L.Flatten(), (3, 4))
    assert flat.output_shape == (12,)
    np.testing.assert_array_equal(flat.forward(x), x.reshape(2, 12))
    np.testing.assert_array_equal(flat.backward(x.reshape(2, 12)), x)
    reshape = _built(L.Reshape((-1, 2)), (3, 4))
    assert reshape.output_shape == (6, 2)
    np.testing.assert_array_equal(reshape.backward(reshape.forward(x)), x)
    with pytest.raises(ValueError, match="cannot reshape"):
        L.Reshape((5,)).build((3, 4))
    with pytest.raises(ValueError, match="at most one -1"):
        L.Reshape((-1, -1))


def test_dropout_training_and_inference():
    layer = _built(L.Dropout(0.25, seed=7), (1000,))
    x = np.ones((4, 1000), np.float32)
    assert layer.forward(x, training=False) is x
    y = layer.forward(x, training=True).copy()
    kept = y != 0
    assert 0.70 < kept.mean() < 0.80
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    dy = np.full_like(x, 2.0)
    np.testing.assert_allclose(layer.backward(dy), np.where(kept, 2 / 0.75, 0), rtol=1e-6)
    again = _built(L.Dropout(0.25, seed=7), (1000,))
    np.testing.assert_array_equal(again.forward(x, training=True), y)


def test_dropout_mask_same_for_one_and_two_threads():
    x = np.ones((64, 4096), np.float32)
    masks = []
    old = fastnn.get_num_threads()
    try:
        for n in (1, 2):
            fastnn.set_num_threads(n)
            masks.append(_built(L.Dropout(0.5, seed=3), (4096,)).forward(x, training=True).copy())
    finally:
        fastnn.set_num_threads(old)
    np.testing.assert_array_equal(masks[0], masks[1])


@pytest.mark.parametrize("make", [lambda: L.Dense(0), lambda: L.Dense(2.5), lambda: L.Dense(3, activation="swish"),
                                  lambda: L.Dropout(1.0), lambda: L.Dropout(-0.1),
                                  lambda: L.Dense(3, kernel_initializer="nope"), lambda: L.Input((0,)),
                                  lambda: L.Input(()), lambda: L.Dense(3, name="")])
def test_bad_layer_arguments(make):
    with pytest.raises((ValueError, TypeError)):
        make()


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError, match="valid names: .*relu"):
        L.Dense(3, activation="swish")


@pytest.mark.parametrize("layer", [L.Dense(3, activation="tanh", use_bias=False), L.Activation("gelu"),
                                   L.Dropout(0.3), L.Flatten(), L.Reshape((2, -1))])
def test_config_round_trip(layer):
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_call_work_is_the_largest_kernel_call_per_sample():
    """Parameters times the positions one call applies them at: what a step's thread count is chosen by."""
    model = fastnn.Sequential([L.Input((10, 10, 3)), L.Conv2D(4, 3), L.MaxPooling2D(), L.Flatten(),
                               L.Dense(5)])
    conv, pool, _, dense = model.layers
    assert conv.call_work() == 10 * 10 * (3 * 3 * 3 * 4 + 4)  # the input's positions: a bound for "valid"
    assert pool.call_work() == 0 and dense.call_work() == 64 * 5 + 5
    assert model._arena.call_work == conv.call_work()
    lstm = fastnn.Sequential([L.Input((7, 3)), L.LSTM(4)]).layers[0]
    assert lstm.call_work() == 7 * 3 * 16  # the input projection; each step's recurrent product is smaller
    both = fastnn.Sequential([L.Input((7, 3)), L.Bidirectional(L.LSTM(4))]).layers[0]
    assert both.call_work() == lstm.call_work()
    embedding = fastnn.Sequential([L.Input((6,)), L.Embedding(1000, 8)]).layers[0]
    assert embedding.call_work() == 6 * 8
