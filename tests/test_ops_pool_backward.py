"""Max pooling's backward kernels (src/pool_max_backward.c) bit for bit against a NumPy scatter.

The kernels write an image directly when each argmax lies in its own 2x2 block (2x2 stride-2 pools) and scatter
otherwise; both must give exactly what zeros-then-add-at-each-argmax gives in float32, and the bias gradient
exactly the per-image double sums in pooled-element order, then the images in order, on every instruction set
the CPU has (each test runs once per ISA). Shapes are drawn by
hypothesis: batch 1, channels 1/3/odd/16/17/64 (vector lanes and their tails), odd sizes (an uncovered last
row/column), windows that do not overlap, overlap, are padded or skip elements.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn import _kernels
from kernel_helpers import ISA_IDS, ISAS, isa
from test_ops_conv import geometry, windows

FAST = settings(max_examples=60, deadline=None)
POOLS = [(2, 2, 2, 2, "valid"), (2, 2, 2, 2, "same"), (3, 3, 2, 2, "same"), (2, 2, 1, 1, "valid"),
         (2, 2, 1, 1, "same"), (3, 3, 3, 3, "valid"), (1, 1, 2, 2, "valid"), (2, 3, 2, 3, "same")]


@pytest.fixture(scope="module", params=ISAS, ids=ISA_IDS, autouse=True)
def each_isa(request):
    with isa(request.param):
        yield


@st.composite
def cases(draw):
    n, h, w = draw(st.sampled_from([1, 1, 2, 3])), draw(st.integers(1, 11)), draw(st.integers(1, 11))
    c = draw(st.sampled_from([1, 3, 5, 16, 17, 64, 4, 8]))
    ph, pw, sh, sw, padding = draw(st.sampled_from(POOLS))
    oh, pt = geometry(h, ph, sh, 1, padding)
    ow, pl = geometry(w, pw, sw, 1, padding)
    if oh < 1 or ow < 1:  # a pool larger than a "valid" input: fall back to one that fits
        (ph, pw, sh, sw, pt, pl), oh, ow = (1, 1, 1, 1, 0, 0), h, w
    return (n, h, w, c), (ph, pw, sh, sw, pt, pl), (oh, ow)


def first_max_indices(x, ph, pw, sh, sw, pt, pl, oh, ow):
    """argmax as the forward kernel defines it: per window the first maximum's (iy * w + ix) * c + ch."""
    n, h, w, c = x.shape
    arg = np.full((n, oh, ow, c), -1, np.int32)
    for oy, ox, win in windows(h, w, ph, pw, sh, sw, pt, pl, oh, ow):
        if win:
            k = np.argmax(np.stack([x[:, iy, ix] for iy, ix in win]), axis=0)  # first maximum on ties
            pos = np.array([(iy * w + ix) * c for iy, ix in win])
            arg[:, oy, ox] = pos[k] + np.arange(c)
    return arg


def scatter_ref(dy, arg, pooled, in_shape):
    """dz (float32, zeros then += at each argmax in element order) and dbias (pooled not None: per image double
    sums in element order, then the images in order)."""
    n, c = dy.shape[0], dy.shape[3]
    v = dy if pooled is None else np.where(pooled > 0, dy, np.float32(0.0))
    dz = np.zeros((n, int(np.prod(in_shape[1:]))), np.float32)
    total = np.zeros(c, np.float64)
    for i in range(n):
        a, vi = arg[i].reshape(-1), v[i].reshape(-1)
        np.add.at(dz[i], a[a >= 0], vi[a >= 0])
        sums = np.zeros(c, np.float64)
        for a_pix, v_pix in zip(arg[i].reshape(-1, c), v[i].reshape(-1, c)):
            sums += np.where(a_pix >= 0, v_pix.astype(np.float64), 0.0)
        total += sums
    return dz.reshape(in_shape), total.astype(np.float32)


def run(dy, arg, pooled, in_shape, n_threads=1):
    """Both kernels: (dx of the plain backward, dz and dbias of the one through the ReLU)."""
    dx = np.full(in_shape, np.nan, np.float32)
    _kernels.maxpool2d_backward(dy, arg, dx, n_threads)
    dz, dbias = np.full(in_shape, np.nan, np.float32), np.full(in_shape[3], np.nan, np.float32)
    _kernels.maxpool2d_backward_relu(dy, arg, pooled, dz, dbias, n_threads)
    return dx, dz, dbias


