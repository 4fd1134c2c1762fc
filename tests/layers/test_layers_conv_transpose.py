"""Conv2DTranspose: forward against a direct NumPy scatter loop on hypothesis-drawn shapes (geometry from the
Keras/TensorFlow formulas, written out here), backward against finite differences, chunked workspaces, thread
counts, the fused loss path, bad arguments, config and save/load round trips."""
import json

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fastnn
from fastnn import layers as L
from fastnn._arena import Arena
from fastnn.layers import conv_transpose as ct_module
from gradcheck import check_layer_gradients


def _built(layer, shape):
    layer.build(shape)
    Arena([layer])
    return layer


def keras_length(size, k, s, d, padding, op):
    """Keras' output length of a transposed convolution, and TensorFlow's pad before (the "same" rule applied
    to the convolution from the output back to the input)."""
    span = (k - 1) * d + 1
    if op is None:
        out = size * s + max(span - s, 0) if padding == "valid" else size * s
    else:
        out = (size - 1) * s + span - 2 * (span // 2 if padding == "same" else 0) + op
    pad = max((size - 1) * s + span - out, 0) // 2 if padding == "same" else 0
    return out, pad


def conv_transpose_ref(x, kernel, bias, strides, padding, dilation, output_padding):
    """Every input pixel adds kernel[ky, kx] @ x[pixel] at output (iy * s - pad + ky * d, ...), float64."""
    (kh, kw, f, _), (sh, sw), (dh, dw) = kernel.shape, strides, dilation
    n, h, w, _ = x.shape
    op = output_padding or (None, None)
    oh, pt = keras_length(h, kh, sh, dh, padding, op[0])
    ow, pl = keras_length(w, kw, sw, dw, padding, op[1])
    y = np.zeros((n, oh, ow, f))
    k64, x64 = kernel.astype(np.float64), x.astype(np.float64)
    for iy in range(h):
        for ix in range(w):
            for ky in range(kh):
                for kx in range(kw):
                    oy, ox = iy * sh - pt + ky * dh, ix * sw - pl + kx * dw
                    if 0 <= oy < oh and 0 <= ox < ow:
                        y[:, oy, ox] += x64[:, iy, ix] @ k64[ky, kx].T
    return y + (0 if bias is None else bias)


@st.composite
def transpose_cases(draw):
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dil = draw(st.sampled_from([(1, 1), (1, 1), (2, 1), (2, 3)]))
    padding = draw(st.sampled_from(["valid", "same"]))
    op = draw(st.sampled_from([None, "draw"]))
    if op == "draw":
        op = (draw(st.integers(0, sh - 1)), draw(st.integers(0, sw - 1)))
    for size, k, s, d, p in zip((h, w), (kh, kw), (sh, sw), dil, op or (None, None)):
        out, _ = keras_length(size, k, s, d, padding, p)
        assume(out >= 1 and (padding == "valid" or -(-out // s) == size))
    n = draw(st.sampled_from([1, 1, 2]))
    return (n, h, w, draw(st.sampled_from([1, 2, 3]))), draw(st.integers(1, 4)), dict(
        kernel_size=(kh, kw), strides=(sh, sw), padding=padding, dilation_rate=dil, output_padding=op)


@settings(max_examples=60, deadline=None)
@given(transpose_cases(), st.integers(0, 2**16))
def test_forward_matches_a_direct_scatter_loop(case, seed):
    (n, h, w, c), filters, kwargs = case
    layer = _built(L.Conv2DTranspose(filters, **kwargs), (h, w, c))
    rng = np.random.default_rng(seed)
    layer.weights[1][...] = rng.standard_normal(filters)
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    expected = conv_transpose_ref(x, layer.weights[0], layer.weights[1], layer.strides, layer.padding,
                                  layer.dilation_rate, layer.output_padding)
    assert layer.output_shape == expected.shape[1:]
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-5, atol=1e-5)


CASES = [  # (input shape, filters, kwargs)
    ((3, 4, 2), 3, dict(kernel_size=3)),
    ((3, 3, 2), 2, dict(kernel_size=3, strides=2, padding="same")),
    ((4, 3, 3), 2, dict(kernel_size=(2, 3), strides=(2, 3), padding="valid")),
    ((3, 3, 2), 3, dict(kernel_size=3, strides=2, padding="same", output_padding=1)),
    ((3, 2, 1), 2, dict(kernel_size=2, strides=3)),  # stride larger than the kernel: gaps in the output
    ((3, 3, 2), 2, dict(kernel_size=3, dilation_rate=2, padding="same")),
    ((4, 4, 3), 2, dict(kernel_size=1)),  # 1x1 stride 1: one GEMM
    ((3, 3, 2), 2, dict(kernel_size=4, strides=2, padding="same", use_bias=False)),
]


@pytest.mark.parametrize("shape,filters,kwargs", CASES)
def test_backward_finite_differences(shape, filters, kwargs):
    check_layer_gradients(L.Conv2DTranspose(filters, **kwargs), shape, batch=2, seed=4)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "gelu", "softmax"])
def test_activation_applies_after_the_bias_and_differentiates(activation):
    shape = (3, 3, 2)
    for kernel, strides in ((3, 2), (1, 1)):
        layer = _built(L.Conv2DTranspose(3, kernel, strides=strides, activation=activation), shape)
        linear = _built(L.Conv2DTranspose(3, kernel, strides=strides), shape)
        layer.weights[1][...] = [0.5, -0.25, 0.1]
        for w, v in zip(linear.weights, layer.weights):
            w[...] = v
        x = np.random.default_rng(3).standard_normal((2,) + shape).astype(np.float32)
        z = fastnn.ops.activation(linear.forward(x), activation)
        np.testing.assert_allclose(layer.forward(x), z, rtol=2e-5, atol=2e-5)
        # h small enough that relu kinks near x +- h are rare and caught by the checker
        check_layer_gradients(L.Conv2DTranspose(3, kernel, strides=strides, activation=activation), shape, seed=5,
                              h=2e-3)


def test_batch_1_and_a_single_pixel():
    layer = _built(L.Conv2DTranspose(2, 3, strides=2), (1, 1, 1))
    assert layer.output_shape == (3, 3, 2)
    x = np.full((1, 1, 1, 1), 2.0, np.float32)
    np.testing.assert_allclose(layer.forward(x)[0], 2.0 * layer.weights[0][:, :, :, 0] + layer.weights[1])
    check_layer_gradients(L.Conv2DTranspose(2, 3, strides=2), (1, 1, 1), batch=1)


def test_chunked_workspace_gives_the_same_result(monkeypatch):
    x = np.random.default_rng(5).standard_normal((3, 5, 4, 3)).astype(np.float32)
    results = []
    for workspace in (ct_module._WORKSPACE_BYTES, 4 * 9 * 4 * 7):  # 7 pixels per chunk: chunks straddle images
        monkeypatch.setattr(ct_module, "_WORKSPACE_BYTES", workspace)
        fastnn.set_seed(0)
        layer = _built(L.Conv2DTranspose(4, 3, strides=2, padding="same", activation="tanh"), (5, 4, 3))
        y = layer.forward(x).copy()
        dy = np.random.default_rng(6).standard_normal(y.shape).astype(np.float32)
        dx = layer.backward(dy).copy()
        results.append([y, dx] + [g.copy() for g in layer.grads])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_gradients_accumulate_and_frozen_layers_give_none():
    layer = _built(L.Conv2DTranspose(2, 3, strides=2), (3, 3, 2))
    x = np.random.default_rng(7).standard_normal((2, 3, 3, 2)).astype(np.float32)
    dy = np.ones((2,) + layer.output_shape, np.float32)
    layer.forward(x, training=True)
    assert layer.backward(dy, need_dx=False) is None
    once = [g.copy() for g in layer.grads]
    layer.backward(dy, need_dx=False, accumulate=True)
    for g, g1 in zip(layer.grads, once):
        np.testing.assert_allclose(g, 2 * g1, rtol=1e-6)
    layer.trainable = False
    layer.backward(dy, need_dx=True)
    assert all(not g.any() for g in layer.grads)


def test_bitwise_identical_on_1_and_2_threads(monkeypatch):
    monkeypatch.setattr(ct_module, "_WORKSPACE_BYTES", 4 * 9 * 16 * 300)
    x = np.random.default_rng(12).standard_normal((4, 12, 13, 8)).astype(np.float32)
    before = fastnn.get_num_threads()
    results = []
    try:
        for nt in (1, 2):
            fastnn.set_num_threads(nt)
            fastnn.set_seed(0)
            layer = _built(L.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu"), (12, 13, 8))
            y = layer.forward(x, True)
            dx = layer.backward(np.ones_like(y))
            results.append([y.copy(), dx.copy()] + [g.copy() for g in layer.grads])
    finally:
        fastnn.set_num_threads(before)
    for a, b in zip(*results):
        assert a.tobytes() == b.tobytes()


def test_sigmoid_output_fuses_with_binary_crossentropy():
    fastnn.set_seed(2)
    model = fastnn.Sequential([L.Input((3, 3, 2)), L.Conv2DTranspose(1, 3, strides=2, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    x = np.random.default_rng(1).standard_normal((2, 3, 3, 2)).astype(np.float32)
    t = (np.random.default_rng(2).random((2, 7, 7, 1)) > 0.5).astype(np.float32)
    p = model.predict(x)
    assert ((p > 0) & (p < 1)).all()
    expected = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
    assert abs(model.test_on_batch(x, t) - expected) < 1e-5
    from gradcheck import check_model_gradients
    check_model_gradients(model, x, t)


@pytest.mark.parametrize("make,match", [
    (lambda: L.Conv2DTranspose(0, 3), "filters"), (lambda: L.Conv2DTranspose(2, 0), "kernel_size"),
    (lambda: L.Conv2DTranspose(2, 3, strides=-1), "strides"), (lambda: L.Conv2DTranspose(2, 3, padding="x"), "padding"),
    (lambda: L.Conv2DTranspose(2, 3, strides=2, output_padding=2), "smaller than the strides"),
    (lambda: L.Conv2DTranspose(2, 3, output_padding=-1), "non-negative"),
    (lambda: L.Conv2DTranspose(2, 3, dilation_rate=0), "dilation"),
])
def test_bad_arguments_are_rejected(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_input_shapes_are_rejected():
    with pytest.raises(ValueError, match=r"\(height, width, channels\)"):
        L.Conv2DTranspose(2, 3).build((8, 8))
    with pytest.raises(ValueError, match="output size"):
        L.Conv2DTranspose(2, 2, padding="same", output_padding=0).build((1, 1, 1))
    with pytest.raises(ValueError, match="TensorFlow rejects it too"):
        L.Conv2DTranspose(2, 2, padding="same", output_padding=0).build((3, 3, 1))
    model = fastnn.Sequential([L.Input((4, 4, 3)), L.Conv2DTranspose(2, 3)])
    with pytest.raises(ValueError, match="per-sample shape"):
        model.predict(np.zeros((1, 4, 4, 2), np.float32))
    with pytest.raises(ValueError, match="batch axis"):
        model.predict(np.zeros(4, np.float32))


def test_keras_weight_layout_and_config_round_trip(tmp_path):
    layer = L.Conv2DTranspose(5, (2, 3), strides=2, padding="same", output_padding=(1, 0), activation="relu")
    again = L.Conv2DTranspose.from_config(json.loads(json.dumps(layer.get_config())))
    assert again.get_config() == layer.get_config()
    fastnn.set_seed(1)
    model = fastnn.Sequential([L.Input((4, 4, 3)), layer, L.Conv2DTranspose(2, 3, use_bias=False)])
    assert [w.shape for w in model.get_weights()] == [(2, 3, 5, 3), (5,), (3, 3, 2, 5)]
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(3).standard_normal((2, 4, 4, 3)).astype(np.float32)
    model.train_on_batch(x, np.zeros((2,) + model.output_shape[1:], np.float32))
    model.save(tmp_path / "t.fnn")
    np.testing.assert_array_equal(fastnn.load_model(tmp_path / "t.fnn").predict(x), model.predict(x))
