"""SimpleRNN, LSTM and GRU layers: forward against the NumPy reference and backward against finite differences
on hypothesis-drawn (batch, steps, features, units) with every go_backwards / return_sequences / return_state /
use_bias combination; stateful semantics; Keras layouts through get/set_weights and model files; 1 vs 2
threads bitwise; bad input; and a small LSTM that learns a sequence task."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastnn
from fastnn import _reference, initializers
from fastnn import layers as L
from fastnn._arena import Arena
from gradcheck import check_layer_gradients, check_model_gradients
from kernel_helpers import threads

LAYERS = {"SimpleRNN": (L.SimpleRNN, "simple_rnn"), "LSTM": (L.LSTM, "lstm"), "GRU": (L.GRU, "gru")}
FLAGS = st.fixed_dictionaries({"return_sequences": st.booleans(), "go_backwards": st.booleans(),
                               "return_state": st.booleans(), "use_bias": st.booleans()})
SHAPES = st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(1, 5), st.sampled_from([1, 2, 3, 5, 8, 17]))


def _built(layer, steps, features, seed=0):
    fastnn.set_seed(seed)
    layer.build((steps, features))
    Arena([layer])
    rng = np.random.default_rng(seed)
    for w in layer.weights:  # biases too, so a wrong bias row or block shows
        w[...] = rng.standard_normal(w.shape) * 0.5
    return layer


def _reference_out(layer, ref, x, initial_state=None):
    kw = {"activation": layer.activation, "go_backwards": layer.go_backwards}
    if ref != "simple_rnn":
        kw["recurrent_activation"] = layer.recurrent_activation
    w = list(layer.weights) + [None]
    return getattr(_reference, ref)(x, w[0], w[1], w[2] if layer.use_bias else None, initial_state, **kw)


@pytest.mark.parametrize("name", LAYERS)
@settings(max_examples=12, deadline=None)
@given(shape=SHAPES, flags=FLAGS, seed=st.integers(0, 50))
def test_forward_matches_reference(name, shape, flags, seed):
    cls, ref = LAYERS[name]
    batch, steps, features, units = shape
    layer = _built(cls(units, **flags), steps, features, seed)
    x = np.random.default_rng(seed).standard_normal((batch, steps, features)).astype(np.float32)
    out = layer.forward(x)
    want = _reference_out(layer, ref, x)
    np.testing.assert_allclose(out, want[0] if flags["return_sequences"] else want[1], rtol=2e-4, atol=2e-5)
    assert out.shape == (batch,) + layer.output_shape
    for got, expected in zip(layer.final_states, want[1:]):
        np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("name", LAYERS)
@settings(max_examples=8, deadline=None)
@given(shape=SHAPES, flags=FLAGS, seed=st.integers(0, 50))
def test_backward_matches_finite_differences(name, shape, flags, seed):
    batch, steps, features, units = shape
    check_layer_gradients(LAYERS[name][0](units, **flags), (steps, features), batch=batch, seed=seed)


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
@pytest.mark.parametrize("acts", [("relu", "sigmoid"), ("linear", "tanh"), ("sigmoid", "relu")])
def test_other_activations(name, acts):
    """Forward and backward against the reference (relu's kinks make finite differences unreliable), plus
    finite differences for the smooth pair."""
    cls, ref = LAYERS[name]
    layer = _built(cls(4, activation=acts[0], recurrent_activation=acts[1], return_sequences=True), 5, 3, seed=2)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(layer.forward(x, True), _reference_out(layer, ref, x)[0], rtol=2e-4, atol=2e-5)
    g = rng.standard_normal((2, 5, 4)).astype(np.float32)
    dx = layer.backward(g, True, False)
    w = layer.weights
    want = getattr(_reference, ref + "_backward")(x, w[0], w[1], w[2], g, None, activation=acts[0],
                                                  recurrent_activation=acts[1])
    for got, expected in zip([dx] + list(layer.grads), want):
        np.testing.assert_allclose(got, expected, rtol=5e-4, atol=5e-5)
    if "relu" not in acts:
        check_layer_gradients(cls(4, activation=acts[0], recurrent_activation=acts[1], return_sequences=True),
                              (5, 3), batch=2, seed=1)


def test_simple_rnn_relu_and_gradients_accumulate():
    layer = _built(L.SimpleRNN(6, activation="relu", return_sequences=True), 4, 3)
    x = np.random.default_rng(3).standard_normal((3, 4, 3)).astype(np.float32)
    g = np.ones((3, 4, 6), np.float32)
    layer.forward(x, True)
    layer.backward(g, False, False)
    once = [a.copy() for a in layer.grads]
    layer.backward(g, False, True)
    for a, b in zip(layer.grads, once):
        np.testing.assert_allclose(a, 2 * b, rtol=1e-6)


@pytest.mark.parametrize("name", LAYERS)
def test_stateful_two_halves_equal_one_sequence(name):
    cls, ref = LAYERS[name]
    x = np.random.default_rng(4).standard_normal((3, 8, 2)).astype(np.float32)
    layer = _built(cls(5, stateful=True, return_sequences=True), 4, 2, seed=4)
    assert layer.states is None
    first, second = layer.forward(x[:, :4]).copy(), layer.forward(x[:, 4:]).copy()
    whole = _reference_out(layer, ref, x)
    np.testing.assert_allclose(np.concatenate([first, second], 1), whole[0], rtol=2e-4, atol=2e-5)
    for s, w in zip(layer.states, whole[1:]):
        np.testing.assert_allclose(s, w, rtol=2e-4, atol=2e-5)
    with pytest.raises(ValueError, match="same size"):
        layer.forward(x[:2, :4])
    layer.reset_states()
    assert all(not s.any() for s in layer.states)
    np.testing.assert_allclose(layer.forward(x[:1, :4]), whole[0][:1, :4], rtol=2e-4, atol=2e-5)  # new size ok
    states = [np.full((1, 5), 0.3, np.float32)] * len(cls.state_names)
    layer.reset_states(states)
    np.testing.assert_allclose(layer.forward(x[:1, :1])[:, 0],
                               _reference_out(layer, ref, x[:1, :1], states)[1], rtol=2e-4, atol=2e-5)
    with pytest.raises(ValueError, match="shape"):
        layer.reset_states([np.zeros((1, 4), np.float32)] * len(cls.state_names))


def test_stateful_one_step_at_a_time_as_generation_does():
    x = np.random.default_rng(5).standard_normal((1, 6, 3)).astype(np.float32)
    layer = _built(L.LSTM(4, stateful=True), 1, 3, seed=5)
    for t in range(6):
        h = layer.forward(x[:, t:t + 1]).copy()
    np.testing.assert_allclose(h, _reference_out(layer, "lstm", x)[1], rtol=2e-4, atol=2e-5)


def test_stateful_model_trains_and_reset():
    model = fastnn.Sequential([L.Input((3, 2)), L.GRU(4, stateful=True), L.Dense(1)])
    model.compile("sgd", "mse")
    x = np.ones((2, 3, 2), np.float32)
    model.train_on_batch(x, np.zeros((2, 1)))
    assert model.layers[0].states[0].any()
    with pytest.raises(ValueError, match="same size"):
        model.predict_on_batch(x[:1])
    model.reset_states()
    assert not model.layers[0].states[0].any()
    assert model.predict_on_batch(x[:1]).shape == (1, 1)


def test_frozen_layer_leaves_its_weights_and_passes_gradients():
    model = fastnn.Sequential([L.Input((4, 3)), L.LSTM(5, return_sequences=True), L.GRU(2, trainable=False),
                               L.Dense(1)])
    model.compile(fastnn.optimizers.SGD(0.1), "mse")
    frozen = [w.copy() for w in model.layers[1].weights]
    first = model.layers[0].weights[0].copy()
    x = np.random.default_rng(13).standard_normal((3, 4, 3)).astype(np.float32)
    model.train_on_batch(x, np.ones((3, 1)))
    for a, b in zip(model.layers[1].weights, frozen):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(model.layers[0].weights[0], first)  # the gradient flowed through the frozen GRU


def test_return_state_in_a_sequential():
    model = fastnn.Sequential([L.Input((5, 3)), L.LSTM(4, return_state=True, return_sequences=True, go_backwards=True),
                               L.LSTM(2, return_state=True), L.Dense(1)])
    x = np.random.default_rng(6).standard_normal((2, 5, 3)).astype(np.float32)
    model.predict(x)
    first, second = model.layers[0], model.layers[1]
    seq, h, c = _reference_out(first, "lstm", x)
    np.testing.assert_allclose(first.final_states[0], h, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(first.final_states[1], c, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(second.final_states[0], _reference_out(second, "lstm", seq)[1], rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(seq[:, -1], h, rtol=1e-6)  # go_backwards: the last output is the final state


def test_non_stateful_layers_have_no_states():
    layer = _built(L.SimpleRNN(2), 3, 1)
    assert layer.states is None and layer.final_states is None
    with pytest.raises(AttributeError, match="not stateful"):
        layer.reset_states()


@pytest.mark.parametrize("name", LAYERS)
def test_model_gradients_and_weights_round_trip(name, tmp_path):
    cls, _ = LAYERS[name]
    fastnn.set_seed(7)
    model = fastnn.Sequential([L.Input((6, 3)), cls(5, return_sequences=True, go_backwards=True), cls(4),
                               L.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((4, 6, 3)).astype(np.float32), rng.integers(0, 3, 4)
    check_model_gradients(model, x, y)
    weights = model.get_weights()
    g = LAYERS[name][0].n_gates
    assert weights[0].shape == (3, g * 5) and weights[1].shape == (5, g * 5)
    model.set_weights([w * 0.5 for w in weights])
    np.testing.assert_array_equal(model.get_weights()[1], weights[1] * 0.5)
    model.train_on_batch(x, y)
    path = tmp_path / "m.safetensors"
    model.save(path)
    again = fastnn.load_model(path)
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    assert [type(l) for l in again.layers] == [type(l) for l in model.layers]
    assert again.layers[0].get_config() == model.layers[0].get_config()


@pytest.mark.parametrize("layer", [L.LSTM(3), L.GRU(4, return_sequences=True, stateful=True, activation="relu"),
                                   L.SimpleRNN(2, go_backwards=True, return_state=True, use_bias=False),
                                   L.LSTM(5, unit_forget_bias=False, recurrent_activation="tanh", name="enc",
                                          recurrent_initializer=initializers.Orthogonal(2.0, 3))],
                         ids=lambda l: type(l).__name__)
def test_config_round_trips_through_json(layer):
    again = type(layer).from_config(json.loads(json.dumps(layer.get_config())))
    assert again.get_config() == layer.get_config()


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("batch", [1, 32, 45])
def test_training_one_and_two_threads_bitwise(name, batch):
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((batch, 7, 5)).astype(np.float32), rng.integers(0, 3, batch)
    results = []
    for n in (1, 2):
        fastnn.set_seed(8)
        model = fastnn.Sequential([L.Input((7, 5)), LAYERS[name][0](48, return_sequences=True), LAYERS[name][0](40),
                                   L.Dense(3, activation="softmax")])
        model.compile(fastnn.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")
        with threads(n):
            for _ in range(2):
                model.train_on_batch(x, y)
            results.append(model.get_weights() + [model.predict(x)])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_initial_weights_are_keras_like():
    fastnn.set_seed(9)
    model = fastnn.Sequential([L.Input((2, 3)), L.LSTM(4)])
    k, r, b = model.get_weights()
    np.testing.assert_allclose(r @ r.T, np.eye(4), atol=1e-5)  # orthogonal rows
    np.testing.assert_array_equal(b, np.r_[np.zeros(4), np.ones(4), np.zeros(8)])  # unit forget bias
    assert np.abs(k).max() <= np.sqrt(6 / (3 + 16))


def test_bad_arguments_and_inputs():
    with pytest.raises(NotImplementedError, match="reset_after"):
        L.GRU(3, reset_after=False)
    with pytest.raises(ValueError, match="units"):
        L.LSTM(0)
    with pytest.raises(ValueError, match="activation"):
        L.LSTM(3, activation="gelu")
    with pytest.raises(NotImplementedError, match="dropout"):
        L.LSTM(3, dropout=0.2)
    with pytest.raises(ValueError, match=r"\(steps, features\)"):
        fastnn.Sequential([L.Input((4,)), L.LSTM(3)])
    model = fastnn.Sequential([L.Input((4, 2)), L.LSTM(3)])
    with pytest.raises(ValueError, match="NaN"):
        model.predict(np.full((1, 4, 2), np.nan, np.float32))
    with pytest.raises(ValueError, match="per-sample shape"):
        model.predict(np.zeros((1, 4, 3), np.float32))
    layer = model.layers[0]
    with pytest.raises(ValueError, match=r"expects input of shape \(batch, steps, 2\)"):
        layer.forward(np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match="zero-length"):
        layer.forward(np.zeros((2, 0, 2), np.float32))


def test_lstm_learns_a_sequence_task():
    """Is the sum of the first feature over the sequence positive? Needs memory across all 12 steps."""
    rng = np.random.default_rng(10)
    x = rng.standard_normal((1200, 12, 2)).astype(np.float32)
    y = (x[:, :, 0].sum(1) > 0).astype(np.int64)
    fastnn.set_seed(10)
    model = fastnn.Sequential([L.Input((12, 2)), L.LSTM(16), L.Dense(2, activation="softmax")])
    model.compile(fastnn.optimizers.Adam(0.01), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x[:1000], y[:1000], epochs=8, batch_size=32, verbose=0)
    assert model.evaluate(x[1000:], y[1000:], return_dict=True, verbose=0)["accuracy"] >= 0.9


@pytest.mark.parametrize("threads_n", [1, 2])
@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_predict_saves_nothing_and_gives_the_training_pass_bits(name, threads_n):
    """Inference takes the cell's kernel that keeps no buffers for backward (batches of two rows a thread or
    more), alone, under Bidirectional and stateful: the outputs and carried states are those of the training
    pass bit for bit. A backward after it asks for a pass that kept its buffers."""
    cls = LAYERS[name][0]
    x = np.random.default_rng(7).standard_normal((6, 5, 3)).astype(np.float32)
    for layer in (cls(4, return_sequences=True), cls(4, go_backwards=True),
                  L.Bidirectional(cls(4, return_sequences=True))):
        fastnn.set_seed(7)
        model = fastnn.Sequential([L.Input((5, 3)), layer, L.Dense(2)])
        with threads(threads_n):
            trained = model(x, training=True)
            predicted = model.predict(x, batch_size=6, verbose=0)
        np.testing.assert_array_equal(predicted, trained)
        sub = layer.forward_layer if isinstance(layer, L.Bidirectional) else layer
        assert sub._saved is None
        with pytest.raises(RuntimeError, match="backward needs the buffers"):
            sub.backward(np.ones((6, 5, 4) if sub.return_sequences else (6, 4), np.float32))
    stateful = _built(cls(4, stateful=True), 5, 3, seed=8)
    twin = _built(cls(4, stateful=True), 5, 3, seed=8)
    with threads(threads_n):
        for half in (x[:, :2], x[:, 2:]):
            np.testing.assert_array_equal(stateful.forward_unsaved(half), twin.forward(half, True))
    for a, b in zip(stateful.states, twin.states):
        np.testing.assert_array_equal(a, b)


# ---- Bidirectional -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("name", LAYERS)
def test_bidirectional_matches_reference_and_finite_differences(name, merge_mode, return_sequences):
    cls, ref = LAYERS[name]
    layer = L.Bidirectional(cls(3, return_sequences=return_sequences), merge_mode=merge_mode)
    check_layer_gradients(layer, (4, 2), batch=2, seed=11)
    layer = _built(L.Bidirectional(cls(3, return_sequences=return_sequences), merge_mode=merge_mode), 4, 2, seed=11)
    x = np.random.default_rng(11).standard_normal((2, 4, 2)).astype(np.float32)
    index = 0 if return_sequences else 1
    f = _reference_out(layer.forward_layer, ref, x)[index]
    b = _reference_out(layer.backward_layer, ref, x)[index]
    if return_sequences:
        b = b[:, ::-1]
    want = {"concat": np.concatenate([f, b], -1), "sum": f + b, "mul": f * b, "ave": (f + b) / 2}[merge_mode]
    np.testing.assert_allclose(layer.forward(x), want, rtol=2e-4, atol=2e-5)


def test_bidirectional_weights_files_and_states(tmp_path):
    fastnn.set_seed(12)
    model = fastnn.Sequential([L.Input((5, 3)), L.Bidirectional(L.LSTM(4, return_sequences=True, name="enc")),
                               L.Bidirectional(L.GRU(2, return_state=True), merge_mode="sum"), L.Dense(1)])
    assert [w.shape for w in model.get_weights()][:6] == [(3, 16), (4, 16), (16,)] * 2
    bi = model.layers[0]
    assert bi.backward_layer.name == "backward_enc" and bi.backward_layer.go_backwards
    model.compile("adam", "mse")
    rng = np.random.default_rng(12)
    x = rng.standard_normal((6, 5, 3)).astype(np.float32)
    model.fit(x, rng.standard_normal((6, 1)), epochs=2, verbose=0)
    assert len(model.layers[1].final_states) == 2
    path = tmp_path / "bi.safetensors"
    model.save(path)
    again = fastnn.load_model(path)
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    assert again.layers[0].get_config() == bi.get_config()
    bi.trainable = False
    assert not bi.forward_layer.trainable and not bi.backward_layer.trainable


def test_bidirectional_bad_arguments_and_configs():
    with pytest.raises(TypeError, match="wraps"):
        L.Bidirectional(L.Dense(3))
    with pytest.raises(ValueError, match="merge_mode"):
        L.Bidirectional(L.LSTM(3), merge_mode=None)
    with pytest.raises(ValueError, match="class SimpleRNN, LSTM, GRU"):
        L.Bidirectional.from_config({"layer": {"class_name": "Dense", "config": {"units": 3}}})
    stateful = L.Bidirectional(L.SimpleRNN(2, stateful=True))
    _built(stateful, 3, 1)
    stateful.forward(np.ones((2, 3, 1), np.float32))
    assert stateful.stateful and len(stateful.states) == 2 and stateful.states[0].any()
    stateful.reset_states()
    assert not any(s.any() for s in stateful.states)
