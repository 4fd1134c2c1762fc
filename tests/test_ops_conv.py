"""im2col/col2im (src/im2col.c) and pooling (src/pool.c) kernels against direct-loop NumPy references.

Shapes are drawn by hypothesis (batch 1, 1/3/odd channels, even and odd kernels, strides larger than the
kernel, dilation, "valid" and "same" padding); the geometry is computed here from TensorFlow's rules, not
from fastnn's code. Work large enough to use threads is run on 1 and 2 threads and must match bit for bit.
"""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fastnn import _kernels

FAST = settings(max_examples=40, deadline=None)


def geometry(size, k, stride, dilation, padding):
    """(output size, pad before) on one axis, from TensorFlow's documented rule."""
    span = (k - 1) * dilation + 1
    if padding == "valid":
        return (size - span) // stride + 1, 0
    out = int(np.ceil(size / stride))
    total = max((out - 1) * stride + span - size, 0)
    return out, total // 2


@st.composite
def conv_cases(draw):
    n = draw(st.sampled_from([1, 1, 2, 3]))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    c = draw(st.sampled_from([1, 3, 5, 7, 2]))
    kh, kw = draw(st.sampled_from([1, 2, 3, 4, 5])), draw(st.sampled_from([1, 2, 3, 5]))
    sh, sw = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    dh, dw = draw(st.sampled_from([1, 1, 2, 3])), draw(st.sampled_from([1, 1, 2]))
    padding = draw(st.sampled_from(["valid", "same"]))
    oh, pt = geometry(h, kh, sh, dh, padding)
    ow, pl = geometry(w, kw, sw, dw, padding)
    assume(oh >= 1 and ow >= 1)
    return (n, h, w, c), (kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)


def im2col_ref(x, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow):
    n, h, w, c = x.shape
    cols = np.zeros((n, oh, ow, kh, kw, c), np.float32)
    for oy in range(oh):
        for ox in range(ow):
            for ky in range(kh):
                for kx in range(kw):
                    iy, ix = oy * sh - pt + ky * dh, ox * sw - pl + kx * dw
                    if 0 <= iy < h and 0 <= ix < w:
                        cols[:, oy, ox, ky, kx] = x[:, iy, ix]
    return cols.reshape(n * oh * ow, kh * kw * c)


def col2im_ref(cols, shape, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow):
    n, h, w, c = shape
    dx = np.zeros(shape, np.float64)
    cols = cols.reshape(n, oh, ow, kh, kw, c)
    for oy in range(oh):
        for ox in range(ow):
            for ky in range(kh):
                for kx in range(kw):
                    iy, ix = oy * sh - pt + ky * dh, ox * sw - pl + kx * dw
                    if 0 <= iy < h and 0 <= ix < w:
                        dx[:, iy, ix] += cols[:, oy, ox, ky, kx]
    return dx


def windows(h, w, ph, pw, sh, sw, pt, pl, oh, ow):
    """Per output pixel, the valid (iy, ix) of its window in row-major order."""
    for oy in range(oh):
        for ox in range(ow):
            yield oy, ox, [(iy, ix) for iy in range(oy * sh - pt, oy * sh - pt + ph)
                           for ix in range(ox * sw - pl, ox * sw - pl + pw) if 0 <= iy < h and 0 <= ix < w]


def maxpool_ref(x, dy, ph, pw, sh, sw, pt, pl, oh, ow):
    n, h, w, c = x.shape
    y = np.zeros((n, oh, ow, c), np.float32)
    dx = np.zeros(x.shape, np.float64)
    for oy, ox, win in windows(h, w, ph, pw, sh, sw, pt, pl, oh, ow):
        vals = np.stack([x[:, iy, ix] for iy, ix in win])  # (window, n, c)
        first = np.argmax(vals, axis=0)  # numpy's argmax picks the first maximum too
        y[:, oy, ox] = vals.max(axis=0)
        for k, (iy, ix) in enumerate(win):
            dx[:, iy, ix] += np.where(first == k, dy[:, oy, ox], 0.0)
    return y, dx


