"""What fit grows: class_weight, top-k metrics, stopping on a non-finite loss, initial_epoch."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fastnn
from fastnn import layers as L
from fastnn import metrics, optimizers


def _data(n=60, d=5, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x, rng.integers(0, classes, n)


def _model(units=4, activation="softmax", loss="sparse_categorical_crossentropy", metric_names=(), seed=0):
    fastnn.set_seed(seed)
    model = fastnn.Sequential([L.Input((5,)), L.Dense(6, activation="tanh"), L.Dense(units, activation=activation)])
    model.compile(optimizers.SGD(0.1, momentum=0.9), loss, list(metric_names))
    return model


def _fit_weights(model, x, y, **kw):
    fastnn.set_seed(7)  # the same shuffling for both runs compared
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, **kw)
    return model.get_weights()


# ---- class_weight ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["sparse", "onehot", "binary"])
def test_class_weight_equals_the_equivalent_sample_weight(kind):
    x, labels = _data(classes=2 if kind == "binary" else 4)
    table = {0: 0.5, 1: 3.0} if kind == "binary" else {0: 0.5, 2: 4.0, 3: 0.0}  # class 1 missing: weight 1
    per_sample = np.array([table.get(int(c), 1.0) for c in labels], np.float32)
    if kind == "sparse":
        make, y = (lambda: _model()), labels
    elif kind == "onehot":
        make, y = (lambda: _model(loss="categorical_crossentropy")), np.eye(4, dtype=np.float32)[labels]
    else:
        make, y = (lambda: _model(1, "sigmoid", "binary_crossentropy")), labels[:, None].astype(np.float32)
    by_class = _fit_weights(make(), x, y, class_weight=table)
    by_sample = _fit_weights(make(), x, y, sample_weight=per_sample)
    plain = _fit_weights(make(), x, y)
    assert all(np.array_equal(a, b) for a, b in zip(by_class, by_sample))
    assert not all(np.array_equal(a, b) for a, b in zip(by_class, plain))


def test_class_weight_multiplies_sample_weight_and_spares_validation():
    x, y = _data()
    sw = np.linspace(0.5, 1.5, len(x)).astype(np.float32)
    table = {1: 2.0, 3: 0.25}
    combined = sw * np.array([table.get(int(c), 1.0) for c in y], np.float32)
    both = _fit_weights(_model(), x, y, class_weight=table, sample_weight=sw)
    product = _fit_weights(_model(), x, y, sample_weight=combined)
    assert all(np.array_equal(a, b) for a, b in zip(both, product))

    seen = []

    class ValLoss(fastnn.callbacks.Callback):
        def on_test_end(self, logs=None):
            seen.append(logs["loss"])

    model = _model()
    model.fit(x, y, epochs=1, verbose=0, validation_split=0.25, class_weight={0: 100.0}, callbacks=[ValLoss()])
    assert seen[0] == pytest.approx(model.evaluate(x[45:], y[45:], verbose=0))  # unweighted validation


def test_class_weight_errors():
    x, y = _data()
    model = _model()
    before = model.get_weights()
    cases = [({4: 1.0}, ValueError, r"class_weight has class 4, but the model has 4 classes \(indices 0 to 3\)"),
             ({-1: 1.0}, ValueError, "class_weight has class -1"),
             ({"cat": 1.0}, TypeError, "keys must be class indices"),
             ({1.5: 1.0}, TypeError, "keys must be class indices"),
             ({0: -2.0}, ValueError, r"class_weight\[0\] must be >= 0"),
             ({0: float("nan")}, ValueError, r"class_weight\[0\] must be finite"),
             ([1.0, 2.0], TypeError, "class_weight must be a dict")]
    for class_weight, error, message in cases:
        with pytest.raises(error, match=message):
            model.fit(x, y, epochs=1, verbose=0, class_weight=class_weight)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))
    binary = _model(1, "sigmoid", "binary_crossentropy")
    with pytest.raises(ValueError, match="class_weight has class 2, but the model has 2 classes"):
        binary.fit(x, (y > 1)[:, None], epochs=1, verbose=0, class_weight={2: 1.0})
    with pytest.raises(ValueError, match="needs targets 0 or 1"):
        binary.fit(x, y[:, None].astype(np.float32), epochs=1, verbose=0, class_weight={1: 2.0})
    seq = fastnn.Sequential([L.Input((5,)), L.Dense(4), L.Reshape((2, 2))])
    seq.compile("sgd", "mse")
    with pytest.raises(ValueError, match=r"class_weight needs a model output of shape \(batch, classes\)"):
        seq.fit(x, np.zeros((60, 2, 2), np.float32), verbose=0, class_weight={0: 1.0})


# ---- top-k metrics -------------------------------------------------------------------------------------------------
def _top_k_reference(scores, labels, k):
    """Hits by sorting (valid when no two scores in a row tie)."""
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.mean([label in row for label, row in zip(labels, top)]))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 70), classes=st.integers(1, 23), k=st.integers(1, 25), seed=st.integers(0, 2**31))
def test_top_k_metrics_match_numpy(n, classes, k, seed):
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal((n, classes)).astype(np.float32)
    labels = rng.integers(0, classes, n)
    expected = _top_k_reference(scores, labels, k)
    sparse = metrics.SparseTopKCategoricalAccuracy(k)
    dense = metrics.TopKCategoricalAccuracy(k)
    half = (n + 1) // 2  # two batches (when n > 1): the metric averages over batches
    for lo, hi in ((0, half), (half, n))[:1 + (n > 1)]:
        sparse.update(scores[lo:hi], labels[lo:hi], False)
        dense.update(scores[lo:hi], np.eye(classes, dtype=np.float32)[labels[lo:hi]], False)
    assert sparse.result() == pytest.approx(expected) and dense.result() == pytest.approx(expected)


def test_top_k_ties_at_the_boundary_count_as_hits_and_weights_apply():
    scores = np.array([[0.1, 0.5, 0.5, 0.2], [0.4, 0.3, 0.3, 0.3], [0.1, 0.2, 0.3, 0.4]], np.float32)
    m = metrics.SparseTopKCategoricalAccuracy(k=1)
    m.update(scores, np.array([2, 1, 0]), False, np.array([1.0, 2.0, 5.0], np.float32))
    assert m.result() == pytest.approx(1.0 / 8.0)  # row 0 hits (tie at the top); rows 1, 2 miss
    with pytest.raises(ValueError, match="k must be >= 1"):
        metrics.SparseTopKCategoricalAccuracy(k=0)


def test_top_k_metrics_by_name_in_fit_and_evaluate():
    x, y = _data(classes=4)
    model = _model(metric_names=["sparse_top_k_categorical_accuracy", "accuracy"])
    history = model.fit(x, y, epochs=1, verbose=0, validation_split=0.2)
    assert {"sparse_top_k_categorical_accuracy", "val_sparse_top_k_categorical_accuracy"} <= set(history.history)
    top5 = model.evaluate(x, y, verbose=0, return_dict=True)["sparse_top_k_categorical_accuracy"]
    assert top5 == 1.0  # 4 classes: every label is in the top 5
    k2 = metrics.SparseTopKCategoricalAccuracy(k=2)
    model = _model(metric_names=[k2])
    result = model.evaluate(x, y, verbose=0, return_dict=True)
    assert result["sparse_top_k_categorical_accuracy"] == pytest.approx(_top_k_reference(model.predict(x), y, 2))
    onehot = _model(loss="categorical_crossentropy", metric_names=["top_k_categorical_accuracy"])
    assert onehot.evaluate(x, np.eye(4)[y], verbose=0, return_dict=True)["top_k_categorical_accuracy"] == 1.0


def test_metric_that_does_not_fit_the_targets_names_the_right_one():
    x, y = _data()
    with pytest.raises(ValueError, match="'top_k_categorical_accuracy' expects one-hot rows as targets, but the "
                                         "loss 'sparse_categorical_crossentropy' takes class indices; use "
                                         "'sparse_top_k_categorical_accuracy'"):
        _model(metric_names=["top_k_categorical_accuracy"]).fit(x, y, verbose=0)
    with pytest.raises(ValueError, match="use 'categorical_accuracy'"):
        _model(loss="categorical_crossentropy", metric_names=["sparse_categorical_accuracy"]).evaluate(
            x, np.eye(4)[y], verbose=0)


def test_mae_and_mse_metrics_match_numpy():
    x, y = _data()
    t = np.eye(4, dtype=np.float32)[y]
    model = _model(activation="tanh", loss="mse", metric_names=["mae", "mse"])
    result = model.evaluate(x, t, verbose=0, return_dict=True)
    out = model.predict(x).astype(np.float64)
    assert result["mae"] == pytest.approx(np.abs(out - t).mean(), rel=1e-6)
    assert result["mse"] == pytest.approx(((out - t) ** 2).mean(), rel=1e-6)


# ---- non-finite loss, initial_epoch ---------------------------------------------------------------------------------
def test_non_finite_loss_names_epoch_and_batch_and_keeps_the_last_good_weights():
    fastnn.set_seed(0)
    model = fastnn.Sequential([L.Input((4,)), L.Dense(3)])
    model.compile(optimizer=optimizers.SGD(1e10), loss="mse")
    x = np.random.default_rng(1).standard_normal((12, 4)).astype(np.float32) * 1e3
    good, calls = [], []

    class Snapshot(fastnn.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):  # also called for the failing batch, with its loss
            calls.append(logs["loss"])
            if np.isfinite(logs["loss"]):
                good.append(model.get_weights())

    with pytest.raises(FloatingPointError) as info:
        model.fit(x, np.ones((12, 3)) * 1e15, batch_size=3, epochs=5, verbose=0, shuffle=False,
                  callbacks=[Snapshot()])
    assert good, "the loss should stay finite for at least one step"
    epoch, batch = divmod(len(good), 4)  # 4 batches per epoch; the failing one is the next after the last good
    assert f"training stopped at epoch {epoch + 1}, batch {batch + 1}: the loss became" in str(info.value)
    assert "weights were left as they were" in str(info.value) and len(calls) == len(good) + 1
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), good[-1]))


def test_initial_epoch_resumes_the_epoch_count():
    x, y = _data()
    model = _model()
    history = model.fit(x, y, epochs=5, initial_epoch=3, verbose=0)
    assert history.epoch == [3, 4] and len(history.history["loss"]) == 2
    assert model.fit(x, y, epochs=3, initial_epoch=3, verbose=0).epoch == []
