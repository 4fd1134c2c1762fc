"""fastnn._validation: the finiteness check of input arrays (src/finite.c) on every ISA the CPU has."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fastnn import _kernels, _validation
from kernel_helpers import ISA_IDS, ISAS, isa

BAD = [np.nan, -np.nan, np.inf, -np.inf, np.float32(np.nan) * -1]
GOOD = [0.0, -0.0, 1e-45, -1e-45, 1.1754942e-38, np.finfo(np.float32).max, -np.finfo(np.float32).max, 1.0]


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@pytest.mark.parametrize("n", [1, 2, 15, 16, 17, 63, 64, 65, 784, 4095, 4096, 4097, 100_003])
def test_one_bad_value_anywhere_is_found(isa_index, n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n).astype(np.float32)
    with isa(isa_index):
        assert _validation.all_finite(x)
        for where in sorted({0, n // 2, n - 1, int(rng.integers(n))}):
            for bad in BAD:
                y = x.copy()
                y[where] = bad
                assert not _validation.all_finite(y), (where, bad)


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
def test_extreme_finite_values_pass(isa_index):
    x = np.array(GOOD * 9, np.float32)
    with isa(isa_index):
        assert _validation.all_finite(x)
        assert _validation.all_finite(x.reshape(9, len(GOOD)))  # any shape: the values in order
        assert _validation.all_finite(np.zeros((0, 5), np.float32))


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=4), bad_at=st.integers(0, 10**6),
       bad=st.sampled_from(BAD + [None]))
def test_agrees_with_numpy(shape, bad_at, bad):
    x = np.random.default_rng(bad_at).standard_normal(shape).astype(np.float32)
    if bad is not None:
        x.flat[bad_at % x.size] = bad
    assert _validation.all_finite(x) == bool(np.isfinite(x).all())


def test_only_contiguous_float32():
    with pytest.raises(TypeError, match="float32"):
        _kernels.all_finite_f32(np.zeros(4, np.float64))
    with pytest.raises((TypeError, ValueError, BufferError)):
        _kernels.all_finite_f32(np.zeros((4, 4), np.float32)[:, ::2])
    with pytest.raises(TypeError):
        _kernels.all_finite_f32([1.0, 2.0])


def test_as_float32_array_names_the_bad_values():
    x = np.ones((3, 5), np.float32)
    x[2, 4], x[0, 0] = np.nan, -np.inf
    with pytest.raises(ValueError, match="x contains 2 NaN or Inf"):
        _validation.as_float32_array(x, "x")
    with pytest.raises(ValueError, match="NaN or Inf"):
        _validation.as_float32_array(x.astype(np.float64), "x")
    assert _validation.as_float32_array(x, "x", finite=False) is x
