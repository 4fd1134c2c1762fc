"""UpSampling2D: nearest is a repeat, bilinear matches a direct per-pixel loop of TensorFlow's half-pixel rule;
backward against finite differences; bad arguments; config and save/load round trips."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastnn
from fastnn import layers as L
from fastnn._arena import Arena
from gradcheck import check_layer_gradients


def _built(layer, shape):
    layer.build(shape)
    Arena([layer])
    return layer


def bilinear_ref(x, sh, sw):
    """Per output pixel: source (o + 0.5) / s - 0.5, clamped neighbours, float64 loops."""
    n, h, w, c = x.shape
    y = np.zeros((n, h * sh, w * sw, c))

    def taps(o, s, size):
        src = (o + 0.5) / s - 0.5
        f = int(np.floor(src))
        return max(f, 0), min(f + 1, size - 1), src - f

    for oy in range(h * sh):
        y0, y1, fy = taps(oy, sh, h)
        for ox in range(w * sw):
            x0, x1, fx = taps(ox, sw, w)
            y[:, oy, ox] = ((1 - fy) * ((1 - fx) * x[:, y0, x0] + fx * x[:, y0, x1])
                            + fy * ((1 - fx) * x[:, y1, x0] + fx * x[:, y1, x1]))
    return y


shapes = st.tuples(st.sampled_from([1, 1, 2]), st.integers(1, 6), st.integers(1, 6), st.sampled_from([1, 2, 3, 17]))
sizes = st.tuples(st.integers(1, 4), st.integers(1, 4))


@settings(max_examples=40, deadline=None)
@given(shapes, sizes, st.integers(0, 2**16))
def test_nearest_repeats_rows_and_columns(shape, size, seed):
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    layer = _built(L.UpSampling2D(size), shape[1:])
    np.testing.assert_array_equal(layer.forward(x), x.repeat(size[0], axis=1).repeat(size[1], axis=2))


@settings(max_examples=40, deadline=None)
@given(shapes, sizes, st.integers(0, 2**16))
def test_bilinear_matches_a_direct_loop(shape, size, seed):
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    layer = _built(L.UpSampling2D(size, interpolation="bilinear"), shape[1:])
    np.testing.assert_allclose(layer.forward(x), bilinear_ref(x, *size), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("size,shape", [((2, 2), (3, 4, 2)), ((3, 1), (2, 3, 1)), ((1, 1), (2, 2, 3)),
                                        ((2, 3), (1, 1, 2))])
def test_backward_finite_differences(interpolation, size, shape):
    check_layer_gradients(L.UpSampling2D(size, interpolation=interpolation), shape, batch=2, seed=3)


def test_in_a_model_with_a_conv_decoder_and_save_load(tmp_path):
    fastnn.set_seed(0)
    model = fastnn.Sequential([L.Input((4, 4, 2)), L.UpSampling2D(2, interpolation="bilinear"),
                               L.Conv2D(1, 3, padding="same", activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    x = np.random.default_rng(1).random((3, 4, 4, 2)).astype(np.float32)
    t = np.random.default_rng(2).random((3, 8, 8, 1)).astype(np.float32)
    from gradcheck import check_model_gradients
    check_model_gradients(model, x, t)
    model.train_on_batch(x, t)
    model.save(tmp_path / "u.fnn")
    np.testing.assert_array_equal(fastnn.load_model(tmp_path / "u.fnn").predict(x), model.predict(x))


def test_bitwise_identical_on_1_and_2_threads():
    x = np.random.default_rng(4).standard_normal((5, 20, 21, 16)).astype(np.float32)
    before = fastnn.get_num_threads()
    results = []
    try:
        for nt in (1, 2):
            fastnn.set_num_threads(nt)
            layer = _built(L.UpSampling2D(3, interpolation="bilinear"), x.shape[1:])
            y = layer.forward(x).copy()
            results.append((y, layer.backward(np.sin(y)).copy()))
    finally:
        fastnn.set_num_threads(before)
    for a, b in zip(*results):
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("kwargs,match", [
    (dict(size=0), "size"), (dict(size=(2, -1)), "size"), (dict(size=(2, 2, 2)), "size"),
    (dict(size=1.5), "size"), (dict(interpolation="bicubic"), "interpolation"), (dict(interpolation=3), "interp"),
])
def test_bad_arguments_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        L.UpSampling2D(**kwargs)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match=r"\(height, width, channels\)"):
        L.UpSampling2D().build((4, 4))
    model = fastnn.Sequential([L.Input((3, 3, 1)), L.UpSampling2D()])
    with pytest.raises(ValueError, match="per-sample shape"):
        model.predict(np.zeros((2, 3, 4, 1), np.float32))


def test_config_round_trips():
    layer = L.UpSampling2D((3, 2), interpolation="BILINEAR", name="up")
    again = L.UpSampling2D.from_config(json.loads(json.dumps(layer.get_config())))
    assert again.get_config() == layer.get_config() == {"name": "up", "trainable": True, "size": [3, 2],
                                                         "interpolation": "bilinear"}