def avgpool_ref(x, dy, ph, pw, sh, sw, pt, pl, oh, ow):
    n, h, w, c = x.shape
    y = np.zeros((n, oh, ow, c), np.float64)
    dx = np.zeros(x.shape, np.float64)
    for oy, ox, win in windows(h, w, ph, pw, sh, sw, pt, pl, oh, ow):
        y[:, oy, ox] = np.mean([x[:, iy, ix].astype(np.float64) for iy, ix in win], axis=0)
        for iy, ix in win:
            dx[:, iy, ix] += dy[:, oy, ox] / len(win)
    return y, dx


def random(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@FAST
@given(conv_cases(), st.integers(0, 2**31))
def test_im2col_matches_reference(case, seed):
    shape, geom = case
    x = random(shape, seed)
    expected = im2col_ref(x, *geom)
    cols = np.full(expected.shape, np.nan, np.float32)
    _kernels.im2col(x, cols, *geom)
    np.testing.assert_array_equal(cols, expected)


@FAST
@given(conv_cases(), st.integers(0, 2**31), st.data())
def test_im2col_row_chunks_match_the_whole(case, seed, data):
    shape, geom = case
    x = random(shape, seed)
    expected = im2col_ref(x, *geom)
    r0 = data.draw(st.integers(0, len(expected) - 1))
    rows = data.draw(st.integers(0, len(expected) - r0))
    wide = np.full((rows, expected.shape[1] + 3), np.nan, np.float32)  # rows further apart than their length
    _kernels.im2col(x, wide[:, :expected.shape[1]], *geom, r0)
    np.testing.assert_array_equal(wide[:, :expected.shape[1]], expected[r0:r0 + rows])
    assert np.isnan(wide[:, expected.shape[1]:]).all()


@FAST
@given(conv_cases(), st.integers(0, 2**31))
def test_col2im_matches_reference_and_adds_in_chunks(case, seed):
    shape, geom = case
    rows = shape[0] * geom[-2] * geom[-1]
    cols = random((rows, geom[0] * geom[1] * shape[3]), seed)
    start = random(shape, seed + 1)
    dx = start.copy()
    half = rows // 2
    _kernels.col2im(cols[:half], dx, *geom, 0)
    _kernels.col2im(cols[half:], dx, *geom, half)
    np.testing.assert_allclose(dx, start + col2im_ref(cols, shape, *geom), rtol=1e-5, atol=1e-5)


def test_col2im_is_the_adjoint_of_im2col():
    geom = (3, 3, 2, 2, 1, 1, 1, 1, 4, 4)
    x, cols = random((2, 7, 7, 3), 1), random((32, 27), 2)
    im = np.empty_like(cols)
    _kernels.im2col(x, im, *geom)
    back = np.zeros_like(x)
    _kernels.col2im(cols, back, *geom)
    assert np.isclose(np.sum(im.astype(np.float64) * cols), np.sum(back.astype(np.float64) * x), rtol=1e-5)


@st.composite
def pool_cases(draw):
    n, h, w = draw(st.sampled_from([1, 2, 3])), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    c = draw(st.sampled_from([1, 3, 5, 4]))
    ph, pw = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    padding = draw(st.sampled_from(["valid", "same"]))
    oh, pt = geometry(h, ph, sh, 1, padding)
    ow, pl = geometry(w, pw, sw, 1, padding)
    assume(oh >= 1 and ow >= 1)
    return (n, h, w, c), (ph, pw, sh, sw, pt, pl), (oh, ow)


@FAST
@given(pool_cases(), st.integers(0, 2**31), st.booleans())
def test_maxpool_matches_reference(case, seed, ties):
    shape, geom, (oh, ow) = case
    x = random(shape, seed)
    if ties:  # few distinct values: many windows hold several maxima
        x = np.round(x)
    dy = random((shape[0], oh, ow, shape[3]), seed + 1)
    y_ref, dx_ref = maxpool_ref(x, dy, *geom, oh, ow)
    y = np.full(y_ref.shape, np.nan, np.float32)
    argmax = np.empty(y.shape, np.int32)
    _kernels.maxpool2d_forward(x, y, argmax, *geom)
    np.testing.assert_array_equal(y, y_ref)
    dx = np.full(shape, np.nan, np.float32)
    _kernels.maxpool2d_backward(dy, argmax, dx)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-6, atol=1e-6)


