"""Winograd F(2x2, 3x3) on the implicit convolution's forward driver (src/conv_winograd_avx512.c): the forward
pass, the input gradient (masked by a ReLU's output, with its channel sums) and the fused 2x2 pool against a
float64 NumPy convolution on hypothesis-drawn shapes that take it (3x3, undilated, even output grids, 16-multiple
channels, both paddings, widths of one tile to several chunks), bitwise on 1 and 2 threads; shapes that do not
take it run the direct chain, bit for bit."""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastnn
from fastnn import _kernels
from fastnn.layers import Conv2D
from gradcheck import check_layer_gradients
from test_ops_conv import random
from test_ops_conv_implicit import backward_ref, close, conv_ref, forward

AVX512 = _kernels.ISA_NAMES[_kernels.isa_current()] == "avx512"  # the instruction set in use (FASTNN_ISA may force one)
needs_avx512 = pytest.mark.skipif(not AVX512, reason="Winograd runs on AVX-512 only, and AVX-512 is not in use")
CASES = settings(max_examples=30, deadline=None)
ACTS = {0: lambda z: z, 1: lambda z: np.maximum(z, 0), 2: lambda z: np.where(z > 0, z, 0.2 * z), 4: np.tanh}


@st.composite
def winograd_cases(draw):
    n = draw(st.sampled_from([1, 2, 3]))
    padding = draw(st.sampled_from(["same", "valid"]))
    # even output grids: 1 tile wide up to past one chunk of 16 tiles a row pair
    oh, ow = 2 * draw(st.integers(1, 5)), 2 * draw(st.sampled_from([1, 2, 3, 8, 17]))
    pad = 1 if padding == "same" else 0
    h, w = (oh, ow) if pad else (oh + 2, ow + 2)
    c, filters = draw(st.sampled_from([16, 32, 48])), draw(st.sampled_from([16, 32, 64, 80]))
    return (n, h, w, c), filters, (3, 3, 1, 1, pad, pad, 1, 1, oh, ow)


def winograd_forward(x, kernel, bias, act, geom, n_threads, pooled=None, argmax=None, y=True):
    out = np.full((x.shape[0] * geom[-2] * geom[-1], kernel.shape[1]), np.nan, np.float32) if y else None
    _kernels.conv2d_implicit_forward(x, kernel, out, *geom, bias, act, 0.2, pooled, argmax, n_threads, True)
    return out


def winograd_dx(dz, kernel, shape, geom, n_threads, relu_y=None, colsum=None):
    dx = np.full(shape, np.nan, np.float32)
    _kernels.conv2d_implicit_backward_data(dz, kernel, dx, *geom, relu_y, colsum, n_threads, True)
    return dx


def test_which_shapes_take_it():
    applies = _kernels.conv2d_winograd_applies
    assert applies(32, 3, 3, 1, 1, 32, 32, 32) == AVX512
    for args in [(8, 3, 3, 1, 1, 8, 8, 16), (16, 3, 3, 1, 1, 8, 8, 24), (16, 5, 5, 1, 1, 8, 8, 16),
                 (16, 3, 3, 2, 2, 8, 8, 16), (16, 3, 3, 1, 1, 7, 8, 16), (16, 3, 3, 1, 1, 8, 9, 16)]:
        assert not applies(*args), args


@needs_avx512
@CASES
@given(case=winograd_cases(), act=st.sampled_from(sorted(ACTS)), seed=st.integers(0, 2**31))
def test_forward_matches_the_convolution_and_is_bitwise_on_1_and_2_threads(case, act, seed):
    shape, filters, geom = case
    x, kernel = random(shape, seed), random((9 * shape[3], filters), seed + 1)
    bias = random((filters,), seed + 2)
    y = winograd_forward(x, kernel, bias, act, geom, 1)
    z = conv_ref(x, kernel, geom) + bias
    close(y, ACTS[act](z), kernel.shape[0])
    assert winograd_forward(x, kernel, bias, act, geom, 2).tobytes() == y.tobytes()
    assert _kernels.conv2d_winograd_applies(shape[3], 3, 3, 1, 1, geom[-2], geom[-1], filters)
    assert not np.array_equal(y, forward(x, kernel, bias, act, geom, 1))  # not the direct chain's rounding


@needs_avx512
@CASES
@given(case=winograd_cases(), seed=st.integers(0, 2**31))
def test_input_gradient_masked_and_summed_is_bitwise_on_1_and_2_threads(case, seed):
    shape, filters, geom = case
    x, kernel = random(shape, seed), random((9 * shape[3], filters), seed + 1)
    dz = random((shape[0] * geom[-2] * geom[-1], filters), seed + 2)
    dx = winograd_dx(dz, kernel, shape, geom, 1)
    close(dx, backward_ref(x, kernel, dz, geom)[0], 9 * filters)
    relu_y = np.maximum(random(shape, seed + 3), 0)
    results = []
    for n_threads in (1, 2):
        colsum = np.full(shape[3], np.nan, np.float32)
        masked = winograd_dx(dz, kernel, shape, geom, n_threads, relu_y, colsum)
        np.testing.assert_array_equal(masked, np.where(relu_y > 0, dx, np.float32(0)))
        np.testing.assert_allclose(colsum, masked.astype(np.float64).sum(axis=(0, 1, 2)), rtol=1e-6, atol=1e-6)
        results.append(masked.tobytes() + colsum.tobytes())
    assert results[0] == results[1]
    assert winograd_dx(dz, kernel, shape, geom, 2).tobytes() == dx.tobytes()


