"""MaxPool2D's backward through the ReLU of the Conv2D before it (pooling.backward_steps): the pool writes the
conv's dz and bias gradient directly. The same kernel gradients and input gradients bit for bit as the two layers
one after the other, and the same bias gradients up to summation order (each layer's own backward is checked
against finite differences elsewhere; through ReLU and max-pool kinks a whole model's are too rough to compare)."""
import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn.layers import pooling

from gradcheck import model_gradients


def _model(first_activation="relu", use_bias=True, optimizer="adam"):
    fastnn.set_seed(3)
    model = fastnn.Sequential([
        L.Input((10, 10, 3)),
        L.Conv2D(24, 3, activation=first_activation, use_bias=use_bias),  # 3 channels in: im2col path
        L.MaxPool2D(2),
        L.Conv2D(16, 3, padding="same", activation="relu"),  # 24 channels in: implicit GEMM
        L.MaxPool2D(2, strides=1, padding="same"),  # overlapping and padded windows
        L.Flatten(),
        L.Dense(4, activation="softmax")])
    model.compile(optimizer, "sparse_categorical_crossentropy")
    return model


def _data(n=5):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 10, 10, 3)).astype(np.float32), np.arange(n) % 4


def _plain(model):
    layers = model._layers
    return [(layers[i].backward, i > 0) for i in range(len(layers) - 1, -1, -1)]


def _plan(model):
    """Each backward step as "layer name.method" (+ "<-relu name" when it computes that layer's dz too)."""
    described = []
    for step, _ in pooling.backward_steps(model._layers):
        if getattr(step, "func", None) is pooling._through_relu:
            pool, conv = step.args
            described.append(f"{pool.name}.through_relu<-{conv.name}")
            continue
        below = step.keywords.get("relu_below") if hasattr(step, "keywords") else None
        method = getattr(step, "func", step)
        described.append(f"{method.__self__.name}.{method.__name__}" + (f"<-{below.name}" if below else ""))
    return described


def test_the_plan_pairs_each_relu_conv_with_the_layer_after_it():
    model = _model()
    c1, p1, c2, p2, f, d = (layer.name for layer in model._layers)
    assert _plan(model) == [f"{d}.backward", f"{f}.backward", f"{p2}.through_relu<-{c2}",
                            f"{c2}.backward_from_dz", f"{p1}.through_relu<-{c1}", f"{c1}.backward_from_dz"]
    for kwargs in ({"first_activation": "tanh"}, {"use_bias": False}):
        model = _model(**kwargs)
        c1, p1, c2, p2, f, d = (layer.name for layer in model._layers)
        assert _plan(model) == [f"{d}.backward", f"{f}.backward", f"{p2}.through_relu<-{c2}",
                                f"{c2}.backward_from_dz", f"{p1}.backward", f"{c1}.backward"]
    small = fastnn.Sequential([L.Input((8, 8, 1)), L.Conv2D(6, 3, activation="relu"), L.MaxPool2D(2)])
    assert [s for s, _ in pooling.backward_steps(small._layers)] == [small._layers[1].backward,
                                                                       small._layers[0].backward]
    # an implicit Conv2D (>= 12 channels in) masks its input gradient by the ReLU conv before it
    chain = fastnn.Sequential([L.Input((8, 8, 3)), L.Conv2D(20, 3, activation="relu"),
                               L.Conv2D(16, 3, activation="relu"), L.Conv2D(8, 3, activation="relu")])
    c1, c2, c3 = (layer.name for layer in chain._layers)
    assert _plan(chain) == [f"{c3}.backward<-{c2}", f"{c2}.backward_from_dz<-{c1}", f"{c1}.backward_from_dz"]


def test_same_gradients_as_the_layers_one_after_the_other():
    x, y = _data()
    model = _model()
    kernel_rows = []
    grads = {}
    for name, steps in (("fused", pooling.backward_steps(model._layers)), ("plain", _plain(model))):
        model._steps["backward"] = steps
        grads[name] = model_gradients(model, x, y)
    for layer in model._layers:
        if isinstance(layer, L.Conv2D):
            kernel, bias = layer.weights
            offset = lambda a: (a.__array_interface__["data"][0] - model._arena.params.__array_interface__["data"][0]) // 4
            k0, b0 = offset(kernel), offset(bias)
            np.testing.assert_array_equal(grads["fused"][k0:k0 + kernel.size], grads["plain"][k0:k0 + kernel.size])
            np.testing.assert_allclose(grads["fused"][b0:b0 + bias.size], grads["plain"][b0:b0 + bias.size],
                                       rtol=1e-5, atol=1e-7)
            kernel_rows.append(layer.name)
    assert len(kernel_rows) == 2


@pytest.mark.parametrize("frozen", [False, True])
def test_a_conv_chain_masked_by_the_implicit_conv_is_bitwise_the_layers(frozen):
    """conv (im2col, relu) -> conv (implicit): the second's input gradient masked by the first's ReLU output is
    the first's dz (so the kernel gradients are the same bits), its sums the first's bias gradient (summed in
    another order)."""
    fastnn.set_seed(4)
    model = fastnn.Sequential([L.Input((10, 10, 3)), L.Conv2D(20, 3, padding="same", activation="relu"),
                               L.Conv2D(16, 3, padding="same", activation="relu"), L.Flatten(), L.Dense(4)])
    model.compile("sgd", fastnn.losses.SparseCategoricalCrossentropy(from_logits=True))
    model._layers[0].trainable = not frozen
    x, y = _data()
    grads = {}
    for name, steps in (("fused", pooling.backward_steps(model._layers)), ("plain", _plain(model))):
        model._steps["backward"] = steps
        grads[name] = model_gradients(model, x, y)
    assert "<-" in _plan(model)[2]
    bias = model._layers[0].weights[0].size + np.arange(20)  # the first conv's bias, after its kernel
    rest = np.setdiff1d(np.arange(grads["plain"].size), bias)
    np.testing.assert_array_equal(grads["fused"][rest], grads["plain"][rest])
    np.testing.assert_allclose(grads["fused"][bias], grads["plain"][bias], rtol=1e-5, atol=1e-7)
    assert not grads["fused"][:model._layers[0].weights[0].size].any() if frozen else grads["fused"].any()


def test_a_frozen_conv_stays_unchanged():
    x, y = _data()
    model = _model(optimizer=fastnn.optimizers.SGD(0.1))
    conv = model._layers[2]
    conv.trainable = False
    before = [w.copy() for w in [w.copy() for w in conv.weights]]
    model.train_on_batch(x, y)
    for a, b in zip(before, [w.copy() for w in conv.weights]):
        np.testing.assert_array_equal(a, b)
    assert model._layers[0].weights[0].std() > 0


@pytest.mark.parametrize("threads", [1, 2])
def test_training_steps_match_across_thread_counts(threads):
    x, y = _data(16)
    results = []
    for n in (1, threads):
        fastnn.set_num_threads(n)
        try:
            model = _model(optimizer=fastnn.optimizers.SGD(0.1, momentum=0.9))
            for _ in range(2):
                model.train_on_batch(x, y)
            results.append(model.get_weights())
        finally:
            fastnn.set_num_threads(2)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
