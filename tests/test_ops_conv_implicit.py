"""The implicit-GEMM convolution kernels (src/conv_implicit*.c): the forward against im2col then gemm, bit for
bit, and all three against a direct-loop float64 NumPy convolution, on hypothesis-drawn stride-1 shapes (batch 1,
1/3/odd/16/17/33/64 channels, odd and even kernels, dilation, "valid" and "same" padding, widths that are not
multiples of any tile), on every instruction set this CPU runs and on 1 and 2 threads (bitwise)."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fastnn import _kernels
from kernel_helpers import isa, ISA_IDS, ISAS
from test_ops_conv import geometry, random

ACTS = [0, 1, 2, 4]  # linear, relu (in registers), leaky relu, tanh (on the stored tile)
CASES = settings(max_examples=40, deadline=None)


@st.composite
def implicit_cases(draw):
    n = draw(st.sampled_from([1, 1, 2, 3]))
    h, w = draw(st.integers(1, 9)), draw(st.sampled_from([1, 2, 5, 7, 13, 31, 34]))
    c = draw(st.sampled_from([1, 3, 5, 16, 17, 33, 64]))
    kh, kw = draw(st.sampled_from([1, 2, 3, 5])), draw(st.sampled_from([1, 2, 3, 4, 5]))
    dh, dw = draw(st.sampled_from([1, 1, 2])), draw(st.sampled_from([1, 1, 3]))
    padding = draw(st.sampled_from(["valid", "same"]))
    oh, pt = geometry(h, kh, 1, dh, padding)
    ow, pl = geometry(w, kw, 1, dw, padding)
    assume(oh >= 1 and ow >= 1)
    filters = draw(st.sampled_from([1, 6, 16, 32, 33, 64, 70]))
    return (n, h, w, c), filters, (kh, kw, 1, 1, pt, pl, dh, dw, oh, ow)


def taps(geom):
    """(ky, kx, row offset, column offset) of every tap into the input padded by (pt, pl)."""
    kh, kw, _, _, _, _, dh, dw, _, _ = geom
    return [(ky, kx, ky * dh, kx * dw) for ky in range(kh) for kx in range(kw)]


def padded(x, geom):
    kh, kw, _, _, pt, pl, dh, dw, oh, ow = geom
    n, h, w, c = x.shape
    xp = np.zeros((n, max(h, oh + (kh - 1) * dh) + pt, max(w, ow + (kw - 1) * dw) + pl, c))
    xp[:, pt:pt + h, pl:pl + w] = x
    return xp


def conv_ref(x, kernel, geom):
    """y (n * oh * ow, filters) in float64, one tap at a time."""
    kh, kw, oh, ow, c = geom[0], geom[1], geom[8], geom[9], x.shape[3]
    k4, xp = kernel.reshape(kh, kw, c, -1).astype(np.float64), padded(x, geom)
    y = sum(xp[:, oy:oy + oh, ox:ox + ow] @ k4[ky, kx] for ky, kx, oy, ox in taps(geom))
    return y.reshape(-1, kernel.shape[1])


def backward_ref(x, kernel, dz, geom):
    """(dx, dkernel) in float64: the adjoint of conv_ref, tap by tap."""
    kh, kw, _, _, pt, pl, _, _, oh, ow = geom
    n, h, w, c = x.shape
    k4, xp = kernel.reshape(kh, kw, c, -1).astype(np.float64), padded(x, geom)
    dz4 = dz.reshape(n, oh, ow, -1).astype(np.float64)
    dxp, dk = np.zeros_like(xp), np.zeros(k4.shape)
    for ky, kx, oy, ox in taps(geom):
        dxp[:, oy:oy + oh, ox:ox + ow] += dz4 @ k4[ky, kx].T
        dk[ky, kx] = np.einsum("nyxc,nyxf->cf", xp[:, oy:oy + oh, ox:ox + ow], dz4)
    return dxp[:, pt:pt + h, pl:pl + w], dk.reshape(kernel.shape)


def forward(x, kernel, bias, act, geom, n_threads):
    y = np.full((x.shape[0] * geom[-2] * geom[-1], kernel.shape[1]), np.nan, np.float32)
    _kernels.conv2d_implicit_forward(x, kernel, y, *geom, bias=bias, act=act, act_alpha=0.2, n_threads=n_threads)
    return y


def backward(x, kernel, dz, geom, n_threads):
    dx, dk = np.full(x.shape, np.nan, np.float32), np.full(kernel.shape, np.nan, np.float32)
    _kernels.conv2d_implicit_backward_data(dz, kernel, dx, *geom, n_threads=n_threads)
    _kernels.conv2d_implicit_backward_kernel(x, dz, dk, *geom, n_threads=n_threads)
    return dx, dk


def im2col_gemm(x, kernel, bias, act, geom):
    cols = np.empty((x.shape[0] * geom[-2] * geom[-1], kernel.shape[0]), np.float32)
    _kernels.im2col(x, cols, *geom)
    y = np.empty((cols.shape[0], kernel.shape[1]), np.float32)
    _kernels.gemm(cols, kernel, y, bias=bias, act=act, act_alpha=0.2)
    return y


def close(got, expected, terms):
    """float32 sums of `terms` unit-variance products against float64."""
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * np.sqrt(terms) + 1e-6)


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@CASES
@given(case=implicit_cases(), act=st.sampled_from(ACTS), seed=st.integers(0, 2**31))
def test_forward_is_bitwise_im2col_then_gemm_on_1_and_2_threads(isa_index, case, act, seed):
    shape, filters, geom = case
    x = random(shape, seed)
    kernel = random((geom[0] * geom[1] * shape[3], filters), seed + 1)
    bias = random((filters,), seed + 2)
    with isa(isa_index):
        expected = im2col_gemm(x, kernel, bias, act, geom)
        for n_threads in (1, 2):
            got = forward(x, kernel, bias, act, geom, n_threads)
            np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))
    if act == 0:
        close(expected - bias, conv_ref(x, kernel, geom), kernel.shape[0])


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@CASES
@given(case=implicit_cases(), seed=st.integers(0, 2**31))
def test_backward_matches_the_direct_convolution_and_is_bitwise_on_1_and_2_threads(isa_index, case, seed):
    shape, filters, geom = case
    x = random(shape, seed)
    kernel = random((geom[0] * geom[1] * shape[3], filters), seed + 1)
    dz = random((shape[0] * geom[-2] * geom[-1], filters), seed + 2)
    dx_ref, dk_ref = backward_ref(x, kernel, dz, geom)
    with isa(isa_index):
        dx, dk = backward(x, kernel, dz, geom, 1)
        close(dx, dx_ref, geom[0] * geom[1] * filters)
        close(dk, dk_ref, dz.shape[0])
        dx2, dk2 = backward(x, kernel, dz, geom, 2)
        relu_y = np.maximum(random(shape, seed + 3), 0)  # about half zeros
        sums = []
        for n_threads in (1, 2):  # masked by a ReLU's output: that ReLU's input gradient, bit for bit
            masked, colsum = np.full(shape, np.nan, np.float32), np.full(shape[3], np.nan, np.float32)
            _kernels.conv2d_implicit_backward_data(dz, kernel, masked, *geom, relu_y, colsum, n_threads)
            np.testing.assert_array_equal(masked, np.where(relu_y > 0, dx, np.float32(0)))
            sums.append(colsum)
        np.testing.assert_allclose(sums[0], masked.astype(np.float64).sum(axis=(0, 1, 2)), rtol=1e-6, atol=1e-6)
        assert sums[0].tobytes() == sums[1].tobytes()
    assert dx2.tobytes() == dx.tobytes() and dk2.tobytes() == dk.tobytes()


@pytest.mark.parametrize("shape, filters", [((4, 32, 32, 32), 32), ((3, 16, 16, 32), 64), ((2, 11, 37, 17), 33),
                                            ((1, 8, 8, 64), 16)])
def test_workload_shapes_forward_backward_on_two_threads(shape, filters):
    """Big enough for the threaded path on every kernel, "same" 3x3 as in cnn32."""
    x = random(shape, 1)
    geom = (3, 3, 1, 1, 1, 1, 1, 1, shape[1], shape[2])
    kernel, bias = random((9 * shape[3], filters), 2), random((filters,), 3)
    dz = random((shape[0] * shape[1] * shape[2], filters), 4)
    y = forward(x, kernel, bias, 1, geom, 2)
    np.testing.assert_array_equal(y, im2col_gemm(x, kernel, bias, 1, geom))
    np.testing.assert_array_equal(y, forward(x, kernel, bias, 1, geom, 1))
    dx, dk = backward(x, kernel, dz, geom, 2)
    dx_ref, dk_ref = backward_ref(x, kernel, dz, geom)
    close(dx, dx_ref, 9 * filters)
    close(dk, dk_ref, dz.shape[0])
    dx1, dk1 = backward(x, kernel, dz, geom, 1)
    assert dx1.tobytes() == dx.tobytes() and dk1.tobytes() == dk.tobytes()


def test_kernel_gradient_accumulates_when_asked():
    x, geom = random((2, 6, 7, 16), 5), (3, 3, 1, 1, 1, 1, 1, 1, 6, 7)
    dz = random((2 * 6 * 7, 20), 6)
    dk = random((9 * 16, 20), 7)
    start = dk.copy()
    _kernels.conv2d_implicit_backward_kernel(x, dz, dk, *geom, accumulate=True)
    close(dk, start + backward_ref(x, np.zeros((9 * 16, 20), np.float32), dz, geom)[1], dz.shape[0])


def test_an_empty_batch_writes_nothing_but_zeroes_the_kernel_gradient():
    geom = (3, 3, 1, 1, 1, 1, 1, 1, 4, 4)
    x, kernel = np.zeros((0, 4, 4, 16), np.float32), random((144, 8), 1)
    y, dz = np.zeros((0, 8), np.float32), np.zeros((0, 8), np.float32)
    _kernels.conv2d_implicit_forward(x, kernel, y, *geom)
    _kernels.conv2d_implicit_backward_data(dz, kernel, x, *geom)
    dk = np.full(kernel.shape, np.nan, np.float32)
    _kernels.conv2d_implicit_backward_kernel(x, dz, dk, *geom)
    assert not dk.any()


def test_bad_arguments_are_rejected():
    x, kernel = random((2, 5, 5, 16), 1), random((144, 8), 2)
    geom = (3, 3, 1, 1, 1, 1, 1, 1, 5, 5)
    y = np.empty((50, 8), np.float32)
    with pytest.raises(ValueError, match="strides"):
        _kernels.conv2d_implicit_forward(x, kernel, y, 3, 3, 2, 1, 1, 1, 1, 1, 3, 5)
    with pytest.raises(ValueError, match="do not fit"):
        _kernels.conv2d_implicit_forward(x, kernel[:100], y, *geom)
    with pytest.raises(ValueError, match="do not fit"):
        _kernels.conv2d_implicit_backward_data(y[:40], kernel, x, *geom)
    with pytest.raises(ValueError, match="do not fit"):
        _kernels.conv2d_implicit_backward_kernel(x, y, np.empty((144, 4), np.float32), *geom)
    with pytest.raises(ValueError, match="bias"):
        _kernels.conv2d_implicit_forward(x, kernel, y, *geom, bias=np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="relu_y must have dx's shape"):
        _kernels.conv2d_implicit_backward_data(y, kernel, x, *geom, relu_y=x[:1])
    with pytest.raises(ValueError, match="dx_colsum must have 16 elements"):
        _kernels.conv2d_implicit_backward_data(y, kernel, x, *geom, dx_colsum=np.zeros(8, np.float32))
    with pytest.raises(ValueError, match="invalid argument"):
        _kernels.conv2d_implicit_forward(x, kernel, y, 3, 3, 1, 1, -1, 1, 1, 1, 5, 5)


@pytest.mark.parametrize("winograd", [False, True])
def test_both_gradients_in_one_chunked_call_are_the_bits_of_the_two_calls(winograd):
    """40 images of 32 x 32 x 32: more than one chunk of images (CONV_BACKWARD_CHUNK_BYTES), so the kernel
    gradient's chains continue across chunks; accumulating, and with a ReLU mask and its sums."""
    x = np.maximum(random((40, 32, 32, 32), 1), 0)
    geom = (3, 3, 1, 1, 1, 1, 1, 1, 32, 32)
    kernel, dz = random((288, 32), 2), random((40 * 32 * 32, 32), 3)
    start = random((288, 32), 4)
    for accumulate in (False, True):
        dk1, dk2 = start.copy(), start.copy()
        dx1, dx2 = np.full(x.shape, np.nan, np.float32), np.full(x.shape, np.nan, np.float32)
        s1, s2 = np.full(32, np.nan, np.float32), np.full(32, np.nan, np.float32)
        _kernels.conv2d_implicit_backward_kernel(x, dz, dk1, *geom, accumulate, 2)
        _kernels.conv2d_implicit_backward_data(dz, kernel, dx1, *geom, x, s1, 2, winograd)
        _kernels.conv2d_implicit_backward(x, dz, kernel, dk2, dx2, *geom, x, s2, accumulate, 2, winograd)
        assert dk1.tobytes() == dk2.tobytes() and dx1.tobytes() == dx2.tobytes() and s1.tobytes() == s2.tobytes()
    with pytest.raises(ValueError, match="dx must have x's shape"):
        _kernels.conv2d_implicit_backward(x, dz, kernel, dk2, dx2[:2], *geom)
