"""fastnn.visualize: input gradients against finite differences for the three kinds of target on a Dense and a
conv model (max pooling, batch normalization, dropout, all in inference mode); the model, optimizer, gradient
arena and random streams untouched; layer_output against the prefix run as its own model; DeepDream and
activation maximization raise what they maximize; bad arguments give clear errors."""
import numpy as np
import pytest

import fastnn
from fastnn import _random, layers as L, visualize
from gradcheck import _compare

H = 3e-3  # finite-difference step: small enough that relu/max-pool kinks inside +-h are rare (and detected)


def dense_model(softmax_layer=False):
    fastnn.set_seed(0)
    head = [L.Dense(4), L.Activation("softmax")] if softmax_layer else [L.Dense(4, activation="softmax")]
    model = fastnn.Sequential([L.Input((6,)), L.Dense(5, activation="tanh", name="hidden")] + head)
    model.compile(optimizer=fastnn.optimizers.SGD(0.1, momentum=0.9), loss="sparse_categorical_crossentropy")
    return model


def conv_model():
    fastnn.set_seed(1)
    model = fastnn.Sequential([
        L.Input((8, 8, 2)), L.Conv2D(4, 3, padding="same", activation="tanh", name="conv_a"),
        L.BatchNormalization(name="bn"), L.MaxPool2D(2), L.Dropout(0.5, name="drop"),
        L.Conv2D(3, 3, activation="relu", name="conv_b"), L.Flatten(), L.Dense(3, activation="softmax")])
    model.compile(optimizer=fastnn.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(2)
    for _ in range(3):  # moving statistics and Adam state that are not the initial ones
        model.train_on_batch(rng.standard_normal((8, 8, 8, 2)), rng.integers(0, 3, 8))
    return model


def logits_twin(model):
    """The same model with its final softmax replaced by nothing (for the pre-softmax score)."""
    config = [type(layer).from_config(layer.get_config()) for layer in model.layers]
    last = config[-1]
    if isinstance(last, L.Activation):
        config = config[:-1]
    else:
        last._set_activation(None)
    twin = fastnn.Sequential([L.Input(model.input_shape[1:])] + config)
    twin.set_weights(model.get_weights())
    return twin


def check(analytic, f, x, seed=0):
    _compare("dx", analytic, f, x, np.random.default_rng(seed), 30, H, 3e-2, 2e-3)


def batch(model, n=3, seed=3):
    return np.random.default_rng(seed).standard_normal((n,) + model.input_shape[1:]).astype(np.float32)


@pytest.mark.parametrize("make", [dense_model, conv_model, lambda: dense_model(softmax_layer=True)])
def test_class_score_gradient_is_the_pre_softmax_score(make):
    model = make()
    twin = logits_twin(model)
    x = batch(model)
    grad = visualize.input_gradient(model, x, 2)
    check(grad, lambda: float(twin.predict(x)[:, 2].astype(np.float64).sum()), x)


@pytest.mark.parametrize("make", [dense_model, conv_model])
def test_loss_gradient(make):
    model = make()
    x, y = batch(model), np.array([0, 2, 1])
    grad = visualize.input_gradient(model, x, y)
    check(grad, lambda: float(model.test_on_batch(x, y)), x)


@pytest.mark.parametrize("make,target", [
    (dense_model, "hidden"), (dense_model, ("layer", 0)), (dense_model, ("layer", -1, 1)),
    (conv_model, "conv_a"), (conv_model, ("layer", "bn")), (conv_model, ("layer", "drop", 2)),
    (conv_model, ("layer", 4, 0)),
])
def test_layer_mean_activation_gradient(make, target):
    model = make()
    x = batch(model)
    index, unit = target if isinstance(target, str) else target[1], None if isinstance(target, str) or len(target) == 2 else target[2]
    grad = visualize.input_gradient(model, x, target)

    def objective():
        out = visualize.layer_output(model, x, index).astype(np.float64)
        out = out if unit is None else out[..., unit]
        return float(out.reshape(len(x), -1).mean(axis=1).sum())

    check(grad, objective, x)


def test_samples_get_their_own_gradients():
    model = conv_model()
    x = batch(model, 4)
    together = visualize.input_gradient(model, x, "conv_b")
    alone = np.concatenate([visualize.input_gradient(model, x[i:i + 1], "conv_b") for i in range(4)])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-7)


