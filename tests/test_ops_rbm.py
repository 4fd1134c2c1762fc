"""RBM kernels (src/rbm.c through fastnn.ops) against their NumPy twins in fastnn._reference.

The random stream is re-implemented in NumPy, so samples are compared bit for bit; the update runs on every
instruction set the CPU supports (it calls the GEMM) and on 1 and 2 threads.
"""
import inspect

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fastnn import _reference as ref
from fastnn import ops

from kernel_helpers import isa, ISA_IDS, ISAS, threads

BIG = (1 << 16) + 37  # above the kernels' one-thread threshold, not a multiple of anything


@pytest.mark.parametrize("name", ["rbm_uniform", "rbm_sample", "rbm_update"])
def test_signature_matches_reference(name):
    assert inspect.signature(getattr(ops, name)) == inspect.signature(getattr(ref, name))


@pytest.mark.parametrize("n", [0, 1, 17, 1000, BIG])
@pytest.mark.parametrize("key, counter", [(0, 0), (12345, 7), (2**63 + 11, 2**64 - 1)])
def test_uniform_matches_reference_bitwise(n, key, counter):
    np.testing.assert_array_equal(ops.rbm_uniform(n, key, counter), ref.rbm_uniform(n, key, counter))


def test_uniforms_are_uniform_and_streams_differ():
    u = ops.rbm_uniform(200_000, key=99, counter=3).astype(np.float64)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002
    counts, _ = np.histogram(u, bins=20, range=(0.0, 1.0))
    chi2 = ((counts - len(u) / 20) ** 2 / (len(u) / 20)).sum()
    assert chi2 < 50  # 19 degrees of freedom: p < 1e-3 above ~43.8
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01
    # A new counter or a new key gives an unrelated stream.
    for other in (ops.rbm_uniform(200_000, key=99, counter=4), ops.rbm_uniform(200_000, key=100, counter=3)):
        assert abs(np.corrcoef(u, other)[0, 1]) < 0.01
        assert np.mean(u == other) < 0.001


@pytest.mark.parametrize("kind", ["bernoulli", "gaussian"])
def test_samples_identical_for_1_and_2_threads(kind):
    mean = np.random.default_rng(0).random(BIG).astype(np.float32)
    with threads(1):
        u1, s1 = ops.rbm_uniform(BIG, 5, 9), ops.rbm_sample(mean, 5, 9, kind)
    with threads(2):
        u2, s2 = ops.rbm_uniform(BIG, 5, 9), ops.rbm_sample(mean, 5, 9, kind)
    np.testing.assert_array_equal(u1, u2)
    np.testing.assert_array_equal(s1, s2)


@pytest.mark.parametrize("shape", [(1,), (3, 5), (64, 129), (BIG,)])
def test_bernoulli_sample_matches_reference_bitwise(shape):
    mean = np.random.default_rng(1).random(shape).astype(np.float32)
    mean.reshape(-1)[:3] = [0.0, 1.0, 0.5][:mean.size]
    got = ops.rbm_sample(mean, key=77, counter=2)
    np.testing.assert_array_equal(got, ref.rbm_sample(mean, 77, 2))
    assert got.dtype == np.float32 and got.shape == shape
    np.testing.assert_array_equal(ops.rbm_sample(np.zeros(1000), 3), 0.0)  # p = 0: never on
    np.testing.assert_array_equal(ops.rbm_sample(np.full(1000, -0.0), 3), 0.0)  # nor for -0.0
    # p on the uniforms' grid: u < p is strict, so p = u gives 0 and the next float above u gives 1.
    u = ops.rbm_uniform(1000, 3)
    np.testing.assert_array_equal(ops.rbm_sample(u, 3), 0.0)
    np.testing.assert_array_equal(ops.rbm_sample(np.nextafter(u, np.float32(2)), 3), 1.0)
    np.testing.assert_array_equal(ops.rbm_sample(np.ones(1000), 3), 1.0)  # p = 1: always on


def test_bernoulli_frequencies_follow_the_probabilities():
    p = np.repeat(np.array([0.05, 0.3, 0.5, 0.9], np.float32), 50_000)
    s = ops.rbm_sample(p, key=4, counter=1).reshape(4, -1)
    np.testing.assert_allclose(s.mean(axis=1), [0.05, 0.3, 0.5, 0.9], atol=0.01)


def test_gaussian_sample_matches_reference_and_is_standard_normal():
    mean = np.random.default_rng(2).normal(size=(400, 300)).astype(np.float32)
    got = ops.rbm_sample(mean, key=8, counter=5, kind="gaussian")
    np.testing.assert_allclose(got, ref.rbm_sample(mean, 8, 5, "gaussian"), rtol=0, atol=1e-5)
    noise = (got - mean).astype(np.float64).ravel()
    assert abs(noise.mean()) < 0.01 and abs(noise.std() - 1.0) < 0.01
    assert abs((noise ** 3).mean()) < 0.03 and abs((noise ** 4).mean() - 3.0) < 0.06  # skew 0, kurtosis 3


