"""Recurrent cells and embedding lookups (src/rnn.c, src/lstm.c, src/gru.c, src/embedding.c) against the NumPy
reference, on hypothesis-drawn shapes (T = 1, batch 1, odd sizes, units past a SIMD width), every instruction
set the CPU has, 1 vs 2 threads bitwise, and the verbs' argument checks."""
import inspect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn import _reference, ops
from kernel_helpers import ISA_IDS, ISAS, isa, threads

CELLS = {"simple_rnn": 1, "lstm": 4, "gru": 3}
STATES = {"simple_rnn": 1, "lstm": 2, "gru": 1}
ACTS = ("tanh", "sigmoid", "relu", "linear")
FAST = settings(max_examples=20, deadline=None)
dims = st.tuples(st.integers(1, 5), st.integers(1, 7), st.integers(1, 9), st.sampled_from([1, 2, 3, 7, 16, 17, 33]))


def _problem(cell, batch, steps, features, units, seed=0, bias=True, state=True):
    rng = np.random.default_rng(seed)
    g = CELLS[cell]
    x = rng.standard_normal((batch, steps, features)).astype(np.float32)
    k = (rng.standard_normal((features, g * units)) / np.sqrt(features)).astype(np.float32)
    r = (rng.standard_normal((units, g * units)) / np.sqrt(units)).astype(np.float32)
    b = None
    if bias:
        b = (rng.standard_normal((2, 3 * units) if cell == "gru" else (g * units,)) * 0.3).astype(np.float32)
    s = [rng.standard_normal((batch, units)).astype(np.float32) * 0.5 for _ in range(STATES[cell])] if state else None
    return x, k, r, b, s


def _acts(cell, act, rec_act):
    kw = {"activation": act}
    if cell != "simple_rnn":
        kw["recurrent_activation"] = rec_act
    return kw


def test_signatures_match_reference():
    for name in ("simple_rnn", "simple_rnn_backward", "lstm", "lstm_backward", "gru", "gru_backward", "embedding",
                 "embedding_backward"):
        assert inspect.signature(getattr(ops, name)) == inspect.signature(getattr(_reference, name)), name


@pytest.mark.parametrize("cell", CELLS)
@FAST
@given(shape=dims, go_backwards=st.booleans(), bias=st.booleans(), state=st.booleans(),
       act=st.sampled_from(ACTS), rec_act=st.sampled_from(("sigmoid", "tanh")), seed=st.integers(0, 99))
def test_forward_and_backward_match_reference(cell, shape, go_backwards, bias, state, act, rec_act, seed):
    x, k, r, b, s = _problem(cell, *shape, seed=seed, bias=bias, state=state)
    kw = dict(go_backwards=go_backwards, **_acts(cell, act, rec_act))
    got, want = getattr(ops, cell)(x, k, r, b, s, **kw), getattr(_reference, cell)(x, k, r, b, s, **kw)
    for a, e in zip(got, want):
        np.testing.assert_allclose(a, e, rtol=2e-4, atol=2e-5)
    rng = np.random.default_rng(seed + 1)
    dseq = rng.standard_normal(got[0].shape).astype(np.float32)
    dlast = rng.standard_normal(got[1].shape).astype(np.float32)
    for ds, dl in ((dseq, dlast), (None, dlast), (dseq, None)):
        got_g = getattr(ops, cell + "_backward")(x, k, r, b, ds, dl, s, **kw)
        want_g = getattr(_reference, cell + "_backward")(x, k, r, b, ds, dl, s, **kw)
        for name, a, e in zip(("dx", "dkernel", "drecurrent", "dbias"), got_g, want_g):
            if e is None:
                assert a is None
                continue
            scale = max(1.0, float(np.abs(e).max()))
            np.testing.assert_allclose(a, e, rtol=5e-4, atol=5e-5 * scale, err_msg=name)


@pytest.mark.parametrize("which", ISAS, ids=ISA_IDS)
@pytest.mark.parametrize("cell", CELLS)
def test_every_instruction_set(which, cell):
    x, k, r, b, s = _problem(cell, 4, 6, 5, 19, seed=3)
    want = getattr(_reference, cell)(x, k, r, b, s)
    dl = np.ones_like(want[1])
    want_g = getattr(_reference, cell + "_backward")(x, k, r, b, None, dl, s)
    with isa(which):
        got = getattr(ops, cell)(x, k, r, b, s)
        got_g = getattr(ops, cell + "_backward")(x, k, r, b, None, dl, s)
    for a, e in zip(got, want):
        np.testing.assert_allclose(a, e, rtol=2e-4, atol=2e-5)
    for a, e in zip(got_g, want_g):
        np.testing.assert_allclose(a, e, rtol=5e-4, atol=1e-4)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("shape", [(2, 3, 4, 8), (37, 9, 16, 64), (64, 12, 24, 48), (1000, 2, 8, 160),
                                   (1, 6, 8, 96), (1, 5, 3, 112)])
