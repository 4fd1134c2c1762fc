"""Classification losses and accuracy metrics on outputs with more axes than (batch, classes), e.g. one
distribution per time step (batch, T, classes) with labels (batch, T): the mean over all positions, as Keras."""
import numpy as np
import pytest

import fastnn
from fastnn import _reference, layers, losses, metrics, ops
from gradcheck import check_model_gradients


def sequence_problem(n, positions, c, seed, weighted=False):
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((n,) + positions + (c,)) * 2).astype(np.float32)
    labels = rng.integers(0, c, (n,) + positions)
    w = (rng.random(n) * 2).astype(np.float32) if weighted else None
    return z, labels, w


@pytest.mark.parametrize("positions", [(1,), (7,), (3, 5)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dense", [False, True])
def test_matches_reference_and_row_by_row(positions, weighted, dense):
    z, labels, w = sequence_problem(4, positions, 6, seed=len(positions) + weighted, weighted=weighted)
    t = np.eye(6, dtype=np.float32)[labels] if dense else labels
    loss, grad = ops.softmax_cross_entropy(z, t, w)
    want_loss, want_grad = _reference.softmax_cross_entropy(z, t, w)
    assert grad.shape == z.shape and grad.dtype == np.float32
    assert loss == pytest.approx(want_loss, rel=2e-6)
    np.testing.assert_allclose(grad, want_grad, rtol=2e-5, atol=1e-6 * np.abs(want_grad).max())
    # the same as the mean over every position, each weighed by its sample's weight
    per_position = np.array([[ops.softmax_cross_entropy(z[i][p][None], [labels[i][p]])[0]
                              for p in np.ndindex(positions)] for i in range(4)])
    weights = np.ones(4) if w is None else w
    assert loss == pytest.approx((per_position * weights[:, None]).mean(), rel=1e-5)


@pytest.mark.parametrize("weighted", [False, True])
def test_gradient_matches_finite_differences(weighted):
    z, labels, w = sequence_problem(3, (4,), 5, seed=11, weighted=weighted)
    z64 = z.astype(np.float64)
    numeric = np.zeros_like(z64)
    h = 1e-5
    for idx in np.ndindex(z.shape):
        e = np.zeros_like(z64)
        e[idx] = h
        numeric[idx] = (_reference.softmax_cross_entropy(z64 + e, labels, w)[0]
                        - _reference.softmax_cross_entropy(z64 - e, labels, w)[0]) / (2 * h)
    _, grad = ops.softmax_cross_entropy(z, labels, w)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-7)


def test_labels_with_a_trailing_axis_of_one_are_class_indices():
    z, labels, _ = sequence_problem(2, (3,), 4, seed=2)
    a, b = ops.softmax_cross_entropy(z, labels[..., None]), ops.softmax_cross_entropy(z, labels)
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])


def test_bad_labels_name_the_sample_and_position():
    z, labels, _ = sequence_problem(3, (5,), 4, seed=3)
    labels[2, 3] = 9
    with pytest.raises(ValueError, match=r"class index 9 out of range at sample 2, position 3: .*4 classes"):
        ops.softmax_cross_entropy(z, labels)
    labels[2, 3] = -1
    with pytest.raises(ValueError, match=r"class index -1 out of range at sample 2, position 3"):
        ops.softmax_cross_entropy(z, labels)
    with pytest.raises(ValueError, match=r"one class index per output position, shape \(3, 5\)"):
        ops.softmax_cross_entropy(z, labels[:, 0])
    with pytest.raises(ValueError, match=r"labels has shape \(3, 4\).*shape \(3, 5\)"):
        ops.softmax_cross_entropy(z, labels[:, :4])
    with pytest.raises(ValueError, match=r"dense labels must have the logits' shape \(3, 5, 4\)"):
        ops.softmax_cross_entropy(z, np.zeros((3, 5, 3), np.float32))
    with pytest.raises(ValueError, match=r"empty axis"):
        ops.softmax_cross_entropy(np.zeros((3, 0, 4), np.float32), np.zeros((3, 0), np.int64))
    with pytest.raises(ValueError, match=r"batch axis and a class axis"):
        ops.softmax_cross_entropy(np.zeros(4, np.float32), [0])


def per_timestep_model(seed=0, activation="softmax"):
    fastnn.set_seed(seed)
    model = fastnn.Sequential([layers.Input((6, 3)), layers.Dense(5, activation="tanh"),
                               layers.Dense(4, activation=activation)])
    return model


@pytest.mark.parametrize("loss_name", ["sparse_categorical_crossentropy", "categorical_crossentropy"])
def test_model_trains_per_timestep(loss_name):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 6, 3)).astype(np.float32)
    labels = rng.integers(0, 4, (8, 6))
    y = labels if loss_name.startswith("sparse") else np.eye(4, dtype=np.float32)[labels]
    w = rng.random(8).astype(np.float32)
    model = per_timestep_model()
    model.compile("sgd", loss_name, metrics=["accuracy"])
    probs = model.predict(x)
    loss, accuracy = model.test_on_batch(x, y, sample_weight=w)
    want = -np.log(np.take_along_axis(probs.astype(np.float64), labels[..., None], -1)[..., 0])
    assert loss == pytest.approx((want * w[:, None]).mean(), rel=1e-5)
    hits = probs.argmax(-1) == labels
    assert accuracy == pytest.approx((hits * w[:, None]).sum() / (w.sum() * 6), rel=1e-6)
    check_model_gradients(model, x, y, sample_weight=w)
    history = model.fit(x, y, batch_size=3, epochs=2, verbose=0, validation_split=0.25)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_probability_outputs_match_the_fused_path():
    """A softmax the loss cannot fuse (from_logits=False on probabilities) gives the same loss and gradient."""
    z, labels, w = sequence_problem(3, (4,), 5, seed=5, weighted=True)
    p = ops.activation(z, "softmax")
    for loss in (losses.SparseCategoricalCrossentropy(), losses.CategoricalCrossentropy()):
        t = loss.targets(labels if loss.name.startswith("sparse") else np.eye(5)[labels], 3, (4, 5))
        g_fused, g_prob = np.empty_like(z), np.empty_like(z)
        fused = loss.compute(z, t, w, g_fused, True)
        prob = loss.compute(p, t, w, g_prob, False)
        assert prob == pytest.approx(fused, rel=1e-5)
        # d loss / d p, pulled back through the softmax, is the fused gradient d loss / d z
        pulled = p * (g_prob - (g_prob * p).sum(-1, keepdims=True))
        np.testing.assert_allclose(pulled, g_fused, rtol=1e-3, atol=1e-6)


def test_top_k_accuracy_per_position():
    z, labels, _ = sequence_problem(4, (3,), 6, seed=6)
    metric = metrics.SparseTopKCategoricalAccuracy(k=2)
    metric.update(z, labels, True)
    top2 = np.argsort(-z, axis=-1)[..., :2]
    assert metric.result() == pytest.approx((top2 == labels[..., None]).any(-1).mean())


def test_model_label_errors_name_the_position():
    model = per_timestep_model()
    model.compile("sgd", "sparse_categorical_crossentropy")
    x = np.zeros((2, 6, 3), np.float32)
    labels = np.zeros((2, 6), np.int64)
    labels[1, 4] = 4
    with pytest.raises(ValueError, match=r"y has class index 4 out of range at sample 1, position 4"):
        model.train_on_batch(x, labels)
    with pytest.raises(ValueError, match=r"y must hold one class index per output position, shape \(2, 6\)"):
        model.train_on_batch(x, np.zeros(2, np.int64))