@FAST
@given(pool_cases(), st.integers(0, 2**31), st.booleans())
def test_maxpool_backward_through_relu(case, seed, ties):
    """dz = relu'(x) * (the pool's dx) bit for bit, dbias = its sums per channel: x is a ReLU's output, and the
    pool's output tells the derivative at every argmax (overlapping and padded windows included)."""
    shape, geom, (oh, ow) = case
    x = np.maximum(random(shape, seed), 0.0)
    if ties:
        x = np.round(x)
    dy = random((shape[0], oh, ow, shape[3]), seed + 1)
    pooled, argmax = np.empty(dy.shape, np.float32), np.empty(dy.shape, np.int32)
    _kernels.maxpool2d_forward(x, pooled, argmax, *geom)
    dx = np.empty(shape, np.float32)
    _kernels.maxpool2d_backward(dy, argmax, dx)
    want = np.where(x > 0, dx, np.float32(0.0))
    dz, dbias = np.full(shape, np.nan, np.float32), np.full(shape[3], np.nan, np.float32)
    _kernels.maxpool2d_backward_relu(dy, argmax, pooled, dz, dbias)
    np.testing.assert_array_equal(dz, want)
    np.testing.assert_allclose(dbias, want.astype(np.float64).sum(axis=(0, 1, 2)), rtol=1e-5, atol=1e-5)


def test_maxpool_backward_through_relu_threads_and_bad_arguments():
    x = np.maximum(random((8, 32, 32, 16), 3), 0.0)  # large enough for two threads
    dy = random((8, 16, 16, 16), 4)
    pooled, argmax = np.empty(dy.shape, np.float32), np.empty(dy.shape, np.int32)
    _kernels.maxpool2d_forward(x, pooled, argmax, 2, 2, 2, 2, 0, 0, 4)
    results = []
    for n_threads in (1, 2):
        dz, dbias = np.empty_like(x), np.empty(16, np.float32)
        _kernels.maxpool2d_backward_relu(dy, argmax, pooled, dz, dbias, n_threads)
        results.append((dz, dbias))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
    dz, dbias = np.empty_like(x), np.empty(16, np.float32)
    with pytest.raises(ValueError, match="dbias must have 16 elements, got 15"):
        _kernels.maxpool2d_backward_relu(dy, argmax, pooled, dz, np.empty(15, np.float32))
    with pytest.raises(ValueError, match="argmax and pooled must have dy's shape"):
        _kernels.maxpool2d_backward_relu(dy, argmax, np.empty((8, 8, 16, 16), np.float32), dz, dbias)
    argmax[0, 0, 0, 0] = x[0].size
    with pytest.raises(ValueError, match="argmax index out of range"):
        _kernels.maxpool2d_backward_relu(dy, argmax, pooled, dz, dbias)
    empty = np.empty((0, 16, 16, 16), np.float32)
    _kernels.maxpool2d_backward_relu(empty, np.empty(empty.shape, np.int32), empty, np.empty((0, 32, 32, 16),
                                     np.float32), dbias)
    np.testing.assert_array_equal(dbias, np.zeros(16, np.float32))


@FAST
@given(pool_cases(), st.integers(0, 2**31))
def test_avgpool_matches_reference(case, seed):
    shape, geom, (oh, ow) = case
    x = random(shape, seed)
    dy = random((shape[0], oh, ow, shape[3]), seed + 1)
    y_ref, dx_ref = avgpool_ref(x, dy, *geom, oh, ow)
    y = np.full(y_ref.shape, np.nan, np.float32)
    _kernels.avgpool2d_forward(x, y, *geom)
    np.testing.assert_allclose(y, y_ref, rtol=1e-6, atol=1e-6)
    dx = np.full(shape, np.nan, np.float32)
    _kernels.avgpool2d_backward(dy, dx, *geom)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-5, atol=1e-6)


def test_same_padding_average_counts_only_valid_elements():
    x = np.ones((1, 3, 3, 1), np.float32)
    y = np.empty((1, 2, 2, 1), np.float32)
    _kernels.avgpool2d_forward(x, y, 2, 2, 2, 2, 0, 0)  # "same" on 3 with pool 2: pad 1 at the bottom/right
    np.testing.assert_array_equal(y, 1.0)


