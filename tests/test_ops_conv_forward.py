"""The inference kernels of the conv layers: fnn_conv2d_forward_f32 (im2col + GEMM chunked in C) against
im2col then gemm, bitwise, and max pooling without indices against the indexed pass."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastnn
from fastnn import _kernels
from fastnn import layers as L
from kernel_helpers import isa, ISA_IDS, ISAS
from test_ops_conv import conv_cases, random

ACTS = [0, 1, 2, 4]  # linear, relu (in registers), leaky relu, tanh (on the stored tile)


def _reference(x, kernel, bias, act, geom):
    rows = x.shape[0] * geom[-2] * geom[-1]
    cols = np.empty((rows, kernel.shape[0]), np.float32)
    _kernels.im2col(x, cols, *geom)
    y = np.empty((rows, kernel.shape[1]), np.float32)
    _kernels.gemm(cols, kernel, y, bias=bias, act=act, act_alpha=0.2)
    return y


def _conv(x, kernel, bias, act, geom, chunk, blocks, n_threads):
    y = np.full((x.shape[0] * geom[-2] * geom[-1], kernel.shape[1]), np.nan, np.float32)
    cols = np.empty((blocks, chunk, kernel.shape[0]), np.float32)
    _kernels.conv2d_forward(x, kernel, y, cols, *geom, bias=bias, act=act, act_alpha=0.2, n_threads=n_threads)
    return y


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@settings(max_examples=25, deadline=None)
@given(case=conv_cases(), filters=st.sampled_from([1, 6, 16, 33]), act=st.sampled_from(ACTS),
       chunk=st.sampled_from([1, 5, 24, 1000]), seed=st.integers(0, 2**31))
def test_conv2d_forward_is_bitwise_im2col_then_gemm(isa_index, case, filters, act, chunk, seed):
    shape, geom = case
    x = random(shape, seed)
    k = geom[0] * geom[1] * shape[3]
    kernel, bias = random((k, filters), seed + 1), random((filters,), seed + 2)
    with isa(isa_index):
        expected = _reference(x, kernel, bias, act, geom)
        for blocks, n_threads in [(1, 1), (2, 2), (1, 2), (3, 2)]:
            got = _conv(x, kernel, bias, act, geom, chunk, blocks, n_threads)
            np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))


@pytest.mark.parametrize("shape, kernel_size, padding", [((64, 28, 28, 1), 5, 0), ((16, 32, 32, 3), 3, 1),
                                                         ((8, 16, 16, 32), 3, 1), ((4, 12, 12, 6), 5, 0)])
def test_conv2d_forward_workload_shapes_on_two_threads(shape, kernel_size, padding):
    x = random(shape, 3)
    out = shape[1] + 2 * padding - kernel_size + 1
    geom = (kernel_size, kernel_size, 1, 1, padding, padding, 1, 1, out, out)
    kernel = random((kernel_size * kernel_size * shape[3], 16), 4)
    expected = _reference(x, kernel, None, 1, geom)
    got = _conv(x, kernel, None, 1, geom, 96, 2, 2)
    np.testing.assert_array_equal(got, expected)


def test_conv2d_forward_rejects_mismatched_arrays():
    x = np.zeros((2, 5, 5, 3), np.float32)
    geom = (3, 3, 1, 1, 0, 0, 1, 1, 3, 3)
    kernel, y = np.zeros((27, 4), np.float32), np.zeros((18, 4), np.float32)
    with pytest.raises(ValueError, match="do not fit"):
        _kernels.conv2d_forward(x, kernel, y, np.zeros((1, 8, 26), np.float32), *geom)
    with pytest.raises(ValueError, match="do not fit"):
        _kernels.conv2d_forward(x, kernel, np.zeros((17, 4), np.float32), np.zeros((1, 8, 27), np.float32), *geom)
    with pytest.raises(ValueError, match="at least one row"):
        _kernels.conv2d_forward(x, kernel, y, np.zeros((1, 0, 27), np.float32), *geom)
    with pytest.raises(ValueError, match="bias must have length 4"):
        _kernels.conv2d_forward(x, kernel, y, np.zeros((1, 8, 27), np.float32), *geom,
                                bias=np.zeros(3, np.float32))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9), c=st.sampled_from([1, 6, 16, 17]),
       pool=st.integers(1, 3), stride=st.integers(1, 3), pad=st.integers(0, 1), seed=st.integers(0, 2**31))
def test_maxpool_values_only_match_the_indexed_pass(n, h, w, c, pool, stride, pad, seed):
    oh, ow = (h + 2 * pad - pool) // stride + 1, (w + 2 * pad - pool) // stride + 1
    if oh < 1 or ow < 1:
        return
    x = random((n, h, w, c), seed)
    x[x > 1.5] = np.nan  # NaN and signed zeros keep the indexed pass's first-wins rule
    x[np.abs(x) < 0.1] = -0.0
    y1, y2 = np.empty((2, n, oh, ow, c), np.float32)
    _kernels.maxpool2d_forward(x, y1, np.empty(y1.shape, np.int32), pool, pool, stride, stride, pad, pad, 2)
    _kernels.maxpool2d_forward(x, y2, None, pool, pool, stride, stride, pad, pad, 2)
    np.testing.assert_array_equal(y1.view(np.uint32), y2.view(np.uint32))


def test_maxpool_backward_after_an_inference_pass():
    """A gradient taken after forward(training=False) (a saliency map) still routes through the maxima."""
    layer = L.MaxPool2D(2)
    fastnn.Sequential([L.Input((4, 4, 2)), layer])
    x = random((2, 4, 4, 2), 8)
    dy = random((2, 2, 2, 2), 9)
    layer.forward(x, training=True)
    expected = layer.backward(dy).copy()
    layer.forward(x, training=False)
    np.testing.assert_array_equal(layer.backward(dy), expected)
