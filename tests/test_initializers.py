import numpy as np
import pytest

import fastnn
from fastnn import initializers


def test_glorot_uniform_limits_and_seed():
    w = initializers.GlorotUniform(seed=1)((300, 200), 300, 200)
    limit = np.sqrt(6 / 500)
    assert w.dtype == np.float32 and np.abs(w).max() <= limit
    assert abs(w.std() - limit / np.sqrt(3)) < 0.05 * limit
    np.testing.assert_array_equal(w, initializers.GlorotUniform(seed=1)((300, 200), 300, 200))


def test_he_normal_truncated_with_keras_stddev():
    w = initializers.get("he_normal")((400, 300), 400, 300).astype(np.float64)
    std = np.sqrt(2 / 400)
    assert np.abs(w).max() <= 2 * std / 0.87962566103423978 + 1e-6
    assert abs(w.std() - std) < 0.03 * std


def test_zeros_and_global_seed():
    assert not initializers.get("zeros")((3, 2), 3, 2).any()
    fastnn.set_seed(5)
    a = initializers.get("glorot_uniform")((4, 4), 4, 4)
    fastnn.set_seed(5)
    np.testing.assert_array_equal(a, initializers.get("glorot_uniform")((4, 4), 4, 4))


def test_unknown_initializer_lists_names():
    with pytest.raises(ValueError, match="glorot_uniform"):
        initializers.get("xavier")
    with pytest.raises(ValueError, match="seed"):
        fastnn.set_seed(-1)


def test_orthogonal_is_orthogonal_seeded_and_scaled():
    from fastnn import initializers as I
    wide = I.Orthogonal(seed=1)((4, 12), 4, 12)
    np.testing.assert_allclose(wide @ wide.T, np.eye(4), atol=1e-5)
    tall = I.Orthogonal(gain=2.0, seed=1)((9, 3), 9, 3)
    np.testing.assert_allclose(tall.T @ tall, 4 * np.eye(3), atol=1e-5)
    np.testing.assert_array_equal(I.Orthogonal(seed=5)((3, 3), 3, 3), I.Orthogonal(seed=5)((3, 3), 3, 3))
    assert I.deserialize(I.serialize(I.Orthogonal(1.5, 2))).get_config() == {"gain": 1.5, "seed": 2}
    with pytest.raises(ValueError, match="rank"):
        I.Orthogonal()((3,), 3, 3)
    uniform = I.get("uniform")((1000,), 1, 1)
    assert -0.05 <= uniform.min() and uniform.max() <= 0.05
