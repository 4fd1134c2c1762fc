"""The implicit-GEMM convolution with the 2x2 max pool after it fused in (src/conv_implicit.c + pool.c's
fnn_maxpool2x2_rows): bitwise the convolution then the pool kernel, with and without the full-resolution map,
on hypothesis-drawn shapes, every instruction set and 1 and 2 threads; and the model's training and prediction
through it, bit for bit the unfused layers."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fastnn
from fastnn import _kernels
from fastnn import layers as L
from kernel_helpers import isa, ISA_IDS, ISAS
from test_ops_conv import geometry, random

ACTS = [0, 1, 2]  # linear, relu, leaky relu


@st.composite
def pooled_cases(draw):
    n = draw(st.sampled_from([1, 2, 3]))
    h, w = draw(st.sampled_from([2, 4, 6, 7, 9])), draw(st.sampled_from([2, 4, 5, 14, 34]))
    c = draw(st.sampled_from([1, 12, 16, 17, 33]))
    kh, kw = draw(st.sampled_from([1, 2, 3, 5])), draw(st.sampled_from([1, 2, 3, 4]))
    padding = draw(st.sampled_from(["valid", "same"]))
    oh, pt = geometry(h, kh, 1, 1, padding)
    ow, pl = geometry(w, kw, 1, 1, padding)
    assume(oh >= 2 and ow >= 2 and oh % 2 == 0 and ow % 2 == 0)
    filters = draw(st.sampled_from([1, 16, 20, 32, 64, 70]))
    return (n, h, w, c), filters, (kh, kw, 1, 1, pt, pl, 1, 1, oh, ow)


def conv_then_pool(x, kernel, bias, act, geom, n_threads):
    oh, ow, f = geom[8], geom[9], kernel.shape[1]
    y = np.empty((x.shape[0] * oh * ow, f), np.float32)
    _kernels.conv2d_implicit_forward(x, kernel, y, *geom, bias=bias, act=act, act_alpha=0.2, n_threads=n_threads)
    pooled = np.empty((x.shape[0], oh // 2, ow // 2, f), np.float32)
    argmax = np.empty(pooled.shape, np.int32)
    _kernels.maxpool2d_forward(y.reshape(x.shape[0], oh, ow, f), pooled, argmax, 2, 2, 2, 2, 0, 0, n_threads)
    return y, pooled, argmax


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@settings(max_examples=40, deadline=None)
@given(case=pooled_cases(), act=st.sampled_from(ACTS), seed=st.integers(0, 2**31))
def test_fused_pool_is_bitwise_the_conv_then_the_pool_kernel(isa_index, case, act, seed):
    shape, filters, geom = case
    x = random(shape, seed)
    x[..., ::3] = np.round(x[..., ::3])  # ties between window elements: the first maximum must win
    kernel = random((geom[0] * geom[1] * shape[3], filters), seed + 1)
    bias = random((filters,), seed + 2)
    n, oh, ow = shape[0], geom[8], geom[9]
    with isa(isa_index):
        y_ref, pooled_ref, argmax_ref = conv_then_pool(x, kernel, bias, act, geom, 1)
        for n_threads in (1, 2):
            for keep_y in (True, False):
                y = np.full(y_ref.shape, np.nan, np.float32) if keep_y else None
                pooled = np.full(pooled_ref.shape, np.nan, np.float32)
                argmax = np.full(pooled_ref.shape, -7, np.int32)
                _kernels.conv2d_implicit_forward(x, kernel, y, *geom, bias=bias, act=act, act_alpha=0.2,
                                                 pooled=pooled, argmax=argmax, n_threads=n_threads)
                np.testing.assert_array_equal(pooled.view(np.uint32), pooled_ref.view(np.uint32))
                np.testing.assert_array_equal(argmax, argmax_ref)
                if keep_y:
                    np.testing.assert_array_equal(y.view(np.uint32), y_ref.view(np.uint32))
            values = np.full(pooled_ref.shape, np.nan, np.float32)  # inference: no indices, no map
            _kernels.conv2d_implicit_forward(x, kernel, None, *geom, bias=bias, act=act, act_alpha=0.2,
                                             pooled=values, n_threads=n_threads)
            np.testing.assert_array_equal(values.view(np.uint32), pooled_ref.view(np.uint32))
    assert pooled_ref.shape == (n, oh // 2, ow // 2, filters)


def test_bad_pooled_arguments_are_rejected():
    x, kernel = random((2, 6, 6, 16), 1), random((144, 8), 2)
    geom = (3, 3, 1, 1, 1, 1, 1, 1, 6, 6)
    pooled, argmax = np.empty((2, 3, 3, 8), np.float32), np.empty((2, 3, 3, 8), np.int32)
    with pytest.raises(ValueError, match="needs y, pooled or both"):
        _kernels.conv2d_implicit_forward(x, kernel, None, *geom)
    with pytest.raises(ValueError, match="pooled needs an even output grid"):
        _kernels.conv2d_implicit_forward(x, kernel, None, *geom, pooled=np.empty((2, 3, 2, 8), np.float32))
    with pytest.raises(ValueError, match="argmax pooled's shape"):
        _kernels.conv2d_implicit_forward(x, kernel, np.empty((72, 8), np.float32), *geom, argmax=argmax)
    with pytest.raises(ValueError, match="argmax pooled's shape"):
        _kernels.conv2d_implicit_forward(x, kernel, None, *geom, pooled=pooled, argmax=argmax[:1])
    odd = (3, 3, 1, 1, 0, 0, 1, 1, 3, 3)  # valid 3x3 on 5x5: an odd grid cannot be pooled here
    with pytest.raises(ValueError, match="even output grid"):
        _kernels.conv2d_implicit_forward(random((2, 5, 5, 16), 3), kernel, None, *odd,
                                         pooled=np.empty((2, 1, 1, 8), np.float32))


def _cnn(seed, activation="relu", frozen=False):
    """Implicit convolutions (>= 12 input channels) before 2x2 pools: fused at 8x10, not at the odd 4x5."""
    fastnn.set_seed(seed)
    model = fastnn.Sequential([L.Input((8, 10, 3)), L.Conv2D(20, 3, padding="same", activation="relu"),
                               L.Conv2D(16, 3, padding="same", activation=activation, trainable=not frozen),
                               L.MaxPool2D(), L.Conv2D(24, 3, padding="same", activation="relu"), L.MaxPool2D(),
                               L.Flatten(), L.Dense(10, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def _step_names(model, training, keep):
    return [getattr(f, "func", f).__name__ for f, _ in model._steps[training, keep]]


@pytest.mark.parametrize("activation, frozen", [("relu", False), ("relu", True), ("leaky_relu", False),
                                                ("linear", False)])
def test_training_and_prediction_through_the_fused_pool_are_bitwise_the_layers(monkeypatch, activation, frozen):
    x, labels = random((5, 8, 10, 3), 11), np.arange(5)
    model = _cnn(3, activation, frozen)
    assert model.layers[1]._implicit
    predicted = model.predict_on_batch(x)
    fused = ["forward", "forward_pooled", "forward", "forward", "forward", "forward"]
    assert _step_names(model, False, False) == fused
    model.train_on_batch(x, labels)
    assert _step_names(model, True, True) == fused
    trained = model.get_weights()
    monkeypatch.setattr(L.Conv2D, "can_fuse_pool", lambda self, pool: False)
    unfused = _cnn(3, activation, frozen)
    np.testing.assert_array_equal(unfused.predict_on_batch(x), predicted)
    unfused.train_on_batch(x, labels)
    assert _step_names(unfused, True, True) == ["forward"] * 7
    for got, expected in zip(trained, unfused.get_weights()):
        np.testing.assert_array_equal(got, expected)