@needs_avx512
@settings(max_examples=15, deadline=None)
@given(case=winograd_cases(), act=st.sampled_from([0, 1, 2]), seed=st.integers(0, 2**31))
def test_pooled_output_is_the_pool_of_its_own_map(case, act, seed):
    shape, filters, geom = case
    x, kernel = random(shape, seed), random((9 * shape[3], filters), seed + 1)
    bias = random((filters,), seed + 2)
    n, oh, ow = shape[0], geom[-2], geom[-1]
    pooled = np.full((n, oh // 2, ow // 2, filters), np.nan, np.float32)
    argmax = np.full(pooled.shape, -1, np.int32)
    y = winograd_forward(x, kernel, bias, act, geom, 2, pooled, argmax)
    alone = np.full_like(pooled, np.nan)
    winograd_forward(x, kernel, bias, act, geom, 1, alone, None, y=False)
    y4 = y.reshape(n, oh, ow, filters)
    blocks = y4.reshape(n, oh // 2, 2, ow // 2, 2, filters)
    np.testing.assert_array_equal(pooled, blocks.max(axis=(2, 4)))
    np.testing.assert_array_equal(alone, pooled)
    np.testing.assert_array_equal(np.take_along_axis(y4.reshape(n, -1), argmax.reshape(n, -1), 1),
                                  pooled.reshape(n, -1))


@pytest.mark.parametrize("shape, filters, geom", [
    ((2, 6, 6, 8), 16, (3, 3, 1, 1, 1, 1, 1, 1, 6, 6)),     # 8 channels
    ((2, 7, 6, 16), 16, (3, 3, 1, 1, 1, 1, 1, 1, 7, 6)),    # odd grid
    ((1, 8, 8, 16), 24, (3, 3, 1, 1, 1, 1, 1, 1, 8, 8)),    # 24 filters
    ((1, 8, 8, 16), 16, (3, 3, 1, 1, 2, 2, 2, 2, 8, 8)),    # dilated
    ((1, 8, 8, 16), 16, (5, 5, 1, 1, 2, 2, 1, 1, 8, 8))])   # 5x5
def test_shapes_that_do_not_take_it_run_the_direct_chain(shape, filters, geom):
    x, kernel = random(shape, 1), random((geom[0] * geom[1] * shape[3], filters), 2)
    bias, dz = random((filters,), 3), random((shape[0] * geom[-2] * geom[-1], filters), 4)
    assert winograd_forward(x, kernel, bias, 1, geom, 2).tobytes() == forward(x, kernel, bias, 1, geom, 2).tobytes()
    direct = np.full(shape, np.nan, np.float32)
    _kernels.conv2d_implicit_backward_data(dz, kernel, direct, *geom, n_threads=2)
    assert winograd_dx(dz, kernel, shape, geom, 2).tobytes() == direct.tobytes()


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_a_conv2d_layer_on_winograd_passes_the_gradient_check(padding):
    layer = Conv2D(16, 3, padding=padding, activation="tanh")
    check_layer_gradients(layer, (6, 6, 16))
    assert layer._winograd


@needs_avx512
def test_cnn32_shapes_on_two_threads_and_a_model_trains_through_it():
    x = random((4, 32, 32, 32), 1)
    geom = (3, 3, 1, 1, 1, 1, 1, 1, 32, 32)
    kernel, bias = random((9 * 32, 32), 2), random((32,), 3)
    y = winograd_forward(x, kernel, bias, 1, geom, 2)
    close(y, np.maximum(conv_ref(x, kernel, geom) + bias, 0), 9 * 32)
    fastnn.set_seed(0)
    model = fastnn.Sequential([fastnn.layers.Input((16, 16, 16)),
                               Conv2D(16, 3, padding="same", activation="relu"),
                               Conv2D(32, 3, padding="same", activation="relu"),
                               fastnn.layers.MaxPool2D(2), fastnn.layers.Flatten(), fastnn.layers.Dense(2)])
    model.compile(fastnn.optimizers.SGD(0.02, momentum=0.9), "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((64, 16, 16, 16)).astype(np.float32)
    labels = (xs[:, :8].mean(axis=(1, 2, 3)) > xs[:, 8:].mean(axis=(1, 2, 3))).astype(np.int64)
    first = model.train_on_batch(xs, labels)
    for _ in range(30):
        last = model.train_on_batch(xs, labels)
    assert last < 0.5 * first


def test_fastnn_winograd_0_keeps_every_convolution_on_the_direct_sum():
    """Read at import, in a fresh interpreter: a cnn32-shaped layer then gives im2col + GEMM's bits."""
    code = ("import numpy as np, fastnn; from fastnn.layers import Conv2D; from fastnn import _kernels\n"
            "l = Conv2D(32, 3, padding='same', activation='relu'); m = fastnn.Sequential("
            "[fastnn.layers.Input((8, 8, 32)), l])\n"
            "x = np.random.default_rng(0).standard_normal((2, 8, 8, 32)).astype(np.float32)\n"
            "y = m.predict_on_batch(x).reshape(-1, 32); k = l.weights[0].reshape(-1, 32)\n"
            "cols = np.empty((128, 288), np.float32); _kernels.im2col(x, cols, 3, 3, 1, 1, 1, 1, 1, 1, 8, 8)\n"
            "ref = np.empty((128, 32), np.float32); _kernels.gemm(cols, k, ref, bias=l.weights[1], act=1)\n"
            "print(l._winograd, y.tobytes() == ref.tobytes())")
    for flag, expected in (("0", "False True"), ("1", f"True {not AVX512}")):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env=dict(os.environ, FASTNN_WINOGRAD=flag)).stdout.split()
        assert " ".join(out) == expected, (flag, out)
