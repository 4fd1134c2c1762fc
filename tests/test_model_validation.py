"""Bad input to a model never crashes and never lies: a clear exception saying what was wrong."""
import numpy as np
import pytest

import fastnn
from fastnn import layers as L


@pytest.fixture
def model():
    fastnn.set_seed(0)
    m = fastnn.Sequential([L.Input((4,)), L.Dense(8, activation="relu"), L.Dense(3, activation="softmax")])
    m.compile(optimizer=fastnn.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


X = np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32)
Y = np.arange(10) % 3


def test_use_before_compile():
    m = fastnn.Sequential([L.Input((4,)), L.Dense(3)])
    for call in (lambda: m.fit(X, Y, verbose=0), lambda: m.train_on_batch(X, Y), lambda: m.evaluate(X, Y)):
        with pytest.raises(RuntimeError, match="compile"):
            call()
    assert m.predict(X).shape == (10, 3)  # predicting needs no compile, as in Keras


@pytest.mark.parametrize("bad,match", [
    (np.zeros((10, 5), np.float32), r"per-sample shape \(5,\).*expects \(4,\)"),
    (np.zeros((10, 4, 1), np.float32), "expects"),
    (np.zeros(4, np.float32), "batch axis"),
    (np.zeros((0, 4), np.float32), "empty"),
    (np.array([[np.nan, 0, 0, 0]], np.float32), "NaN or Inf"),
    (np.array([[np.inf, 0, 0, 0]], np.float64), "NaN or Inf"),
    (np.array([["a", "b", "c", "d"]]), "numbers"),
    (np.array([[1e300, 0, 0, 0]]), "float32's range"),
])
def test_bad_x(model, bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        model.predict(bad)
    with pytest.raises((ValueError, TypeError), match=match):
        model.train_on_batch(bad, np.zeros(len(bad), np.int64))


@pytest.mark.parametrize("labels,match", [
    (np.full(10, 3), r"class index 3 out of range.*3 classes"),
    (np.full(10, -1), "out of range"),
    (np.zeros(9, np.int64), "9 labels but x has 10"),
    (np.full(10, 0.5), "whole-number"),
    (np.zeros((10, 2), np.int64), "1-D"),
    (np.array(["a"] * 10), "integer"),
])
def test_bad_labels(model, labels, match):
    with pytest.raises((ValueError, TypeError), match=match):
        model.fit(X, labels, verbose=0)


@pytest.mark.parametrize("x,labels,match", [
    (X[:1], np.array([3]), r"class index 3 out of range"),
    (X[:1], np.array([-1]), r"class index -1 out of range"),
    (X[:1], np.array([0, 1]), "2 labels but x has 1"),
    (np.array([[0, 0, 0, np.inf]], np.float32), Y[:1], "NaN or Inf"),
    (np.zeros((1, 5), np.float32), Y[:1], r"per-sample shape \(5,\)"),
])
def test_bad_batch_of_one(model, x, labels, match):
    """The cheap checks of the usual batch (float32 x of the built shape, int64 labels) let nothing through."""
    model.train_on_batch(X[:1], Y[:1])  # a step first: the planned fast path is in place
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match=match):
        model.train_on_batch(x, labels)
    for w, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, b)


def test_accepted_input_forms(model):
    """Non-contiguous, read-only, float64 and integer inputs are accepted (copied or cast when lossless)."""
    wide = np.zeros((10, 8), np.float32)
    wide[:, ::2] = X
    ro = X.copy()
    ro.flags.writeable = False
    expected = model.predict(X)
    np.testing.assert_array_equal(model.predict(wide[:, ::2]), expected)
    np.testing.assert_array_equal(model.predict(ro), expected)
    np.testing.assert_array_equal(model.predict(X.astype(np.float64)), expected)
    assert model.predict(np.ones((2, 4), np.int32)).shape == (2, 3)
    model.train_on_batch(ro, Y.astype(np.float64))
    assert np.isfinite(model.evaluate(list(map(list, X)), list(Y), verbose=0)[0])


def test_bad_arguments(model):
    with pytest.raises(ValueError, match="unknown loss 'crossent'.*valid names"):
        model.compile(loss="crossent")
    with pytest.raises(ValueError, match="unknown optimizer 'adamx'"):
        model.compile(optimizer="adamx", loss="mse")
    with pytest.raises(ValueError, match="unknown metric 'acuracy'"):
        model.compile(loss="mse", metrics=["acuracy"])
    with pytest.raises(ValueError, match="needs a loss"):
        model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(X, Y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(X, Y, validation_split=1.0, verbose=0)
    with pytest.raises(ValueError, match="verbose"):
        model.fit(X, Y, verbose=5)
    with pytest.raises(ValueError, match="validation_data"):
        model.fit(X, Y, validation_data=X, verbose=0)
    with pytest.raises(ValueError, match="sample_weight has 3"):
        model.fit(X, Y, sample_weight=np.ones(3), verbose=0)
    for lr in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="learning_rate"):
            fastnn.optimizers.SGD(lr)
    with pytest.raises(ValueError, match="momentum"):
        fastnn.optimizers.SGD(0.1, momentum=1.5)
    opt = fastnn.optimizers.SGD(0.1)
    with pytest.raises(ValueError, match="learning_rate"):
        opt.learning_rate = float("inf")


def test_set_weights_checks_count_and_shapes(model):
    weights = model.get_weights()
    with pytest.raises(ValueError, match="expects 4 arrays"):
        model.set_weights(weights[:3])
    bad = list(weights)
    bad[0] = np.zeros((5, 8), np.float32)
    with pytest.raises(ValueError, match=r"weights\[0\] has shape \(5, 8\), expected \(4, 8\)"):
        model.set_weights(bad)
    bad[0] = np.full((4, 8), np.nan, np.float32)
    with pytest.raises(ValueError, match="NaN"):
        model.set_weights(bad)
    np.testing.assert_array_equal(model.get_weights()[0], weights[0])  # nothing half-written


def test_structure_errors():
    with pytest.raises(TypeError, match="fastnn layer"):
        fastnn.Sequential([L.Input((3,)), "dense"])
    with pytest.raises(ValueError, match="first entry"):
        fastnn.Sequential([L.Dense(2), L.Input((3,))])
    with pytest.raises(ValueError, match="already"):
        fastnn.Sequential([L.Dense(2, name="a"), L.Dense(2, name="a")])
    with pytest.raises(ValueError, match="no layers"):
        fastnn.Sequential().predict(X)


def test_nan_loss_stops_training_and_keeps_last_good_weights():
    fastnn.set_seed(0)
    m = fastnn.Sequential([L.Input((4,)), L.Dense(3)])
    m.compile(optimizer=fastnn.optimizers.SGD(1e10), loss="mse")
    snapshots = []

    class Snapshot:
        def on_train_batch_end(self, step, logs):
            snapshots.append(m.get_weights())

    with pytest.raises(FloatingPointError, match=r"epoch \d+, batch \d+: the loss became"):
        m.fit(X * 1e3, np.ones((10, 3)) * 1e15, batch_size=2, epochs=3, verbose=0, shuffle=False,
              callbacks=[Snapshot()])
    assert snapshots, "the loss should stay finite for at least one step"
    for now, last_good in zip(m.get_weights(), snapshots[-1]):
        np.testing.assert_array_equal(now, last_good)
