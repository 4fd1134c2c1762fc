"""Embedding: Keras layout and default initializer, lookups of int and float ids, the sparse gradient against
NumPy and finite differences through a model, 1 vs 2 threads bitwise, and bad ids rejected with the id and the
vocabulary size in the message."""
import json

import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn._arena import Arena
from gradcheck import check_model_gradients
from kernel_helpers import threads


def _built(layer, steps):
    fastnn.set_seed(0)
    layer.build((steps,))
    Arena([layer])
    return layer


def test_layout_default_initializer_and_lookup():
    layer = _built(L.Embedding(50, 8), 5)
    (table,) = layer.weights
    assert table.shape == (50, 8) and np.abs(table).max() <= 0.05 and table.std() > 0.01
    ids = np.random.default_rng(0).integers(0, 50, (3, 5))
    np.testing.assert_array_equal(layer.forward(ids), table[ids])
    np.testing.assert_array_equal(layer.forward(ids.astype(np.float32)), table[ids])
    assert layer.output_shape == (5, 8)


def test_sparse_gradient_and_accumulation():
    layer = _built(L.Embedding(20, 4), 6)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 10, (5, 6))
    dy = rng.standard_normal((5, 6, 4)).astype(np.float32)
    layer.forward(ids, True)
    assert layer.backward(dy, need_dx=False) is None
    want = np.zeros((20, 4))
    np.add.at(want, ids.reshape(-1), dy.reshape(-1, 4))
    np.testing.assert_allclose(layer.grads[0], want, rtol=1e-5, atol=1e-6)
    assert not layer.grads[0][10:].any()  # rows of absent ids get nothing
    layer.backward(dy, need_dx=False, accumulate=True)
    np.testing.assert_allclose(layer.grads[0], 2 * want, rtol=1e-5, atol=1e-6)


def test_model_gradients_match_finite_differences():
    fastnn.set_seed(2)
    model = fastnn.Sequential([L.Input((7,)), L.Embedding(12, 5), L.LSTM(6), L.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(2)
    check_model_gradients(model, rng.integers(0, 12, (4, 7)), rng.integers(0, 3, 4))


def test_one_and_two_threads_bitwise():
    rng = np.random.default_rng(3)
    ids, dy = rng.integers(0, 30, (256, 40)), rng.standard_normal((256, 40, 64)).astype(np.float32)
    grads = []
    for n in (1, 2):
        layer = _built(L.Embedding(30, 64), 40)
        with threads(n):
            layer.forward(ids, True)
            layer.backward(dy, need_dx=False)
        grads.append(layer.grads[0].copy())
    np.testing.assert_array_equal(*grads)


def test_bad_ids_name_the_id_and_the_vocabulary():
    model = fastnn.Sequential([L.Input((3,)), L.Embedding(10, 2)])
    with pytest.raises(ValueError, match=r"id 10.*input_dim=10"):
        model.predict(np.array([[1, 2, 10]]))
    with pytest.raises(ValueError, match=r"id -3"):
        model.predict(np.array([[1, -3, 0]]))
    with pytest.raises(ValueError, match="whole numbers"):
        model.predict(np.array([[1, 2.5, 0]]))
    with pytest.raises(ValueError, match="NaN"):
        model.predict(np.array([[1, np.nan, 0]]))
    with pytest.raises(ValueError, match="input_dim"):
        L.Embedding(0, 3)
    with pytest.raises(NotImplementedError, match="mask_zero"):
        L.Embedding(5, 3, mask_zero=True)


def test_config_and_model_file_round_trip(tmp_path):
    layer = L.Embedding(9, 3, embeddings_initializer="glorot_uniform", name="tokens")
    assert type(layer).from_config(json.loads(json.dumps(layer.get_config()))).get_config() == layer.get_config()
    model = fastnn.Sequential([L.Input((4,)), layer, L.GRU(2)])
    ids = np.array([[0, 8, 3, 3]])
    model.save(tmp_path / "e.safetensors")
    np.testing.assert_array_equal(fastnn.load_model(tmp_path / "e.safetensors").predict(ids), model.predict(ids))
