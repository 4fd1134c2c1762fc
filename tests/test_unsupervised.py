"""fastnn.unsupervised: RBM (CD-k, PCD, Bernoulli and Gaussian visibles) and DBN (pre-training, to_sequential)."""
import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pytest

import fastnn
from fastnn import _reference as ref
from fastnn.unsupervised import DBN, RBM

from kernel_helpers import threads


@pytest.fixture(scope="module")
def digits():
    """The shipped 8x8 digits scaled to [0, 1]: (x_train, y_train), (x_test, y_test)."""
    (x, y), (xt, yt) = fastnn.datasets.load_digits()
    return (x.reshape(len(x), -1) / 16.0, y), (xt.reshape(len(xt), -1) / 16.0, yt)


def _sigmoid(z):
    return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)


def _seeded_rbm(nv, nh, rng, **kwargs):
    rbm = RBM(nh, seed=3, **kwargs)
    rbm.set_weights([rng.normal(0, 0.3, (nv, nh)), rng.normal(0, 0.5, nv), rng.normal(0, 0.5, nh)])
    return rbm


def _reference_cd(rbm, params, v0, counter=0):
    """One CD-k update as documented, in NumPy, drawing from the same stream (key, counter, counter + 1, ...).
    Returns the updated [weights, visible_bias, hidden_bias] and the summed squared reconstruction error."""
    w, b, c = (p.astype(np.float64) for p in params)
    gaussian = rbm.visible == "gaussian"

    def visible(h):
        z = h.astype(np.float64) @ w.T + b
        return z.astype(np.float32) if gaussian else _sigmoid(z)

    h0 = _sigmoid(v0.astype(np.float64) @ w + c)
    states = ref.rbm_sample(h0, rbm._key, counter)
    counter += 1
    vk = visible(states)
    error = float(np.square(vk.astype(np.float64) - v0).sum())
    for step in range(rbm.k):
        if step > 0:
            vk = visible(states)
        if step < rbm.k - 1:
            vk = ref.rbm_sample(vk, rbm._key, counter, "gaussian" if gaussian else "bernoulli")
            counter += 1
        hk = _sigmoid(vk.astype(np.float64) @ w + c)
        if step < rbm.k - 1:
            states = ref.rbm_sample(hk, rbm._key, counter)
            counter += 1
    state = [p.astype(np.float32) for p in params] + [np.zeros_like(p, dtype=np.float32) for p in params]
    ref.rbm_update(v0, h0, vk, hk, *state, rbm.learning_rate, rbm.momentum, rbm.weight_decay)
    return state[:3], error


@pytest.mark.parametrize("visible, k", [("bernoulli", 1), ("bernoulli", 3), ("gaussian", 1), ("gaussian", 2)])
def test_cd_update_matches_numpy_reference_fed_the_same_stream(visible, k):
    rng = np.random.default_rng(k)
    v0 = rng.random((20, 9)).astype(np.float32)
    if visible == "gaussian":
        v0 = rng.normal(size=(20, 9)).astype(np.float32)
    rbm = _seeded_rbm(9, 6, rng, visible=visible, k=k, learning_rate=0.05, weight_decay=0.001)
    params = rbm.get_weights()
    history = rbm.fit(v0, epochs=1, batch_size=20, shuffle=False, verbose=0)
    (w, b, c), error = _reference_cd(rbm, params, v0)
    np.testing.assert_allclose(rbm.weights, w, atol=2e-6)
    np.testing.assert_allclose(rbm.visible_bias, b, atol=2e-6)
    np.testing.assert_allclose(rbm.hidden_bias, c, atol=2e-6)
    assert history.history["reconstruction_error"][0] == pytest.approx(error / v0.size, rel=1e-5)
    assert rbm._counter == 2 * k - 1  # the documented draws: h0, then a visible and a hidden per extra step


