"""Sequential: the Keras/PyTorch-style API, losses through whole models, reproducibility, bad input."""
import io

import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn import losses
from gradcheck import check_model_gradients


def _data(n=64, d=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 1).astype(np.int64)
    return x, np.minimum(y, classes - 1)


def _mlp(out=3, activation="softmax", hidden="tanh", seed=0):
    fastnn.set_seed(seed)
    return fastnn.Sequential([L.Input((6,)), L.Dense(5, activation=hidden), L.Dense(out, activation=activation)])


@pytest.mark.parametrize("loss,activation,target", [
    ("sparse_categorical_crossentropy", "softmax", "sparse"),            # fused softmax + CE
    ("categorical_crossentropy", "softmax", "onehot"),                   # fused, dense targets
    (losses.SparseCategoricalCrossentropy(from_logits=True), None, "sparse"),
    (losses.CategoricalCrossentropy(from_logits=True), None, "onehot"),
    ("mse", "tanh", "onehot"),
    ("binary_crossentropy", "sigmoid", "onehot"),                        # fused sigmoid + BCE
    (losses.BinaryCrossentropy(from_logits=True), None, "onehot"),
])
def test_model_gradients_match_finite_differences(loss, activation, target):
    x, y = _data(16)
    t = y if target == "sparse" else np.eye(3, dtype=np.float32)[y]
    model = _mlp(activation=activation)
    model.compile(optimizer=fastnn.optimizers.SGD(0.1), loss=loss)
    check_model_gradients(model, x, t)
    w = np.linspace(0.5, 2.0, len(x)).astype(np.float32)
    check_model_gradients(model, x, t, sample_weight=w)


def test_probability_cross_entropy_path_matches_fused_path():
    """An output that is already a probability (softmax through an Activation layer after Dropout, which
    cannot fuse) gives the same loss as the fused path."""
    x, y = _data(32)
    fused = _mlp()
    fused.compile(loss="sparse_categorical_crossentropy")
    fastnn.set_seed(0)
    split = fastnn.Sequential([L.Input((6,)), L.Dense(5, activation="tanh"), L.Dense(3), L.Activation("softmax"),
                               L.Dropout(0.0)])
    split.compile(loss="sparse_categorical_crossentropy")
    split.set_weights(fused.get_weights())
    assert split._fused_layer is None and fused._fused_layer is not None
    np.testing.assert_allclose(split.evaluate(x, y, verbose=0), fused.evaluate(x, y, verbose=0), rtol=1e-5)
    check_model_gradients(split, x[:8], y[:8])