def test_kernels_are_bitwise_identical_on_1_and_2_threads():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5, 20, 21, 8)).astype(np.float32)
    geom = (3, 3, 1, 1, 1, 1, 1, 1, 20, 21)  # "same" 3x3: enough work to use threads
    outs = []
    for nt in (1, 2):
        cols = np.empty((5 * 20 * 21, 72), np.float32)
        _kernels.im2col(x, cols, *geom, 0, nt)
        dx = np.zeros_like(x)
        _kernels.col2im(cols, dx, *geom, 0, nt)
        y = np.empty((5, 10, 11, 8), np.float32)
        arg = np.empty(y.shape, np.int32)
        _kernels.maxpool2d_forward(x, y, arg, 3, 3, 2, 2, 1, 1, nt)
        dmax = np.empty_like(x)
        _kernels.maxpool2d_backward(y, arg, dmax, nt)
        avg = np.empty_like(y)
        _kernels.avgpool2d_forward(x, avg, 3, 3, 2, 2, 1, 1, nt)
        davg = np.empty_like(x)
        _kernels.avgpool2d_backward(avg, davg, 3, 3, 2, 2, 1, 1, nt)
        outs.append([cols, dx, y, arg, dmax, avg, davg])
    for a, b in zip(*outs):
        assert a.tobytes() == b.tobytes()


def test_bad_geometry_is_rejected():
    x = np.zeros((1, 4, 4, 2), np.float32)
    with pytest.raises(ValueError, match="columns"):
        _kernels.im2col(x, np.empty((4, 17), np.float32), 3, 3, 1, 1, 0, 0, 1, 1, 2, 2)
    with pytest.raises(ValueError, match="outside"):
        _kernels.im2col(x, np.empty((4, 18), np.float32), 3, 3, 1, 1, 0, 0, 1, 1, 2, 2, 1)
    with pytest.raises(ValueError, match="invalid argument"):
        _kernels.im2col(x, np.empty((4, 18), np.float32), 3, 3, 0, 1, 0, 0, 1, 1, 2, 2)
    with pytest.raises(ValueError, match="invalid argument"):
        _kernels.maxpool2d_forward(x, np.empty((1, 2, 2, 2), np.float32), np.empty((1, 2, 2, 2), np.int32),
                                   2, 0, 2, 2, 0, 0)
    with pytest.raises(ValueError, match="same batch size and channels"):
        _kernels.avgpool2d_forward(x, np.empty((1, 2, 2, 3), np.float32), 2, 2, 2, 2, 0, 0)
    with pytest.raises(ValueError, match="argmax index out of range"):
        _kernels.maxpool2d_backward(np.ones((1, 1, 1, 2), np.float32), np.full((1, 1, 1, 2), 99, np.int32),
                                    np.empty_like(x))


def test_all_padding_windows_give_zero_and_no_gradient():
    """Explicit padding as wide as the pool leaves windows empty (the layers never ask for this): only output
    (1, 1) sees the image."""
    x = random((1, 3, 3, 2), 3)
    y, arg = np.empty((1, 2, 2, 2), np.float32), np.empty((1, 2, 2, 2), np.int32)
    _kernels.maxpool2d_forward(x, y, arg, 2, 2, 2, 2, 2, 2)
    empty = [(0, 0), (0, 1), (1, 0)]
    assert all((y[0, i, j] == 0).all() and (arg[0, i, j] == -1).all() for i, j in empty)
    np.testing.assert_array_equal(y[0, 1, 1], x[0, :2, :2].max(axis=(0, 1)))
    dx = np.full_like(x, np.nan)
    _kernels.maxpool2d_backward(np.ones_like(y), arg, dx)
    assert dx.sum() == 2 and not np.isnan(dx).any()
    avg = np.empty_like(y)
    _kernels.avgpool2d_forward(x, avg, 2, 2, 2, 2, 2, 2)
    assert all((avg[0, i, j] == 0).all() for i, j in empty)
    np.testing.assert_allclose(avg[0, 1, 1], x[0, :2, :2].mean(axis=(0, 1)), rtol=1e-6)