def _free_energy_by_enumeration(rbm, v):
    """-log sum_h exp(-E(v, h)) over all binary h (E with unit-variance Gaussian or Bernoulli visibles)."""
    w, b, c = (p.astype(np.float64) for p in rbm.get_weights())
    hs = np.array(list(itertools.product([0.0, 1.0], repeat=rbm.n_hidden)))
    v = v.astype(np.float64)
    visible_term = 0.5 * np.square(v - b).sum(axis=1) if rbm.visible == "gaussian" else -(v @ b)
    energies = visible_term[:, None] - hs @ c - (v @ w) @ hs.T  # (n_samples, 2**n_hidden)
    return -np.logaddexp.reduce(-energies, axis=1)


@pytest.mark.parametrize("visible", ["bernoulli", "gaussian"])
def test_free_energy_matches_numpy(visible):
    rng = np.random.default_rng(11)
    rbm = _seeded_rbm(5, 4, rng, visible=visible)
    v = rng.random((13, 5)).astype(np.float32)
    if visible == "gaussian":
        v = rng.normal(size=(13, 5)).astype(np.float32)
    got = rbm.free_energy(v)
    assert got.shape == (13,)
    np.testing.assert_allclose(got, _free_energy_by_enumeration(rbm, v), rtol=1e-5, atol=1e-5)
    # The closed form, on a larger model.
    big = _seeded_rbm(40, 30, rng, visible=visible)
    x = rng.random((7, 40)).astype(np.float32)
    w, b, c = (p.astype(np.float64) for p in big.get_weights())
    visible_term = 0.5 * np.square(x - b).sum(axis=1) if visible == "gaussian" else -(x @ b)
    np.testing.assert_allclose(big.free_energy(x), visible_term - np.logaddexp(0, x @ w + c).sum(axis=1),
                               rtol=1e-5)


def test_transform_and_reconstruct_are_the_mean_field_passes():
    rng = np.random.default_rng(5)
    rbm = _seeded_rbm(12, 7, rng)
    x = rng.random((9, 12)).astype(np.float32)
    w, b, c = (p.astype(np.float64) for p in rbm.get_weights())
    h = 1 / (1 + np.exp(-(x @ w + c)))
    np.testing.assert_allclose(rbm.transform(x), h, rtol=1e-5)
    np.testing.assert_allclose(rbm.reconstruct(x), 1 / (1 + np.exp(-(h @ w.T + b))), rtol=1e-5)


def _fit_digits(digits, epochs=5, **kwargs):
    (x, _), _ = digits
    rbm = RBM(64, seed=0, **kwargs)
    return rbm, rbm.fit(x, epochs=epochs, batch_size=50, verbose=0).history["reconstruction_error"]


def test_reconstruction_error_falls_on_digits(digits):
    (x, _), (xt, _) = digits
    rbm, errors = _fit_digits(digits, epochs=8)
    assert len(errors) == 8
    assert errors[-1] < 0.6 * errors[0], errors
    # Held-out digits are reconstructed far better than by the mean image.
    baseline = np.square(xt - x.mean(axis=0)).mean()
    assert np.square(rbm.reconstruct(xt) - xt).mean() < 0.4 * baseline


# Persistent chains need a slow, steady parameter change (no momentum step-up) to keep mixing.
PCD = {"persistent": True, "learning_rate": 0.05, "final_momentum": None}


@pytest.mark.parametrize("kwargs", [PCD, {"k": 3}, dict(PCD, k=2)], ids=["pcd1", "cd3", "pcd2"])
def test_pcd_and_cd_k_lower_the_error(digits, kwargs):
    _, errors = _fit_digits(digits, epochs=6, **kwargs)
    assert errors[-1] < 0.8 * errors[0], errors


def test_gaussian_rbm_lowers_the_error_on_standardised_digits(digits):
    (x, _), _ = digits
    z = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-3)
    rbm = RBM(64, visible="gaussian", learning_rate=0.005, seed=1)
    errors = rbm.fit(z, epochs=6, batch_size=50, verbose=0).history["reconstruction_error"]
    assert errors[-1] < 0.7 * errors[0], errors


def test_reconstruction_error_falls_on_mnist(mnist_dir):
    (x, _), _ = fastnn.datasets.load_mnist(mnist_dir)
    x = x[:3000].reshape(3000, -1).astype(np.float32) / 255.0
    rbm = RBM(200, seed=0)
    errors = rbm.fit(x, epochs=2, batch_size=50, verbose=0).history["reconstruction_error"]
    assert errors[1] < errors[0] < np.square(x - x.mean(axis=0)).mean()
    assert np.square(rbm.reconstruct(x) - x).mean() < 0.03


