"""The SGD step (src/optim.c + src/ew_act_impl.h) against Keras' update rule, for every instruction set."""
import inspect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn import _kernels, _reference, ops
from kernel_helpers import isa, ISA_IDS, ISAS, threads


def keras_sgd(p, v, g, lr, momentum, nesterov):
    """Keras 3's SGD.update_step, transcribed in float64 on copies."""
    p, v = p.astype(np.float64), v.astype(np.float64)
    if momentum == 0:
        return p - g * lr, v
    v = -g * lr + v * momentum
    return (p + (-g * lr + v * momentum) if nesterov else p + v), v


def test_signature_matches_reference():
    assert inspect.signature(ops.sgd_update) == inspect.signature(_reference.sgd_update)


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True), (0.5, True), (1.0, False)])
@settings(max_examples=20, deadline=None)
@given(n=st.one_of(st.integers(1, 70), st.sampled_from([127, 1000, 4099])), seed=st.integers(0, 2**31),
       lr=st.sampled_from([0.0, 1e-3, 0.1, 1.0]))
def test_sgd_follows_keras_over_several_steps(isa_index, momentum, nesterov, n, seed, lr):
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(n).astype(np.float32)
    v = np.zeros(n, np.float32)
    p_ref, v_ref, p64, v64 = p.copy(), v.copy(), p.astype(np.float64), v.astype(np.float64)
    with isa(isa_index):
        for _ in range(5):
            g = rng.standard_normal(n).astype(np.float32)
            assert ops.sgd_update(p, g, v, lr, momentum=momentum, nesterov=nesterov) is p
            _reference.sgd_update(p_ref, g, v_ref, lr, momentum=momentum, nesterov=nesterov)
            p64, v64 = keras_sgd(p64, v64, g.astype(np.float64), np.float32(lr), np.float32(momentum), nesterov)
    if _kernels.ISA_NAMES[isa_index] == "generic":  # no FMA: the same float32 roundings as Keras
        np.testing.assert_array_equal(p, p_ref)
        np.testing.assert_array_equal(v, v_ref)
    # FMA contraction (AVX2/AVX-512) may move a result by an ulp (of the largest term) per step
    scale = max(1.0, np.abs(p64).max(), np.abs(v64).max())
    np.testing.assert_allclose(p, p_ref, rtol=1e-6, atol=1e-6 * scale)
    np.testing.assert_allclose(v, v_ref, rtol=1e-6, atol=1e-6 * scale)
    np.testing.assert_allclose(p, p64, rtol=1e-5, atol=1e-5 * scale)
    np.testing.assert_allclose(v, v64, rtol=1e-5, atol=1e-5 * scale)


def test_sgd_hand_computed_steps():
    p, v, g = np.array([1.0], np.float32), np.array([0.0], np.float32), np.array([2.0], np.float32)
    ops.sgd_update(p, g, v, 0.5, momentum=0.5)  # v = -1, p = 0
    ops.sgd_update(p, g, v, 0.5, momentum=0.5)  # v = -0.5 - 1 = -1.5, p = -1.5
    assert (p[0], v[0]) == (-1.5, -1.5)
    p, v = np.array([1.0], np.float32), np.array([0.0], np.float32)
    ops.sgd_update(p, g, v, 0.5, momentum=0.5, nesterov=True)  # v = -1, p += 0.5 * -1 - 1
    assert (p[0], v[0]) == (-0.5, -1.0)


def test_plain_sgd_ignores_velocity_and_accepts_none():
    p = np.arange(6, dtype=np.float32).reshape(2, 3)  # any shape
    v = np.full((2, 3), 7.0, np.float32)
    ops.sgd_update(p, np.ones((2, 3)), v, 0.25)
    np.testing.assert_array_equal(p, np.arange(6).reshape(2, 3) - 0.25)
    assert (v == 7).all()
    ops.sgd_update(p, np.ones((2, 3)), None, 0.25, nesterov=True)
    np.testing.assert_array_equal(p, np.arange(6).reshape(2, 3) - 0.5)


def test_threads_give_identical_bits():
    rng = np.random.default_rng(9)
    p0, g = rng.standard_normal(300_001).astype(np.float32), rng.standard_normal(300_001).astype(np.float32)
    results = []
    for n in (1, 2):
        p, v = p0.copy(), np.full_like(p0, 0.1)
        with threads(n):
            ops.sgd_update(p, g, v, 0.01, momentum=0.9, nesterov=True)
        results.append((p, v))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_bad_inputs_raise_clear_errors():
    p, g, v = np.zeros(4, np.float32), np.ones(4, np.float32), np.zeros(4, np.float32)
    frozen = p.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="params is read-only"):
        ops.sgd_update(frozen, g, v, 0.1)
    with pytest.raises(TypeError, match="params must have dtype float32, got float64"):
        ops.sgd_update(np.zeros(4), g, v, 0.1)
    with pytest.raises(TypeError, match="params must be a numpy float32 array updated in place, got list"):
        ops.sgd_update([0.0] * 4, g, v, 0.1)
    with pytest.raises(ValueError, match="params must be C-contiguous"):
        ops.sgd_update(np.zeros(8, np.float32)[::2], g, v, 0.1)
    with pytest.raises(ValueError, match=r"velocity must have shape \(4,\), got \(3,\)"):
        ops.sgd_update(p, g, np.zeros(3, np.float32), 0.1, momentum=0.9)
    with pytest.raises(ValueError, match="momentum 0.9 needs a velocity array"):
        ops.sgd_update(p, g, None, 0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"grads has shape \(5,\) but params has shape \(4,\)"):
        ops.sgd_update(p, np.ones(5), v, 0.1)
    with pytest.raises(ValueError, match="grads contains 1 NaN or Inf"):
        ops.sgd_update(p, [1, 2, np.nan, 3], v, 0.1)
    with pytest.raises(ValueError, match="momentum must be <= 1.0"):
        ops.sgd_update(p, g, v, 0.1, momentum=1.5)
    with pytest.raises(ValueError, match="learning_rate must be >= 0"):
        ops.sgd_update(p, g, v, -0.1)
    assert (p == 0).all() and (v == 0).all()  # nothing was touched by the rejected calls