def test_one_and_two_threads_bitwise(cell, shape):
    """(1000, 2, 8, 160): with one thread the LSTM's recurrent GEMMs (640 columns) take the GEMM's packed path,
    with two each thread's half takes the direct one. Batch 1 with 96 or 112 units: two threads split the
    LSTM's units (6 blocks of 16 in halves, 7 blocks as 3 and 4)."""
    x, k, r, b, s = _problem(cell, *shape, seed=5)
    dseq = np.random.default_rng(6).standard_normal(shape[:2] + (shape[3],)).astype(np.float32)
    results = []
    for n in (1, 2):
        with threads(n):
            results.append(getattr(ops, cell)(x, k, r, b, s, go_backwards=True)
                           + getattr(ops, cell + "_backward")(x, k, r, b, dseq, None, s, go_backwards=True))
    for a, c in zip(*results):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("cell, steps, units", [("lstm", 260, 32), ("gru", 350, 32), ("simple_rnn", 520, 64)])
def test_a_long_sequence_projected_step_by_step_has_the_bits_of_a_short_batch(cell, steps, units):
    """Over 8 MB of projected inputs (64 rows x steps x gates x units), the time loop projects each step's rows
    itself; 8 rows at a time (1 MB) are projected up front. Both are the same arithmetic, bit for bit."""
    x, k, r, b, s = _problem(cell, 64, steps, 5, units, seed=3)
    assert 4 * 64 * steps * CELLS[cell] * units > 8 << 20
    dseq = np.random.default_rng(4).standard_normal((64, steps, units)).astype(np.float32)
    for n in (1, 2):
        with threads(n):
            whole = getattr(ops, cell)(x, k, r, b, s) + getattr(ops, cell + "_backward")(x, k, r, b, dseq, None, s)
            for lo in range(0, 64, 8):
                rows = slice(lo, lo + 8)
                part_s = [state[rows] for state in s]
                part = (getattr(ops, cell)(x[rows], k, r, b, part_s)
                        + getattr(ops, cell + "_backward")(x[rows], k, r, b, dseq[rows], None, part_s))
                for got, want in zip(whole, part):
                    if want.shape[0] == 8:  # per-row results (the weight gradients sum over rows)
                        np.testing.assert_array_equal(got[rows], want)
    want = getattr(_reference, cell)(x, k, r, b, s)
    for got, expected in zip(whole, want):
        np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-5)


def test_lstm_matches_keras_gate_order_and_forget_gate():
    """A saturated forget gate (bias +30) with a closed input gate (bias -30) keeps c at c0."""
    x, k, r, _, (h0, c0) = _problem("lstm", 2, 4, 3, 5, seed=7)
    k[...] = 0.0
    r[...] = 0.0
    b = np.zeros(20, np.float32)
    b[0:5], b[5:10] = -30.0, 30.0
    _, h, c = ops.lstm(x, k, r, b, [h0, c0])
    np.testing.assert_allclose(c, c0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h, 0.5 * np.tanh(c0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_bad_arguments(cell):
    x, k, r, b, s = _problem(cell, 2, 3, 4, 5)
    f = getattr(ops, cell)
    with pytest.raises(ValueError, match="3-dimensional"):
        f(x[0], k, r, b)
    with pytest.raises(ValueError, match="at least one step"):
        f(x[:, :0], k, r, b)
    with pytest.raises(ValueError, match="NaN"):
        f(np.where(x > 1, np.nan, x), k, r, b)
    with pytest.raises(ValueError, match="kernel must have shape"):
        f(x, k[:-1], r, b)
    with pytest.raises(ValueError, match="recurrent_kernel"):
        f(x, k, r[:, :-1], b)
    with pytest.raises(ValueError, match="bias"):
        f(x, k, r, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="initial states must have shape"):
        f(x, k, r, b, [np.zeros((3, 5), np.float32)] * STATES[cell])
    with pytest.raises(ValueError, match="activation"):
        f(x, k, r, b, activation="gelu")


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 40), vocab=st.integers(1, 30), dim=st.sampled_from([1, 3, 16, 17, 64]),
       seed=st.integers(0, 99))