def test_same_seed_same_run_at_any_thread_count(digits):
    (x, _), _ = digits
    runs = []
    for n_threads, seed in ((1, 7), (2, 7), (1, 8)):
        with threads(n_threads):
            # 100 x 600 hidden states and 64 x 600 weights: above the kernels' one-thread thresholds
            rbm = RBM(600, seed=seed, k=2, persistent=True)
            rbm.fit(x[:600], epochs=2, batch_size=100, verbose=0)
            runs.append(rbm.get_weights() + [rbm.sample(3, n_steps=5)])
    for a, b in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(runs[0][0], runs[2][0])


def test_sample_runs_chains():
    rng = np.random.default_rng(2)
    rbm = _seeded_rbm(10, 6, rng)
    first, second = rbm.sample(4, n_steps=3), rbm.sample(4, n_steps=3)
    assert first.shape == (4, 10) and first.dtype == np.float32
    assert ((first > 0) & (first < 1)).all()
    assert not np.array_equal(first, second)  # the stream moves on between calls
    start = (rng.random((2, 10)) > 0.5).astype(np.float32)
    assert rbm.sample(start, n_steps=1).shape == (2, 10)


def test_get_set_weights_and_continued_fit(digits):
    (x, _), _ = digits
    rbm, _ = _fit_digits(digits, epochs=1)
    assert rbm.weights.shape == (64, 64) and rbm.visible_bias.shape == (64,) and rbm.hidden_bias.shape == (64,)
    clone = RBM(64)
    clone.set_weights(rbm.get_weights())
    np.testing.assert_array_equal(clone.transform(x[:5]), rbm.transform(x[:5]))
    rbm.fit(x, epochs=2, verbose=0)
    assert rbm.epochs_trained == 3


def test_dbn_to_sequential_copies_the_rbms(digits):
    (x, _), _ = digits
    dbn = DBN([32, 16], seed=0)
    histories = dbn.fit(x, epochs=[2, 1], batch_size=50, verbose=0)
    assert [len(h.history["reconstruction_error"]) for h in histories] == [2, 1]
    assert [r.weights.shape for r in dbn.rbms] == [(64, 32), (32, 16)]
    model = dbn.to_sequential(10)
    dense = model.layers
    assert [layer.units for layer in dense] == [32, 16, 10]
    assert [layer.activation for layer in dense] == ["sigmoid", "sigmoid", "softmax"]
    weights = model.get_weights()
    for i, rbm in enumerate(dbn.rbms):
        np.testing.assert_array_equal(weights[2 * i], rbm.weights)
        np.testing.assert_array_equal(weights[2 * i + 1], rbm.hidden_bias)
    limit = np.sqrt(6.0 / (16 + 10))  # Glorot-uniform output kernel, zero bias
    assert weights[4].shape == (16, 10) and np.abs(weights[4]).max() <= limit and weights[4].std() > limit / 3
    np.testing.assert_array_equal(weights[5], 0.0)
    # The hidden stack of the model computes the DBN's features, and the copies are independent.
    features = fastnn.Sequential([fastnn.layers.Input((64,))] + [fastnn.layers.Dense(n, activation="sigmoid")
                                                                 for n in (32, 16)])
    features.set_weights(model.get_weights()[:4])
    np.testing.assert_allclose(features.predict(x[:20]), dbn.transform(x[:20]), rtol=1e-5, atol=1e-6)
    before = dbn.rbms[0].weights.copy()
    model.layers[0].weights[0][...] = 0.0
    np.testing.assert_array_equal(dbn.rbms[0].weights, before)
    # Same seed, same output layer.
    np.testing.assert_array_equal(dbn.to_sequential(10).get_weights()[-2], dbn.to_sequential(10).get_weights()[-2])