def _state(model):
    return ([w.copy() for w in model.get_weights()], model._arena.grads.copy(),
            {k: v.copy() for k, v in model.optimizer.variables().items()} if hasattr(model.optimizer.variables(), "items")
            else [np.array(v, copy=True) for v in model.optimizer.variables()], model.optimizer.iterations,
            [getattr(layer, "emit_logits", None) for layer in model.layers])


def _same(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(u, v) for u, v in zip(a, b))
    if isinstance(a, np.ndarray):
        return a.tobytes() == b.tobytes()
    return a == b


def test_nothing_the_user_can_see_changes():
    model = conv_model()
    x, y = batch(model), np.array([0, 1, 2])
    # gradients a user may be inspecting (a training-mode pass: it also moves batch normalization's statistics)
    model._compute_gradients(x, model._prepare_targets(y, 3), None, [])
    before = _state(model)
    fastnn.set_seed(7)
    visualize.input_gradient(model, x, 1)
    visualize.input_gradient(model, x, y)
    visualize.input_gradient(model, x, ("layer", "conv_b", 1))
    visualize.layer_output(model, x, "drop")
    visualize.saliency_map(model, x[0], 0)
    visualize.activation_maximization(model, "conv_b", 0, steps=3, seed=1)
    visualize.deep_dream(model, x[0], "conv_b", steps=2, octaves=2, octave_scale=1.3, seed=1)
    key = _random.draw_key()
    fastnn.set_seed(7)
    assert key == _random.draw_key()  # fastnn's random stream was not drawn from
    assert _same(_state(model), before)
    twin = conv_model()  # training carries on exactly as if nothing had been called
    twin._compute_gradients(x, twin._prepare_targets(y, 3), None, [])
    results = []
    for m in (model, twin):
        fastnn.set_seed(11)  # the same dropout masks for both
        results.append([m.train_on_batch(x, y)] + m.get_weights())
    assert _same(results[0], results[1])


def test_layer_output_matches_the_prefix_run_as_a_model():
    model = conv_model()
    x = batch(model, 70)
    for k in range(1, len(model.layers) + 1):
        prefix = fastnn.Sequential([L.Input((8, 8, 2))] + [type(l).from_config(l.get_config())
                                                             for l in model.layers[:k]])
        prefix.set_weights([w for l in model.layers[:k] for w in l.weights])
        expected = prefix.predict(x)
        for ref in (k - 1, k - 1 - len(model.layers), model.layers[k - 1].name):
            np.testing.assert_array_equal(visualize.layer_output(model, x, ref, batch_size=32), expected)


def test_saliency_map():
    model = conv_model()
    img = batch(model, 1)[0]
    sal = visualize.saliency_map(model, img, 1)
    assert sal.shape == (8, 8) and (sal >= 0).all() and sal.max() > 0
    np.testing.assert_array_equal(sal, np.abs(visualize.input_gradient(model, img[None], 1)[0]).max(axis=-1))
    grey = fastnn.Sequential([L.Input((5, 5, 1)), L.Flatten(), L.Dense(2)])
    flat = np.random.default_rng(0).random((5, 5)).astype(np.float32)
    np.testing.assert_array_equal(visualize.saliency_map(grey, flat, 0), visualize.saliency_map(grey, flat[:, :, None], 0))


def test_activation_maximization_raises_the_unit():
    model = conv_model()
    for layer, unit in (("conv_b", 2), (-1, 0), ("conv_a", None)):
        def activation(img):
            out = visualize.layer_output(model, img[None], layer)[0]
            return float((out if unit is None else out[..., unit]).mean())

        start = visualize.activation_maximization(model, layer, unit, steps=1, step_size=1e-6, seed=3)
        best = visualize.activation_maximization(model, layer, unit, steps=40, step_size=0.05, seed=3)
        assert best.shape == (8, 8, 2)
        assert activation(best) > activation(start) + 1e-3
    bounded = visualize.activation_maximization(model, "conv_b", 1, steps=20, value_range=(0, 1), seed=0)
    assert bounded.min() >= 0 and bounded.max() <= 1