def test_embedding_matches_reference(n, vocab, dim, seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, (n,))
    table = rng.standard_normal((vocab, dim)).astype(np.float32)
    np.testing.assert_array_equal(ops.embedding(ids, table), _reference.embedding(ids, table))
    np.testing.assert_array_equal(ops.embedding(ids.astype(np.float32), table), _reference.embedding(ids, table))
    dy = rng.standard_normal((n, dim)).astype(np.float32)
    np.testing.assert_allclose(ops.embedding_backward(ids, dy, vocab), _reference.embedding_backward(ids, dy, vocab),
                               rtol=1e-5, atol=1e-6)


def test_embedding_backward_bitwise_across_threads_and_only_present_rows():
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 50, (4096,))
    ids[ids == 7] = 8
    dy = rng.standard_normal((4096, 96)).astype(np.float32)
    with threads(1):
        one = ops.embedding_backward(ids, dy, 50)
    with threads(2):
        two = ops.embedding_backward(ids, dy, 50)
    np.testing.assert_array_equal(one, two)
    assert not one[7].any() and one[8].any()


def test_embedding_bad_ids():
    table = np.zeros((10, 3), np.float32)
    with pytest.raises(ValueError, match=r"id 10.*\[0, 10\)"):
        ops.embedding(np.array([[1, 10]]), table)
    with pytest.raises(ValueError, match=r"id -1"):
        ops.embedding(np.array([-1, 2]), table)
    with pytest.raises(ValueError, match="whole numbers"):
        ops.embedding(np.array([1.5]), table)
    with pytest.raises(ValueError, match="whole numbers"):
        ops.embedding(np.array([np.nan]), table)
    with pytest.raises(TypeError, match="dtype"):
        ops.embedding(np.array(["a"]), table)


@pytest.mark.parametrize("which", ISAS, ids=ISA_IDS)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("shape", [(1, 5, 3, 17), (2, 3, 4, 8), (3, 7, 1, 33), (5, 4, 9, 16), (37, 9, 16, 64),
                                   (64, 12, 24, 48), (9, 3, 600, 16)])
def test_inference_has_the_bits_of_forward(which, cell, shape):
    """lstm_infer and gru_infer (nothing saved, each step projected from x in slices of two rows or more) give
    the forward pass's outputs bit for bit, with and without initial states, sequences and go_backwards, on 1
    and 2 threads; n_in = 600 crosses the length from which a single row's projection sums in two halves."""
    from fastnn import _kernels
    x, k, r, b, states = _problem(cell, *shape, seed=sum(shape))
    infer = getattr(_kernels, cell + "_infer")
    acts = (_kernels.ACT_TANH, _kernels.ACT_SIGMOID)
    for go_backwards, with_states, want_seq in ((False, False, True), (True, True, False), (False, True, True)):
        init = states if with_states else [None] * len(states)
        with isa(which):
            seq, *finals = getattr(ops, cell)(x, k, r, b, states if with_states else None, go_backwards=go_backwards)
            for n in (1, 2):
                got = [np.full_like(f, np.nan) for f in finals]
                got_seq = np.full_like(seq, np.nan) if want_seq else None
                infer(x, k, r, b, *init, *acts, go_backwards, *got, got_seq, n)
                for g, f in zip(got, finals):
                    np.testing.assert_array_equal(g, f)
                if want_seq:
                    np.testing.assert_array_equal(got_seq, seq)


def test_inference_rejects_bad_buffers():
    from fastnn import _kernels
    x, k, r, b, (h0, c0) = _problem("lstm", 4, 3, 5, 8)
    h, c = np.empty((4, 8), np.float32), np.empty((4, 8), np.float32)
    args = (_kernels.ACT_TANH, _kernels.ACT_SIGMOID, False)
    with pytest.raises(ValueError, match="h_last"):
        _kernels.lstm_infer(x, k, r, b, h0, c0, *args, np.empty((3, 8), np.float32), c)
    with pytest.raises(ValueError, match="c_last"):
        _kernels.lstm_infer(x, k, r, b, h0, c0, *args, h, None)
    with pytest.raises(ValueError, match="seq"):
        _kernels.lstm_infer(x, k, r, b, h0, c0, *args, h, c, np.empty((4, 2, 8), np.float32))
    with pytest.raises(ValueError, match="kernel"):
        _kernels.lstm_infer(x, np.ascontiguousarray(k[:, :-1]), r, b, h0, c0, *args, h, c)
    with pytest.raises(ValueError, match="lstm_infer: invalid argument"):  # GELU has no derivative from its output
        _kernels.lstm_infer(x, k, r, b, h0, c0, _kernels.ACT_GELU, _kernels.ACT_SIGMOID, False, h, c)
    with pytest.raises(ValueError, match="h_last"):
        _kernels.gru_infer(*_problem("gru", 4, 3, 5, 8)[:4], None, *args, None)