def test_dbn_initialised_model_fine_tunes_on_digits(digits):
    (x, y), (xt, yt) = digits
    dbn = DBN([100, 100], seed=0)
    dbn.fit(x, epochs=10, batch_size=50, verbose=0)
    model = dbn.to_sequential(10)
    model.compile(optimizer=fastnn.optimizers.SGD(0.1, momentum=0.9), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=10, verbose=0)
    _, accuracy = model.evaluate(xt, yt, verbose=0)
    assert accuracy >= 0.945  # 0.961 measured; the same net from a random start: 0.939


def test_dbn_same_seed_same_pretraining(digits):
    (x, _), _ = digits
    a, b = DBN([20, 10], seed=4), DBN([20, 10], seed=4)
    for dbn in (a, b):
        dbn.fit(x[:500], epochs=1, batch_size=50, verbose=0)
    for ra, rb in zip(a.rbms, b.rbms):
        for wa, wb in zip(ra.get_weights(), rb.get_weights()):
            np.testing.assert_array_equal(wa, wb)


def test_bad_input_is_rejected_clearly(digits):
    (x, _), _ = digits
    with pytest.raises(ValueError, match="n_hidden must be >= 1"):
        RBM(0)
    with pytest.raises(ValueError, match="k must be >= 1"):
        RBM(5, k=0)
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        RBM(5, learning_rate=0.0)
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        RBM(5, learning_rate=-0.1)
    with pytest.raises(ValueError, match="visible must be one of"):
        RBM(5, visible="poisson")
    with pytest.raises(ValueError, match="momentum must be in"):
        RBM(5, momentum=1.0)
    rbm = RBM(5, seed=0)
    with pytest.raises(RuntimeError, match="call fit"):
        rbm.transform(x)
    with pytest.raises(ValueError, match=r"need data in \[0, 1\]"):
        rbm.fit(x * 16.0, verbose=0)
    bad = x.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        rbm.fit(bad, verbose=0)
    bad[3, 4] = np.inf
    with pytest.raises(ValueError, match="NaN or Inf"):
        rbm.fit(bad, verbose=0)
    with pytest.raises(ValueError, match="2-dimensional"):
        rbm.fit(x.reshape(-1, 8, 8), verbose=0)
    with pytest.raises(ValueError, match="empty"):
        rbm.fit(np.zeros((0, 64), np.float32), verbose=0)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        rbm.fit(x, epochs=0, verbose=0)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        rbm.fit(x, batch_size=0, verbose=0)
    rbm.fit(x[:100], verbose=0)
    with pytest.raises(ValueError, match="has 32 features, but this model has 64 visible units"):
        rbm.transform(x[:, :32])
    with pytest.raises(ValueError, match="has 32 features"):
        rbm.fit(x[:, :32], verbose=0)
    with pytest.raises(ValueError, match="weights have 32 visible units"):
        rbm.set_weights([np.zeros((32, 5)), np.zeros(32), np.zeros(5)])
    with pytest.raises(ValueError, match="hidden_bias"):
        rbm.set_weights([np.zeros((64, 5)), np.zeros(64), np.zeros(4)])
    with pytest.raises(ValueError, match="a DBN needs at least one layer"):
        DBN([])
    with pytest.raises(ValueError, match=r"hidden_sizes\[1\] must be >= 1"):
        DBN([10, 0])
    with pytest.raises(TypeError, match="sequence of layer sizes"):
        DBN(10)
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        DBN([10], learning_rate=0)
    with pytest.raises(ValueError, match="one per RBM"):
        DBN([10, 5], learning_rate=[0.1])
    with pytest.raises(RuntimeError, match="call fit"):
        DBN([10]).to_sequential(3)
    with pytest.raises(ValueError, match="one int or one per RBM"):
        DBN([10, 5]).fit(x, epochs=[1], verbose=0)


def test_dbn_mnist_example_runs(mnist_dir, capsys):
    path = Path(__file__).resolve().parent.parent / "examples" / "dbn_mnist.py"
    spec = importlib.util.spec_from_file_location("dbn_mnist", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    error = example.main([str(mnist_dir), "--train-limit", "5000", "--pretrain-epochs", "3", "--finetune-epochs",
                          "2", "--skip-baseline"])
    assert error < 0.3, f"test error {error:.3f} after a tiny run (0.17 measured)"
    assert "DBN-initialised 784-500-500-2000-10: test error" in capsys.readouterr().out
