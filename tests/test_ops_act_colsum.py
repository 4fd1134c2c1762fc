"""fnn_act_backward_colsum_f32 (src/act_colsum.c): dz bit for bit as act_backward, the bias gradient as a
float64 column sum of dz, on hypothesis-drawn shapes (1 row, odd sizes, blocks that do not divide the rows),
every instruction set, 1 and 2 threads bitwise, accumulation, bad arguments."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn import _kernels
from kernel_helpers import isa, ISA_IDS, ISAS

LINEAR, RELU, LEAKY, SIGMOID, TANH, GELU = range(6)


def arrays(rows, cols, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = 0.0  # the relu kink
    dy = rng.standard_normal((rows, cols)).astype(np.float32)
    return x, dy


def run(x, dy, act, accumulate, start, n_threads):
    y = np.empty_like(x)
    _kernels.act_forward(x, None, y, act, 0.2, 1)
    dz = np.full_like(dy, np.nan)
    dbias = start.copy()
    _kernels.act_backward_colsum(x if act == GELU or act == LEAKY else None, y if act != LINEAR else None, dy, dz,
                                 dbias, act, 0.2, accumulate, n_threads)
    return y, dz, dbias


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@settings(max_examples=30, deadline=None)
@given(rows=st.sampled_from([0, 1, 3, 1000, 1025, 4099]), cols=st.sampled_from([1, 7, 32, 64, 100]),
       act=st.sampled_from([LINEAR, RELU, LEAKY, SIGMOID, TANH, GELU]), accumulate=st.booleans(),
       seed=st.integers(0, 2**31))
def test_matches_act_backward_then_a_float64_column_sum(isa_index, rows, cols, act, accumulate, seed):
    x, dy = arrays(rows, cols, seed)
    start = np.random.default_rng(seed + 1).standard_normal(cols).astype(np.float32)
    with isa(isa_index):
        y, dz, dbias = run(x, dy, act, accumulate, start, 1)
        expected = np.empty_like(dy)
        _kernels.act_backward(x.reshape(-1) if act in (LEAKY, GELU) else None,
                              y.reshape(-1) if act != LINEAR else None, dy.reshape(-1), expected.reshape(-1), act,
                              0.2, 1)
        _, dz2, dbias2 = run(x, dy, act, accumulate, start, 2)
    assert dz.tobytes() == expected.tobytes()
    total = expected.astype(np.float64).sum(axis=0) + (start if accumulate else 0)
    np.testing.assert_allclose(dbias, total, rtol=1e-6, atol=1e-6)
    assert dz2.tobytes() == dz.tobytes() and dbias2.tobytes() == dbias.tobytes()


def test_linear_in_place_only_sums():
    _, dy = arrays(3000, 16, 1)
    before, dbias = dy.copy(), np.zeros(16, np.float32)
    _kernels.act_backward_colsum(None, None, dy, dy, dbias, LINEAR)
    assert dy.tobytes() == before.tobytes()
    np.testing.assert_allclose(dbias, before.astype(np.float64).sum(axis=0), rtol=1e-6, atol=1e-6)


def test_bad_arguments_are_rejected():
    x, dy = arrays(10, 4, 2)
    dz, dbias = np.empty_like(dy), np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="dz must have"):
        _kernels.act_backward_colsum(None, x, dy, dz[:5], dbias, RELU)
    with pytest.raises(ValueError, match="dbias must have length 4"):
        _kernels.act_backward_colsum(None, x, dy, dz, dbias[:3], RELU)
    with pytest.raises(ValueError, match="invalid argument"):
        _kernels.act_backward_colsum(None, None, dy, dz, dbias, TANH)  # tanh needs y
    with pytest.raises(ValueError, match="invalid argument"):
        _kernels.act_backward_colsum(None, x, dy, dz, dbias, 9)