def _dream_model():
    fastnn.set_seed(4)
    return fastnn.Sequential([L.Input((16, 16, 1)), L.Conv2D(6, 3, padding="same", activation="relu"),
                              L.MaxPool2D(2), L.Conv2D(8, 3, activation="relu", name="deep"),
                              L.Flatten(), L.Dense(2, activation="softmax")])


def test_deep_dream_raises_the_layers_mean_activation():
    model = _dream_model()
    img = np.random.default_rng(5).random((16, 16, 1)).astype(np.float32)

    def mean_activation(image):
        return float(visualize.layer_output(model, image[None], "deep").mean())

    for kwargs in (dict(octaves=1), dict(octaves=3, octave_scale=1.3, jitter=3)):
        dream = visualize.deep_dream(model, img, "deep", steps=10, step_size=0.02, seed=0, **kwargs)
        assert dream.shape == img.shape and dream.dtype == np.float32
        assert mean_activation(dream) > 1.2 * mean_activation(img)
    flat = visualize.deep_dream(model, img[:, :, 0], "deep", steps=2, octaves=1, value_range=(0, 1))
    assert flat.shape == (16, 16) and 0 <= flat.min() and flat.max() <= 1
    same = [visualize.deep_dream(model, img, "deep", steps=3, octaves=2, seed=9) for _ in range(2)]
    np.testing.assert_array_equal(*same)


def test_deep_dream_on_another_image_size_with_a_convolutional_prefix():
    model = _dream_model()
    img = np.random.default_rng(6).random((23, 30, 1)).astype(np.float32)
    dream = visualize.deep_dream(model, img, 2, steps=5, octaves=2)
    assert dream.shape == (23, 30, 1) and np.abs(dream - img).max() > 0
    with pytest.raises(ValueError, match="only convolutional layers adapt"):
        visualize.deep_dream(model, img, -1, steps=1)
    with pytest.raises(ValueError, match="cannot run on images of shape"):
        visualize.deep_dream(model, img, "deep", steps=1, octaves=6, octave_scale=2.0)


