"""Conv2D, ZeroPadding2D and the pooling layers: forward against a direct NumPy convolution, backward against
finite differences, TensorFlow's "same" padding, max-pool ties, bad inputs, config round trips, and a small CNN
that learns the UCI digits and survives save/load."""
import json

import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn._arena import Arena
from fastnn.layers import _conv_small as small_module
from fastnn.layers import conv as conv_module
from gradcheck import check_layer_gradients


def _built(layer, shape):
    layer.build(shape)
    Arena([layer])
    return layer


def _same_pads(size, k, stride, dilation):
    """TensorFlow's "same" rule: total pad, the odd extra at the end."""
    total = max((-(-size // stride) - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def conv_ref(x, kernel, bias, strides, padding, dilation):
    """Direct convolution in float64 by explicit padding and a loop over kernel taps."""
    (kh, kw, _, f), (sh, sw), (dh, dw) = kernel.shape, strides, dilation
    n, h, w, _ = x.shape
    if padding == "same":
        (t, b), (le, r) = _same_pads(h, kh, sh, dh), _same_pads(w, kw, sw, dw)
        x = np.pad(x, ((0, 0), (t, b), (le, r), (0, 0)))
    hp, wp = x.shape[1:3]
    oh, ow = (hp - (kh - 1) * dh - 1) // sh + 1, (wp - (kw - 1) * dw - 1) // sw + 1
    y = np.zeros((n, oh, ow, f))
    for ky in range(kh):
        for kx in range(kw):
            patch = x[:, ky * dh:ky * dh + (oh - 1) * sh + 1:sh, kx * dw:kx * dw + (ow - 1) * sw + 1:sw]
            y += patch.astype(np.float64) @ kernel[ky, kx].astype(np.float64)
    return y + (0 if bias is None else bias)


CONV_CASES = [  # (input shape, filters, kwargs)
    ((8, 8, 1), 4, dict(kernel_size=3)),
    ((7, 9, 3), 5, dict(kernel_size=(2, 4), strides=2, padding="same")),
    ((9, 8, 3), 2, dict(kernel_size=3, strides=(3, 2), padding="same", dilation_rate=2)),
    ((6, 6, 5), 3, dict(kernel_size=1)),  # 1x1 stride 1: straight to GEMM
    ((6, 7, 2), 3, dict(kernel_size=1, strides=2)),
    ((5, 5, 3), 2, dict(kernel_size=2, strides=4)),  # stride larger than the kernel
    ((6, 6, 2), 3, dict(kernel_size=5, padding="same", use_bias=False)),
]
IMPLICIT_CASES = [  # stride 1 on >= 16 channels: implicit GEMM
    ((6, 7, 16), 5, dict(kernel_size=3, padding="same")),
    ((7, 6, 17), 3, dict(kernel_size=(2, 3), dilation_rate=(2, 1))),
    ((5, 9, 16), 4, dict(kernel_size=4, padding="same", use_bias=False)),
]
CONV_CASES += IMPLICIT_CASES


@pytest.mark.parametrize("shape,filters,kwargs", CONV_CASES)
@pytest.mark.parametrize("batch", [1, 3])
def test_conv2d_forward_matches_direct_convolution(shape, filters, kwargs, batch):
    layer = _built(L.Conv2D(filters, **kwargs), shape)
    rng = np.random.default_rng(2)
    if layer.use_bias:
        layer.weights[1][...] = rng.standard_normal(filters)
    x = rng.standard_normal((batch,) + shape).astype(np.float32)
    expected = conv_ref(x, layer.weights[0], layer.weights[1] if layer.use_bias else None, layer.strides,
                        layer.padding, layer.dilation_rate)
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "softmax"])
def test_conv2d_activation_applies_after_the_bias_and_differentiates(activation):
    layer = _built(L.Conv2D(3, 3, padding="same", activation=activation), (5, 5, 2))
    linear = _built(L.Conv2D(3, 3, padding="same"), (5, 5, 2))
    for w, v in zip(linear.weights, layer.weights):
        w[...] = v
    layer.weights[1][...] = [0.5, -0.25, 0.1]
    linear.weights[1][...] = layer.weights[1]
    x = np.random.default_rng(3).standard_normal((2, 5, 5, 2)).astype(np.float32)
    z = linear.forward(x).astype(np.float64)
    act = {"relu": lambda v: np.maximum(v, 0), "tanh": np.tanh,
           "gelu": lambda v: 0.5 * v * (1 + np.vectorize(__import__("math").erf)(v / np.sqrt(2))),
           "softmax": lambda v: np.exp(v) / np.exp(v).sum(-1, keepdims=True)}[activation]
    np.testing.assert_allclose(layer.forward(x), act(z), rtol=2e-5, atol=2e-5)
    check_layer_gradients(L.Conv2D(3, 3, strides=2, padding="same", activation=activation), (5, 5, 2), seed=5)


@pytest.mark.parametrize("shape,filters,kwargs", CONV_CASES)
def test_conv2d_backward_finite_differences(shape, filters, kwargs):
    check_layer_gradients(L.Conv2D(filters, **kwargs), shape, batch=2, seed=4)


def test_conv2d_chunked_columns_give_the_same_result(monkeypatch):
    """A tiny workspace forces many im2col chunks (forward, weight gradient accumulation, col2im)."""
    x = np.random.default_rng(5).standard_normal((3, 7, 6, 3)).astype(np.float32)
    dy = np.random.default_rng(6).standard_normal((3, 7, 6, 4)).astype(np.float32)
    results = []
    monkeypatch.setattr(small_module, "_SMALL_MAX_CIN", 0)  # the im2col path, not the small-channel kernel
    for workspace in (conv_module._WORKSPACE_BYTES, 4 * 27 * 5):  # 5 rows per chunk: chunks straddle images
        monkeypatch.setattr(conv_module, "_WORKSPACE_BYTES", workspace)
        fastnn.set_seed(0)
        layer = _built(L.Conv2D(4, 3, padding="same", activation="relu"), (7, 6, 3))
        y = layer.forward(x, training=True).copy()
        dx = layer.backward(dy, need_dx=True).copy()
        results.append([y, dx] + [g.copy() for g in layer.grads])
    assert len(range(0, 3 * 7 * 6, 5)) > 3
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(conv_module, "_WORKSPACE_BYTES", 4 * 27 * 5)
    check_layer_gradients(L.Conv2D(2, 3, strides=2, activation="tanh"), (7, 6, 3), batch=2, seed=1)


@pytest.mark.parametrize("shape,filters,kwargs", IMPLICIT_CASES + [((8, 8, 32), 33, dict(kernel_size=3, padding="same"))])
def test_implicit_gemm_and_im2col_paths_agree(monkeypatch, shape, filters, kwargs):
    """The same layer on both paths: the forward bit for bit, the gradients within rounding."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3,) + shape).astype(np.float32)
    bias = rng.standard_normal(filters).astype(np.float32) * 0.1
    results = []
    for threshold, implicit in ((conv_module._IMPLICIT_MIN_CHANNELS, True), (10**9, False)):
        monkeypatch.setattr(conv_module, "_IMPLICIT_MIN_CHANNELS", threshold)
        fastnn.set_seed(0)
        layer = _built(L.Conv2D(filters, activation="relu", **kwargs), shape)
        assert layer._implicit == implicit
        if layer.use_bias:
            layer.weights[1][...] = bias
        infer = layer.forward(x).copy()
        y = layer.forward(x, training=True).copy()
        dy = np.random.default_rng(9).standard_normal(y.shape).astype(np.float32)
        results.append([infer, y, layer.backward(dy).copy()] + [g.copy() for g in layer.grads])
    (infer, y, *grads), (infer_old, y_old, *grads_old) = results
    assert infer.tobytes() == infer_old.tobytes() and y.tobytes() == y_old.tobytes()
    for got, expected in zip(grads, grads_old):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("channels", [2, 16])  # im2col, implicit GEMM
def test_conv2d_gradients_accumulate_when_asked(channels):
    layer = _built(L.Conv2D(2, 3), (5, 5, channels))
    x = np.random.default_rng(7).standard_normal((2, 5, 5, channels)).astype(np.float32)
    dy = np.ones((2, 3, 3, 2), np.float32)
    layer.forward(x, training=True)
    layer.backward(dy, need_dx=False)
    once = [g.copy() for g in layer.grads]
    layer.backward(dy, need_dx=False, accumulate=True)
    for g, g1 in zip(layer.grads, once):
        np.testing.assert_allclose(g, 2 * g1, rtol=1e-5, atol=1e-6)  # the second sum continues from the first
    assert layer.backward(dy, need_dx=False) is None


@pytest.mark.parametrize("size,k,stride", [(6, 2, 1), (7, 4, 2), (8, 3, 3), (5, 6, 1), (10, 1, 4)])
def test_same_padding_puts_the_odd_pad_at_the_bottom_right(size, k, stride):
    """An all-ones kernel sums its window: edge outputs reveal which side was padded."""
    layer = _built(L.Conv2D(1, k, strides=stride, padding="same", use_bias=False), (size, size, 1))
    layer.weights[0][...] = 1.0
    x = np.arange(size * size, dtype=np.float32).reshape(1, size, size, 1)
    assert layer.output_shape == (-(-size // stride), -(-size // stride), 1)
    top, _ = _same_pads(size, k, stride, 1)
    out = layer.forward(x)
    rows = [list(range(oy * stride - top, oy * stride - top + k)) for oy in range(layer.output_shape[0])]
    for oy, ry in enumerate(rows):
        for ox, rx in enumerate(rows):
            expected = sum(x[0, i, j, 0] for i in ry for j in rx if 0 <= i < size and 0 <= j < size)
            assert out[0, oy, ox, 0] == expected


POOL_CASES = [
    (L.MaxPool2D, (6, 6, 3), dict()),
    (L.MaxPool2D, (7, 5, 2), dict(pool_size=3, strides=2, padding="same")),
    (L.MaxPool2D, (5, 5, 1), dict(pool_size=(2, 1), strides=3)),
    (L.AveragePooling2D, (6, 6, 3), dict()),
    (L.AveragePooling2D, (7, 5, 2), dict(pool_size=3, strides=2, padding="same")),
    (L.AveragePooling2D, (5, 4, 3), dict(pool_size=2, strides=1, padding="same")),
]


@pytest.mark.parametrize("cls,shape,kwargs", POOL_CASES)
def test_pooling_backward_finite_differences(cls, shape, kwargs):
    check_layer_gradients(cls(**kwargs), shape, batch=2, seed=8)


@pytest.mark.parametrize("cls", [L.GlobalAveragePooling2D, L.GlobalMaxPool2D])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling(cls, keepdims):
    layer = _built(cls(keepdims=keepdims), (4, 5, 3))
    x = np.random.default_rng(9).standard_normal((2, 4, 5, 3)).astype(np.float32)
    reduce = np.mean if cls is L.GlobalAveragePooling2D else np.max
    expected = reduce(x.astype(np.float64), axis=(1, 2), keepdims=keepdims)
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-6, atol=1e-6)
    check_layer_gradients(cls(keepdims=keepdims), (4, 5, 3), batch=2, seed=9)


def test_pooling_forward_matches_numpy_on_a_plain_case():
    x = np.random.default_rng(10).standard_normal((2, 6, 4, 3)).astype(np.float32)
    blocks = x.reshape(2, 3, 2, 2, 2, 3).astype(np.float64)
    np.testing.assert_allclose(_built(L.MaxPooling2D(), (6, 4, 3)).forward(x), blocks.max(axis=(2, 4)))
    np.testing.assert_allclose(_built(L.AvgPool2D(), (6, 4, 3)).forward(x), blocks.mean(axis=(2, 4)), rtol=1e-6)


def test_max_pool_ties_send_the_gradient_to_the_first_element():
    layer = _built(L.MaxPool2D(pool_size=2, strides=1), (3, 3, 1))
    x = np.zeros((1, 3, 3, 1), np.float32)  # every window is a four-way tie
    layer.forward(x, training=True)
    dx = layer.backward(np.ones((1, 2, 2, 1), np.float32))
    # windows start at (0,0), (0,1), (1,0), (1,1): each routes to its own top-left element
    np.testing.assert_array_equal(dx[0, :, :, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])


def test_zero_padding():
    layer = _built(L.ZeroPadding2D(((1, 2), (0, 3))), (2, 3, 2))
    assert layer.output_shape == (5, 6, 2)
    x = np.random.default_rng(11).standard_normal((2, 2, 3, 2)).astype(np.float32)
    np.testing.assert_array_equal(layer.forward(x), np.pad(x, ((0, 0), (1, 2), (0, 3), (0, 0))))
    assert _built(L.ZeroPadding2D(2), (2, 3, 2)).output_shape == (6, 7, 2)
    assert _built(L.ZeroPadding2D((1, 2)), (2, 3, 2)).output_shape == (4, 7, 2)
    check_layer_gradients(L.ZeroPadding2D(((1, 0), (2, 1))), (3, 3, 2), batch=2)


ALL_LAYERS = [
    lambda: L.Conv2D(3, (2, 3), strides=(1, 2), padding="same", dilation_rate=(2, 1), activation="relu",
                     use_bias=False, kernel_initializer="he_normal", name="c"),
    lambda: L.MaxPool2D(3, strides=2, padding="same"), lambda: L.AveragePooling2D((2, 1)),
    lambda: L.GlobalAveragePooling2D(keepdims=True), lambda: L.GlobalMaxPool2D(), lambda: L.ZeroPadding2D((1, 2)),
]


@pytest.mark.parametrize("make", ALL_LAYERS)
def test_config_round_trips_through_json(make):
    layer = make()
    config = json.loads(json.dumps(layer.get_config()))
    again = type(layer).from_config(config)
    assert again.get_config() == layer.get_config()
    assert _built(again, (6, 6, 2)).output_shape == _built(layer, (6, 6, 2)).output_shape


@pytest.mark.parametrize("make,match", [
    (lambda: L.Conv2D(2, 0), "kernel_size"), (lambda: L.Conv2D(2, 3, strides=0), "strides"),
    (lambda: L.Conv2D(2, 3, strides=(1, -1)), "strides"), (lambda: L.Conv2D(0, 3), "filters"),
    (lambda: L.Conv2D(2, 3, padding="full"), "padding"), (lambda: L.Conv2D(2, 3, dilation_rate=0), "dilation"),
    (lambda: L.MaxPool2D(0), "pool_size"), (lambda: L.AveragePooling2D(2, strides=-1), "strides"),
    (lambda: L.MaxPool2D(2, padding="causal"), "padding"), (lambda: L.ZeroPadding2D(-1), "non-negative"),
    (lambda: L.ZeroPadding2D((1, 2, 3)), "ZeroPadding2D padding"),
])
def test_bad_arguments_are_rejected(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("layer", [L.Conv2D(2, 3), L.MaxPool2D(), L.GlobalMaxPool2D(), L.ZeroPadding2D()])
def test_images_of_the_wrong_rank_are_rejected(layer):
    with pytest.raises(ValueError, match=r"\(height, width, channels\).*last axis \(NHWC\)"):
        layer.build((8, 8))


def test_kernels_larger_than_the_padded_input_are_rejected():
    with pytest.raises(ValueError, match="spans more than the valid-padded input"):
        L.Conv2D(2, 5).build((4, 8, 1))
    with pytest.raises(ValueError, match="spans more"):
        L.Conv2D(2, 3, dilation_rate=3).build((6, 6, 1))
    with pytest.raises(ValueError, match="pool_size .* is larger than the input"):
        L.MaxPool2D(3).build((2, 5, 1))
    assert _built(L.Conv2D(2, 5, padding="same"), (4, 8, 1)).output_shape == (4, 8, 2)


def test_wrong_channel_count_names_the_channels_axis():
    layer = _built(L.Conv2D(2, 3), (6, 6, 3))
    with pytest.raises(ValueError, match="built for 3 channels \\(the last axis, NHWC\\).*4 channels"):
        layer.forward(np.zeros((1, 6, 6, 4), np.float32))
    model = fastnn.Sequential([L.Input((6, 6, 3)), L.Conv2D(2, 3)])
    with pytest.raises(ValueError, match="per-sample shape"):
        model.predict(np.zeros((1, 6, 6, 1), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        model.predict(np.full((1, 6, 6, 3), np.nan, np.float32))


def test_small_cnn_learns_digits_and_round_trips(tmp_path):
    (x, y), (xt, yt) = fastnn.datasets.load_digits()
    x = (x / 16.0).reshape(-1, 8, 8, 1).astype(np.float32)
    xt = (xt / 16.0).reshape(-1, 8, 8, 1).astype(np.float32)
    fastnn.set_seed(0)
    model = fastnn.Sequential([L.Input((8, 8, 1)), L.Conv2D(4, 3, activation="relu"), L.MaxPool2D(),
                               L.Flatten(), L.Dense(10, activation="softmax")])
    model.compile(optimizer=fastnn.optimizers.Adam(learning_rate=0.005), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=15, verbose=0)
    accuracy = model.evaluate(xt, yt, return_dict=True, verbose=0)["accuracy"]
    assert accuracy >= 0.90
    path = tmp_path / "cnn.fnn"
    model.save(path)
    again = fastnn.load_model(path)
    np.testing.assert_array_equal(again.predict(xt), model.predict(xt))


@pytest.mark.parametrize("channels", [8, 16])  # im2col, implicit GEMM
def test_conv_and_pool_layers_are_bitwise_identical_on_1_and_2_threads(monkeypatch, channels):
    monkeypatch.setattr(conv_module, "_WORKSPACE_BYTES", 4 * 72 * 700)  # several chunks, straddling images
    x = np.random.default_rng(12).standard_normal((6, 16, 17, channels)).astype(np.float32)
    before = fastnn.get_num_threads()
    results = []
    try:
        for nt in (1, 2):
            fastnn.set_num_threads(nt)
            fastnn.set_seed(0)
            conv, pool = L.Conv2D(16, 3, padding="same", activation="relu"), L.MaxPool2D(3, strides=2, padding="same")
            _built(conv, (16, 17, channels))
            _built(pool, conv.output_shape)
            y = pool.forward(conv.forward(x, True), True)
            dx = conv.backward(pool.backward(np.ones_like(y)))
            results.append([y.copy(), dx.copy()] + [g.copy() for g in conv.grads])
    finally:
        fastnn.set_num_threads(before)
    for a, b in zip(*results):
        assert a.tobytes() == b.tobytes()


def test_every_new_layer_survives_save_and_load(tmp_path):
    fastnn.set_seed(1)
    model = fastnn.Sequential([
        L.Input((9, 8, 2)), L.ZeroPadding2D(((1, 0), (0, 2))), L.Conv2D(3, 3, strides=2, padding="same",
                                                                        dilation_rate=1, activation="tanh"),
        L.AvgPool2D(2, strides=1, padding="same"), L.Conv2D(4, 1, use_bias=False), L.MaxPooling2D(2),
        L.GlobalMaxPooling2D(keepdims=True), L.GlobalAvgPool2D(), L.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(13).standard_normal((4, 9, 8, 2)).astype(np.float32)
    model.train_on_batch(x, np.zeros((4, 2), np.float32))
    model.save(tmp_path / "all.fnn")
    again = fastnn.load_model(tmp_path / "all.fnn")
    assert [type(a) for a in again.layers] == [type(b) for b in model.layers]
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