def test_fused_loss_is_stable_for_huge_logits():
    model = fastnn.Sequential([L.Input((2,)), L.Dense(2, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy")
    model.set_weights([np.array([[1e4, -1e4], [0, 0]], np.float32), np.zeros(2, np.float32)])
    loss = model.test_on_batch(np.array([[1, 0]], np.float32), np.array([1]))
    assert np.isfinite(loss) and loss == pytest.approx(2e4, rel=1e-5)
    np.testing.assert_allclose(model.predict(np.array([[1, 0]], np.float32)), [[1, 0]])


def test_training_learns_and_history_has_keras_keys():
    x, y = _data(256)
    model = _mlp()
    model.compile(optimizer=fastnn.optimizers.SGD(0.1, momentum=0.9), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=8, validation_split=0.25, verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history.history["loss"][-1] < history.history["loss"][0] * 0.6
    loss, acc = model.evaluate(x, y, verbose=0)
    assert acc > 0.9
    assert model.evaluate(x, y, verbose=0, return_dict=True) == {"loss": loss, "accuracy": acc}
    np.testing.assert_allclose(model.predict(x, batch_size=7), model.predict_on_batch(x), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_step_follows_keras_rule(momentum, nesterov):
    x, y = _data(8)
    model = _mlp()
    model.compile(optimizer=fastnn.optimizers.SGD(0.05, momentum=momentum, nesterov=nesterov),
                  loss="sparse_categorical_crossentropy")
    w = model._arena.params.astype(np.float64)
    v = np.zeros_like(w)
    for _ in range(3):
        from gradcheck import model_gradients
        g = model_gradients(model, x, y).astype(np.float64)
        model.train_on_batch(x, y)
        v = momentum * v - 0.05 * g
        w = w + (momentum * v - 0.05 * g if nesterov else v)
        np.testing.assert_allclose(model._arena.params, w, rtol=1e-5, atol=1e-6)


def _train_run(threads, seed=11):
    old = fastnn.get_num_threads()
    fastnn.set_num_threads(threads)
    try:
        x, y = _data(200, seed=2)
        fastnn.set_seed(seed)
        model = fastnn.Sequential([L.Input((6,)), L.Dense(64, activation="relu"), L.Dropout(0.3),
                                   L.Dense(3, activation="softmax")])
        model.compile(optimizer=fastnn.optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=32, epochs=3, verbose=0)
        return model.get_weights()
    finally:
        fastnn.set_num_threads(old)


def test_same_seed_gives_bit_identical_training_at_any_thread_count():
    a, b, c = _train_run(1), _train_run(2), _train_run(2)
    for wa, wb, wc in zip(a, b, c):
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_array_equal(wb, wc)
    assert not all(np.array_equal(wa, wd) for wa, wd in zip(a, _train_run(1, seed=12)))


def test_structure_api_and_pytorch_habits():
    model = _mlp()
    assert len(model) == 2 and model[0] is model.layers[0] and list(model) == model.layers
    assert model.input_shape == (None, 6) and model.output_shape == (None, 3)
    assert model.count_params() == 6 * 5 + 5 + 5 * 3 + 3
    assert [p.shape for p in model.parameters()] == [(6, 5), (5,), (5, 3), (3,)]
    state = model.state_dict()
    assert list(state) == ["0.kernel", "0.bias", "1.kernel", "1.bias"]
    other = _mlp(seed=9)
    other.load_state_dict(state)
    x, _ = _data(4)
    np.testing.assert_array_equal(other.predict(x), model.predict(x))
    assert "Dense(5, activation='tanh')" in repr(model)
    assert model.get_layer(model[1].name) is model[1]
    text = io.StringIO()
    model.summary(print_fn=lambda s: text.write(s))
    assert "Total params: 53" in text.getvalue()
    out = model.eval()(x)
    np.testing.assert_array_equal(out, model.predict(x))


def test_lazy_build_and_summary_of_unbuilt_model():
    model = fastnn.Sequential([L.Dense(4, activation="relu"), L.Dense(2)])
    lines = []
    model.summary(print_fn=lines.append)
    assert "not built" in lines[0]
    with pytest.raises(ValueError, match="built"):
        model.get_weights()
    model.compile(loss="mse")
    model.fit(np.zeros((8, 3), np.float32), np.zeros((8, 2), np.float32), verbose=0)
    assert model.input_shape == (None, 3) and model.count_params() == 3 * 4 + 4 + 4 * 2 + 2


def test_add_after_build_keeps_existing_weights():
    model = _mlp()
    before = model.get_weights()
    model.add(L.Dense(2))
    after = model.get_weights()
    assert len(after) == 6
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


def test_fit_verbose_modes_print(capsys):
    x, y = _data(64)
    model = _mlp()
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, verbose=2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("Epoch 1/2") and "accuracy" in lines[0]
    model.fit(x, y, epochs=1, verbose=1)
    assert "samples/s" in capsys.readouterr().out
    model.fit(x, y, epochs=1, verbose=0)
    assert capsys.readouterr().out == ""


def test_callbacks_receive_keras_hooks_and_can_stop():
    seen = []

    class Stop:
        def set_model(self, model):
            self.model = model

        def on_epoch_end(self, epoch, logs):
            seen.append((epoch, sorted(logs)))
            if epoch == 1:
                self.model.stop_training = True

    x, y = _data(64)
    model = _mlp()
    model.compile(loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=10, verbose=0, callbacks=[Stop()])
    assert [e for e, _ in seen] == [0, 1] and len(history.history["loss"]) == 2