@pytest.mark.parametrize("call,err,match", [
    (lambda m, x: visualize.layer_output(m, x, "nope"), ValueError, r"'nope' is not in the model; layers: 0: 'conv_a'"),
    (lambda m, x: visualize.layer_output(m, x, 7), ValueError, r"index 7 is out of range .* 0\.\.6 or -7\.\.-1"),
    (lambda m, x: visualize.layer_output(m, x, 1.5), TypeError, "layer index, a layer name"),
    (lambda m, x: visualize.layer_output(m, x[..., 0], 0), ValueError, "per-sample shape"),
    (lambda m, x: visualize.layer_output(m, x[:, :4], -1), ValueError, "conv_b.*cannot run on images of shape"),
    (lambda m, x: visualize.input_gradient(m, x[:, :4], 0), ValueError, "per-sample shape"),
    (lambda m, x: visualize.input_gradient(m, x, 3), ValueError, r"class index 3 is out of range.*0\.\.2"),
    (lambda m, x: visualize.input_gradient(m, x, -1), ValueError, "class index -1"),
    (lambda m, x: visualize.input_gradient(m, x, True), TypeError, "target"),
    (lambda m, x: visualize.input_gradient(m, x, ("unit", 0)), ValueError, "tuple target"),
    (lambda m, x: visualize.input_gradient(m, x, ("layer", "conv_a", 4)), ValueError, "unit 4 is out of range"),
    (lambda m, x: visualize.input_gradient(m, x, np.array([0, 5, 1])), ValueError, "out of range"),
    (lambda m, x: visualize.input_gradient(m, x.astype(complex), 0), TypeError, "numbers"),
    (lambda m, x: visualize.saliency_map(m, x, 0), ValueError, "2 or 3-dimensional"),
    (lambda m, x: visualize.saliency_map(m, x[0, :4], 0), ValueError, "the model takes"),
    (lambda m, x: visualize.saliency_map(m, x[0, :, :, 0], 0), ValueError, "no channel axis"),
    (lambda m, x: visualize.saliency_map(m, x[0], 9), ValueError, "class index 9"),
    (lambda m, x: visualize.saliency_map(m, np.full((8, 8, 2), np.nan), 0), ValueError, "NaN"),
    (lambda m, x: visualize.deep_dream(m, x[0], "conv_b", octave_scale=1.0), ValueError, "octave_scale must be > 1"),
    (lambda m, x: visualize.deep_dream(m, x[0], "conv_b", steps=0), ValueError, "steps must be >= 1"),
    (lambda m, x: visualize.deep_dream(m, x[0], "conv_b", octaves=0), ValueError, "octaves must be >= 1"),
    (lambda m, x: visualize.deep_dream(m, x[0], "conv_b", jitter=-1), ValueError, "jitter"),
    (lambda m, x: visualize.deep_dream(m, x[0], "zzz"), ValueError, "'zzz' is not in the model"),
    (lambda m, x: visualize.deep_dream(m, x[0, :, :, :1], "conv_b"), ValueError, "1 channels"),
    (lambda m, x: visualize.activation_maximization(m, "conv_b", 3), ValueError, "unit 3 is out of range"),
    (lambda m, x: visualize.activation_maximization(m, "conv_b", steps=0), ValueError, "steps"),
    (lambda m, x: visualize.activation_maximization(m, "conv_b", step_size=0), ValueError, "step_size"),
    (lambda m, x: visualize.activation_maximization(m, "conv_b", value_range=(1, 0)), ValueError, "low < high"),
    (lambda m, x: visualize.activation_maximization(m, "conv_b", l2=1.0), ValueError, "l2"),
])
def test_bad_arguments(call, err, match):
    model = conv_model()
    with pytest.raises(err, match=match):
        call(model, batch(model))


def test_loss_target_needs_a_compiled_model_and_images_need_an_image_model():
    model = fastnn.Sequential([L.Input((4,)), L.Dense(2)])
    with pytest.raises(RuntimeError, match="compile"):
        visualize.input_gradient(model, np.zeros((1, 4)), np.array([1]))
    with pytest.raises(ValueError, match="model of images"):
        visualize.saliency_map(model, np.zeros(4), 0)
    with pytest.raises(ValueError, match="needs a built model"):
        visualize.activation_maximization(fastnn.Sequential([L.Dense(2)]), 0)


def test_activation_maximization_wakes_a_unit_that_starts_off():
    fastnn.set_seed(3)
    model = fastnn.Sequential([L.Input((6, 6, 1)), L.Conv2D(2, 3, activation="relu", name="c")])
    model.layers[0].weights[1][...] = [-5.0, 0.0]  # channel 0 is off for any input near the start
    start = visualize.activation_maximization(model, "c", 0, steps=1, step_size=1e-6, seed=0)
    assert not visualize.layer_output(model, start[None], "c")[..., 0].any()
    best = visualize.activation_maximization(model, "c", 0, steps=60, step_size=0.2, seed=0)
    assert visualize.layer_output(model, best[None], "c")[..., 0].mean() > 0.1


def test_layer_output_on_another_image_size():
    model = _dream_model()
    x = np.random.default_rng(7).random((3, 21, 19, 1)).astype(np.float32)
    out = visualize.layer_output(model, x, "deep", batch_size=2)
    fastnn.set_seed(4)
    alone = fastnn.Sequential([L.Input((21, 19, 1))] + [type(l).from_config(l.get_config()) for l in model.layers[:3]])
    alone.set_weights([w for l in model.layers[:3] for w in l.weights])
    np.testing.assert_array_equal(out, alone.predict(x))
    with pytest.raises(ValueError, match="other channel counts are not"):
        visualize.layer_output(model, np.zeros((1, 21, 19, 2)), "deep")
    with pytest.raises(ValueError, match="only convolutional layers adapt"):
        visualize.layer_output(model, x, -1)