def pooled_case(shape, geom, oh, ow, seed, ties=False):
    x = np.maximum(np.random.default_rng(seed).standard_normal(shape).astype(np.float32), 0.0)
    if ties:  # few distinct values: many windows hold several maxima
        x = np.round(x)
    pooled, arg = np.empty((shape[0], oh, ow, shape[3]), np.float32), np.empty((shape[0], oh, ow, shape[3]), np.int32)
    _kernels.maxpool2d_forward(x, pooled, arg, *geom)
    dy = np.random.default_rng(seed + 1).standard_normal(pooled.shape).astype(np.float32)
    return x, dy, pooled, arg


def assert_bits(a, b):
    assert a.tobytes() == b.tobytes(), np.argwhere(a.view(np.uint32) != b.view(np.uint32))[:5]


@FAST
@given(cases(), st.integers(0, 2**31), st.booleans())
def test_backward_passes_match_the_scatter_bit_for_bit(case, seed, ties):
    shape, geom, (oh, ow) = case
    x, dy, pooled, arg = pooled_case(shape, geom, oh, ow, seed, ties)
    np.testing.assert_array_equal(arg, first_max_indices(x, *geom, oh, ow))
    dx, dz, dbias = run(dy, arg, pooled, shape)
    assert_bits(dx, scatter_ref(dy, arg, None, shape)[0])
    dz_ref, dbias_ref = scatter_ref(dy, arg, pooled, shape)
    assert_bits(dz, dz_ref)
    assert_bits(dbias, dbias_ref)


@pytest.mark.parametrize("pool", [(2, 2, 2, 2, 0, 0), (3, 3, 2, 2, 1, 1), (2, 2, 1, 1, 0, 0)])
def test_one_and_two_threads_give_the_same_bits(pool):
    shape = (9, 31, 33, 17)  # enough for two threads; odd sizes and channels
    oh, _ = geometry(31, pool[0], pool[2], 1, "same" if pool[4] else "valid")
    ow, _ = geometry(33, pool[1], pool[3], 1, "same" if pool[4] else "valid")
    _, dy, pooled, arg = pooled_case(shape, pool, oh, ow, 7)
    one, two = run(dy, arg, pooled, shape, 1), run(dy, arg, pooled, shape, 2)
    for a, b, want in zip(one, two, scatter_ref(dy, arg, None, shape)[:1] + scatter_ref(dy, arg, pooled, shape)):
        assert_bits(a, b)
        assert_bits(a, want)


def test_an_image_whose_argmax_leaves_its_block_is_scattered():
    """A valid index outside its own 2x2 block (as another pool would write) sends that image, from the pooled
    row where it is met, to the scatter; the rows written before are zeroed again, the other images stay
    direct."""
    shape = (3, 16, 16, 8)
    _, dy, pooled, arg = pooled_case(shape, (2, 2, 2, 2, 0, 0), 8, 8, 11)
    arg[1, 5, 3, 2] = arg[1, 0, 0, 2]  # two windows onto one element: their values add up
    arg[2, 7, 7, :] = arg[2, 6, 6, :]
    dx, dz, dbias = run(dy, arg, pooled, shape)
    assert_bits(dx, scatter_ref(dy, arg, None, shape)[0])
    dz_ref, dbias_ref = scatter_ref(dy, arg, pooled, shape)
    assert_bits(dz, dz_ref)
    assert_bits(dbias, dbias_ref)


@pytest.mark.parametrize("bad", [16 * 16 * 8, np.iinfo(np.int32).max, -2, np.iinfo(np.int32).min])
@pytest.mark.parametrize("where", [(0, 0, 0, 0), (1, 7, 7, 7)])
def test_a_corrupted_argmax_is_an_error(bad, where):
    shape = (2, 16, 16, 8)
    _, dy, pooled, arg = pooled_case(shape, (2, 2, 2, 2, 0, 0), 8, 8, 5)
    arg[where] = bad
    with pytest.raises(ValueError, match="argmax index out of range"):
        _kernels.maxpool2d_backward(dy, arg, np.empty(shape, np.float32))
    with pytest.raises(ValueError, match="argmax index out of range"):
        _kernels.maxpool2d_backward_relu(dy, arg, pooled, np.empty(shape, np.float32), np.empty(8, np.float32))


@pytest.mark.parametrize("pool", [(2, 2, 2, 2, 0, 0), (3, 3, 2, 2, 1, 1)])
def test_signed_zeros_and_denormals_as_the_scatter_adds_them(pool):
    """The direct writes store 0 + v as the scatter does: -0 becomes +0, and a denormal (the workers flush
    them) 0, on both paths."""
    shape = (2, 8, 8, 5)
    _, dy, pooled, arg = pooled_case(shape, pool, 4, 4, 3)
    dy[0] = -0.0
    dy[1] = np.float32(1e-40)
    dx, dz, dbias = run(dy, arg, np.abs(pooled) + 1, shape)
    for out in (dx, dz, dbias):
        assert_bits(out, np.zeros_like(out))