def test_sample_in_place():
    mean = np.random.default_rng(3).random((10, 7)).astype(np.float32)
    expected = ref.rbm_sample(mean, 1, 1)
    out = ops.rbm_sample(mean, 1, 1, out=mean)
    assert out is mean
    np.testing.assert_array_equal(mean, expected)


def _update_case(rng, batch, nv, nh):
    data = [rng.random(shape).astype(np.float32) for shape in ((batch, nv), (batch, nh), (batch, nv), (batch, nh))]
    params = [rng.normal(0, 0.1, (nv, nh)), rng.normal(0, 1, nv), rng.normal(0, 1, nh)]
    incs = [rng.normal(0, 0.01, p.shape) for p in params]
    return data, [p.astype(np.float32) for p in params + incs]


def _check_update(batch, nv, nh, seed, lr=0.1, momentum=0.5, decay=0.001):
    data, state = _update_case(np.random.default_rng(seed), batch, nv, nh)
    got = [a.copy() for a in state]
    want = [a.copy() for a in state]
    ops.rbm_update(*data, *got, lr, momentum, decay)
    ref.rbm_update(*data, *want, lr, momentum, decay)
    for name, g, w in zip(["weights", "visible_bias", "hidden_bias", "weights_inc", "visible_inc", "hidden_inc"],
                          got, want):
        # The GEMM accumulates the batch sums in float32: allow for its rounding, scaled by lr / batch.
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-6 + 4e-7 * lr * batch ** 0.5, err_msg=name)
    return got


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@pytest.mark.parametrize("batch, nv, nh", [(1, 1, 1), (7, 13, 11), (100, 64, 33), (33, 200, 129)])
def test_update_matches_reference(isa_index, batch, nv, nh):
    with isa(isa_index):
        _check_update(batch, nv, nh, seed=batch + nv)


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 70), nv=st.integers(1, 90), nh=st.integers(1, 90), momentum=st.floats(0.0, 0.95),
       decay=st.floats(0.0, 0.01), seed=st.integers(0, 1000))
def test_update_matches_reference_any_shape(batch, nv, nh, momentum, decay, seed):
    _check_update(batch, nv, nh, seed, momentum=momentum, decay=decay)


def test_update_identical_for_1_and_2_threads():
    with threads(1):
        one = _check_update(300, 301, 257, seed=5)
    with threads(2):
        two = _check_update(300, 301, 257, seed=5)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


def test_update_example_values():
    w, b, c = np.zeros((2, 1), np.float32), np.zeros(2, np.float32), np.zeros(1, np.float32)
    incs = [np.full_like(w, 0.1), np.zeros_like(b), np.zeros_like(c)]
    ops.rbm_update([[1.0, 0.0]], [[1.0]], [[0.0, 0.0]], [[0.0]], w, b, c, *incs, 0.5, momentum=0.5,
                   weight_decay=0.0)
    # inc = 0.5 * 0.1 + 0.5 * (v0^T h0 - 0); the untouched visible unit still gets the momentum part.
    np.testing.assert_allclose(w.ravel(), [0.55, 0.05])
    np.testing.assert_allclose(b, [0.5, 0.0])
    np.testing.assert_allclose(c, [0.5])


def test_bad_input_is_rejected_clearly():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ops.rbm_sample([0.5, 1.5], key=1)
    with pytest.raises(ValueError, match="NaN"):
        ops.rbm_sample([0.5, np.nan], key=1)
    with pytest.raises(ValueError, match="kind"):
        ops.rbm_sample([0.5], key=1, kind="poisson")
    with pytest.raises(ValueError, match="below 2"):
        ops.rbm_uniform(3, key=2**64)
    with pytest.raises(ValueError, match=">= 0"):
        ops.rbm_uniform(-1, key=0)
    with pytest.raises(ValueError, match="out must have shape"):
        ops.rbm_sample(np.zeros((2, 2)), key=1, out=np.zeros(4, np.float32))
    data, state = _update_case(np.random.default_rng(0), 4, 3, 2)
    with pytest.raises(ValueError, match="learning_rate"):
        ops.rbm_update(*data, *state, 0.0)
    with pytest.raises(ValueError, match="momentum"):
        ops.rbm_update(*data, *state, 0.1, momentum=1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        ops.rbm_update(*data, *state, 0.1, weight_decay=-1.0)
    with pytest.raises(ValueError, match=r"vk must have shape \(4, 3\)"):
        ops.rbm_update(data[0], data[1], data[0][:, :2], data[3], *state, 0.1)
    with pytest.raises(ValueError, match=r"weights must have shape \(3, 2\)"):
        ops.rbm_update(*data, state[0].T.copy(), *state[1:], 0.1)
    with pytest.raises(TypeError, match="updated in place"):
        ops.rbm_update(*data, state[0].tolist(), *state[1:], 0.1)
    with pytest.raises(ValueError, match="NaN"):
        ops.rbm_update(np.full((4, 3), np.nan), *data[1:], *state, 0.1)
