"""The small-channel convolution kernels (src/conv_small.c, conv_small_backward.c) against the direct-loop
references of fastnn._reference, the fused 2x2 max pool against the pooling kernel run after the convolution,
and 1 against 2 threads bit for bit; then the Conv2D layer on that path."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fastnn
from fastnn import _kernels, _reference
from fastnn import layers as L
from fastnn.layers import _conv_small as small_module
from gradcheck import check_layer_gradients
from kernel_helpers import ISA_IDS, ISAS, isa

ACTS = {0: "linear", 1: "relu", 2: "leaky_relu"}


def random(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@st.composite
def cases(draw):
    """(x shape, kernel shape, padding (pt, pl), output grid (oh, ow)), "valid" or Keras "same"."""
    n = draw(st.sampled_from([1, 1, 2, 3]))
    cin, cout = draw(st.sampled_from([1, 2, 3, 6])), draw(st.sampled_from([1, 6, 16, 17]))
    kh, kw = draw(st.sampled_from([1, 2, 3, 5])), draw(st.sampled_from([1, 3, 4, 5]))
    h, w = draw(st.integers(1, 13)), draw(st.integers(1, 37))  # widths below, at and past 16 and 32
    if draw(st.booleans()):  # same: the odd pad at the bottom/right
        grid, pads = (h, w), ((kh - 1) // 2, (kw - 1) // 2)
    else:
        grid, pads = (h - kh + 1, w - kw + 1), (0, 0)
    assume(min(grid) >= 1)
    return (n, h, w, cin), (kh, kw, cin, cout), pads, grid


def _forward(x, kernel, bias, pads, grid, act, pool=False, n_threads=1, full=True):
    """(y, pooled, argmax): the full map (full), then with pool the 2x2 max pool of it and its argmax."""
    n, cout = x.shape[0], kernel.shape[3]
    y = np.full((n,) + grid + (cout,), np.nan, np.float32) if full else None
    pooled = np.full((n, grid[0] // 2, grid[1] // 2, cout), np.nan, np.float32) if pool else None
    argmax = np.full(pooled.shape, -7, np.int32) if pool else None
    _kernels.conv2d_small_forward(x, kernel, y, *pads, *grid, bias=bias, act=act, act_alpha=0.2, pooled=pooled,
                                  argmax=argmax, n_threads=n_threads)
    return y, pooled, argmax


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@settings(max_examples=40, deadline=None)
@given(case=cases(), act=st.sampled_from(sorted(ACTS)), with_bias=st.booleans(), seed=st.integers(0, 2**31))
def test_forward_matches_the_direct_loops(isa_index, case, act, with_bias, seed):
    xs, ks, pads, grid = case
    x, kernel = random(xs, seed), random(ks, seed + 1)
    bias = random((ks[3],), seed + 2) if with_bias else None
    expected = _reference.conv2d_stride1(x, kernel, bias, pads, grid, ACTS[act])
    with isa(isa_index):
        got = _forward(x, kernel, bias, pads, grid, act)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@settings(max_examples=30, deadline=None)
@given(case=cases(), act=st.sampled_from(sorted(ACTS)), seed=st.integers(0, 2**31))
def test_fused_pool_is_bitwise_the_conv_then_the_pool_kernel(isa_index, case, act, seed):
    xs, ks, pads, grid = case
    assume(min(grid) >= 2)
    x, kernel, bias = random(xs, seed), random(ks, seed + 1), random((ks[3],), seed + 2)
    if seed % 3 == 0:  # ties: the gradient goes to the first maximal element, as the pooling kernel's
        x = np.round(x)
        kernel = np.round(kernel)
    with isa(isa_index):
        full = _forward(x, kernel, bias, pads, grid, act)[0]
        pooled = np.empty((xs[0], grid[0] // 2, grid[1] // 2, ks[3]), np.float32)
        argmax = np.empty(pooled.shape, np.int32)
        _kernels.maxpool2d_forward(full, pooled, argmax, 2, 2, 2, 2, 0, 0)
        y, got, got_arg = _forward(x, kernel, bias, pads, grid, act, pool=True)
        _, alone, _ = _forward(x, kernel, bias, pads, grid, act, pool=True, full=False)  # inference: no map
    assert y.tobytes() == full.tobytes()
    np.testing.assert_array_equal(got.view(np.uint32), pooled.view(np.uint32))
    np.testing.assert_array_equal(got_arg, argmax)
    np.testing.assert_array_equal(alone.view(np.uint32), pooled.view(np.uint32))
    np.testing.assert_array_equal(got, _reference.max_pool_2x2(full))


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@settings(max_examples=30, deadline=None)
@given(case=cases(), accumulate=st.booleans(), seed=st.integers(0, 2**31))
def test_backward_matches_the_direct_loops(isa_index, case, accumulate, seed):
    xs, ks, pads, grid = case
    x, kernel, dz = random(xs, seed), random(ks, seed + 1), random((xs[0],) + grid + (ks[3],), seed + 2)
    dx_ref, dk_ref = _reference.conv2d_stride1_backward(x, kernel, dz, pads)
    start, start_bias = random(ks, seed + 3), random((ks[3],), seed + 4)
    dk, db = start.copy(), start_bias.copy()
    dx = np.full(xs, np.nan, np.float32)
    with isa(isa_index):
        _kernels.conv2d_small_backward_filter(x, dz, dk, *pads, accumulate, 1, db)
        _kernels.conv2d_small_backward_input(dz, kernel, dx, *pads)
    np.testing.assert_allclose(dk, dk_ref + (start if accumulate else 0), rtol=1e-4, atol=1e-4)
    db_ref = dz.astype(np.float64).sum(axis=(0, 1, 2))
    np.testing.assert_allclose(db, db_ref + (start_bias if accumulate else 0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("isa_index", ISAS, ids=ISA_IDS)
@pytest.mark.parametrize("xs, ks, same", [((37, 28, 28, 1), (5, 5, 1, 6), False),   # lenet's conv1, odd batch
                                          ((19, 12, 12, 6), (5, 5, 6, 16), False),  # lenet's conv2
                                          ((5, 17, 33, 3), (3, 3, 3, 17), True)])
def test_one_and_two_threads_give_the_same_bits(isa_index, xs, ks, same):
    grid = xs[1:3] if same else (xs[1] - ks[0] + 1, xs[2] - ks[1] + 1)
    pads = ((ks[0] - 1) // 2, (ks[1] - 1) // 2) if same else (0, 0)
    x, kernel, bias = random(xs, 1), random(ks, 2), random((ks[3],), 3)
    dz = random((xs[0],) + grid + (ks[3],), 4)
    results = []
    with isa(isa_index):
        for nt in (1, 2):
            dk, db, dx = np.empty(ks, np.float32), np.empty(ks[3], np.float32), np.empty(xs, np.float32)
            _kernels.conv2d_small_backward_filter(x, dz, dk, *pads, False, nt, db)
            _kernels.conv2d_small_backward_input(dz, kernel, dx, *pads, nt)
            results.append([*_forward(x, kernel, bias, pads, grid, 1, True, nt),
                            _forward(x, kernel, bias, pads, grid, 1, True, nt, full=False)[1], dk, db, dx])
    for a, b in zip(*results):
        assert a.tobytes() == b.tobytes()


def test_bad_shapes_and_activations_are_rejected():
    x, kernel = random((2, 8, 8, 3), 0), random((3, 3, 3, 4), 1)
    y, pooled = np.empty((2, 6, 6, 4), np.float32), np.empty((2, 3, 3, 4), np.float32)
    with pytest.raises(ValueError, match="need y"):
        _kernels.conv2d_small_forward(x, kernel, np.empty((2, 6, 5, 4), np.float32), 0, 0, 6, 6)
    with pytest.raises(ValueError, match="need y"):
        _kernels.conv2d_small_forward(x, random((3, 3, 2, 4), 1), y, 0, 0, 6, 6)
    with pytest.raises(ValueError, match="need y"):  # nothing to write
        _kernels.conv2d_small_forward(x, kernel, None, 0, 0, 6, 6)
    with pytest.raises(ValueError, match="need y"):
        _kernels.conv2d_small_forward(x, kernel, y, 0, 0, 6, 6, pooled=np.empty((2, 3, 2, 4), np.float32))
    with pytest.raises(ValueError, match="need y"):  # argmax without pooled
        _kernels.conv2d_small_forward(x, kernel, y, 0, 0, 6, 6, argmax=np.empty((2, 3, 3, 4), np.int32))
    with pytest.raises(ValueError, match="act must be"):
        _kernels.conv2d_small_forward(x, kernel, y, 0, 0, 6, 6, act=4)
    with pytest.raises(ValueError, match="bias must have length 4"):
        _kernels.conv2d_small_forward(x, kernel, y, 0, 0, 6, 6, bias=np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="invalid argument"):  # the pool needs a 2 x 2 grid at least
        _kernels.conv2d_small_forward(random((2, 3, 8, 3), 0), kernel, None, 0, 0, 1, 6,
                                      pooled=np.empty((2, 0, 3, 4), np.float32))
    with pytest.raises(ValueError, match="do not fit"):
        _kernels.conv2d_small_backward_filter(x, random((2, 6, 6, 5), 2), np.empty((3, 3, 3, 4), np.float32), 0, 0)
    with pytest.raises(ValueError, match="dbias must have length 4"):
        _kernels.conv2d_small_backward_filter(x, random((2, 6, 6, 4), 2), np.empty((3, 3, 3, 4), np.float32), 0, 0,
                                              dbias=np.empty(5, np.float32))
    with pytest.raises(ValueError, match="do not fit"):
        _kernels.conv2d_small_backward_input(random((2, 6, 6, 4), 2), kernel, np.empty((2, 8, 8, 3), np.float32),
                                             3, 0)


# ---- the Conv2D layer on the small-channel path ------------------------------------------------------------

def _built(layer, shape):
    layer.build(shape)
    from fastnn._arena import Arena
    Arena([layer])
    return layer


@pytest.mark.parametrize("shape, filters, kwargs, small", [
    ((28, 28, 1), 6, dict(kernel_size=5), True),
    ((12, 12, 6), 16, dict(kernel_size=5), True),
    ((32, 32, 3), 32, dict(kernel_size=3, padding="same"), False),  # cnn32's first layer: im2col + GEMM
    ((9, 9, 3), 4, dict(kernel_size=3, strides=2), False),
    ((9, 9, 3), 4, dict(kernel_size=3, dilation_rate=2), False),
    ((9, 9, 3), 4, dict(kernel_size=1), False),  # 1x1: the input is its own column matrix
    ((9, 9, 9), 4, dict(kernel_size=3), False),
])
def test_which_layers_take_the_small_path(shape, filters, kwargs, small):
    assert _built(L.Conv2D(filters, **kwargs), shape)._small is small


@pytest.mark.parametrize("shape, filters, kwargs", [
    ((8, 9, 1), 6, dict(kernel_size=5, activation="relu")),
    ((7, 6, 3), 16, dict(kernel_size=3, padding="same")),
    ((6, 7, 2), 1, dict(kernel_size=(2, 4), padding="same", use_bias=False)),
    ((6, 6, 6), 16, dict(kernel_size=3, activation="tanh")),      # activation applied after the kernel
    ((5, 6, 2), 3, dict(kernel_size=3, activation="gelu")),       # ... from the kept pre-activation
    ((5, 5, 3), 4, dict(kernel_size=3, padding="same", activation="softmax")),
])
def test_small_path_layer_gradients_match_finite_differences(shape, filters, kwargs):
    layer = L.Conv2D(filters, **kwargs)
    check_layer_gradients(layer, shape, batch=2, seed=3)
    assert layer._small


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_small_path_layer_backward_matches_the_reference(activation):
    """relu kinks near many inputs fool finite differences: compare with the float64 reference instead."""
    layer = _built(L.Conv2D(5, 3, padding="same", activation=activation), (7, 6, 3))
    layer.weights[1][...] = random((5,), 1)
    x, r = random((2, 7, 6, 3), 2), random((2, 7, 6, 5), 3)
    y = layer.forward(x, training=True).copy()
    dx = layer.backward(r, need_dx=True).copy()
    z = _reference.conv2d_stride1(x, layer.weights[0], layer.weights[1], (1, 1), (7, 6))
    np.testing.assert_allclose(y, _reference.activation(z, activation, layer._alpha), rtol=1e-5, atol=1e-5)
    dz = r * np.where(z > 0, 1.0, 0.0 if activation == "relu" else np.float32(layer._alpha))
    dx_ref, dk_ref = _reference.conv2d_stride1_backward(x, layer.weights[0], dz, (1, 1))
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.grads[0], dk_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.grads[1], dz.sum(axis=(0, 1, 2)), rtol=1e-5, atol=1e-5)


def test_small_path_layer_matches_the_im2col_path(monkeypatch):
    x, dy = random((3, 11, 13, 3), 5), random((3, 11, 13, 6), 6)
    results = []
    for cin_limit in (small_module._SMALL_MAX_CIN, 0):  # 0: every layer on im2col + GEMM
        monkeypatch.setattr(small_module, "_SMALL_MAX_CIN", cin_limit)
        fastnn.set_seed(0)
        layer = _built(L.Conv2D(6, 3, padding="same", activation="relu"), (11, 13, 3))
        assert layer._small is (cin_limit > 0)
        y = layer.forward(x, training=True).copy()
        dx = layer.backward(dy, need_dx=True).copy()
        results.append([y, dx] + [g.copy() for g in layer.grads])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def _lenet_like(seed):
    fastnn.set_seed(seed)
    model = fastnn.Sequential([L.Input((16, 17, 1)), L.Conv2D(6, 5, activation="relu"), L.MaxPool2D(2),
                               L.Conv2D(16, 3, padding="same", activation="relu"), L.MaxPool2D(),
                               L.Flatten(), L.Dense(10, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def _step_names(model, training, keep):
    return [getattr(f, "func", f).__name__ for f, _ in model._steps[training, keep]]


def _gradients(model, x, labels):
    model._compute_gradients(x, model._prepare_targets(labels, len(x)), None, [])
    return model._arena.grads.copy()


def test_prediction_and_training_fuse_conv_and_pool_with_the_same_bits(monkeypatch):
    model = _lenet_like(1)
    x, labels = random((5, 16, 17, 1), 7), np.arange(5)
    predicted = model.predict_on_batch(x)
    fused = ["forward_pooled", "forward_pooled", "forward", "forward"]
    assert _step_names(model, False, False) == fused
    assert model(x, training=True).tobytes() == predicted.tobytes()
    grads = _gradients(model, x, labels)
    assert _step_names(model, True, True) == fused  # training keeps what backward needs
    monkeypatch.setattr(L.Conv2D, "can_fuse_pool", lambda self, pool: False)
    unfused = _lenet_like(1)
    assert _gradients(unfused, x, labels).tobytes() == grads.tobytes()
    assert _step_names(unfused, True, True) == ["forward"] * 6
    assert unfused.predict_on_batch(x).tobytes() == predicted.tobytes()
    assert np.isfinite(model.train_on_batch(x, labels))


@pytest.mark.parametrize("pool", [L.MaxPool2D(3), L.MaxPool2D(2, strides=1), L.MaxPool2D(2, padding="same"),
                                  L.AveragePooling2D(2)])
def test_other_pools_are_not_fused(pool):
    fastnn.set_seed(0)
    model = fastnn.Sequential([L.Input((9, 9, 1)), L.Conv2D(4, 3, activation="relu"), pool, L.Flatten()])
    x = random((2, 9, 9, 1), 8)
    predicted = model.predict_on_batch(x)
    assert _step_names(model, False, False) == ["forward", "forward", "forward"]
    np.testing.assert_array_equal(predicted, model(x, training=True))


def test_conv_with_an_unfused_activation_is_not_fused_with_its_pool():
    fastnn.set_seed(0)
    model = fastnn.Sequential([L.Input((9, 9, 1)), L.Conv2D(4, 3, activation="tanh"), L.MaxPool2D(), L.Flatten()])
    x = random((2, 9, 9, 1), 9)
    np.testing.assert_array_equal(model.predict_on_batch(x), model(x, training=True))
    assert _step_names(model, False, False) == ["forward", "forward", "forward"]
