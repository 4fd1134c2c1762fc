"""Forward and backward passes over part of a model, for `fastnn.visualize`.

These passes run in inference mode (dropout off, batch normalization on its moving statistics) and end with the
gradient of the model's input, which a training step never needs. They leave no trace the user could see: the
gradient arena that layers' backward passes write is saved and restored around them, so are the layers'
`emit_logits` switches; weights, optimizer state and fastnn's random streams are never touched.
"""
from contextlib import contextmanager

import numbers

import numpy as np

from ._arena import Arena


def layer_names(layers):
    return ", ".join(f"{i}: {layer.name!r}" for i, layer in enumerate(layers))


def resolve_layer(model, layer, what="layer"):
    """The index of a layer given by index (negative counts from the end), name, or the layer object."""
    layers = model._layers
    if not layers:
        raise ValueError("the model has no layers")
    if isinstance(layer, bool) or not isinstance(layer, (numbers.Integral, str)) and not hasattr(layer, "forward"):
        raise TypeError(f"{what} must be a layer index, a layer name or a layer of the model, got {layer!r}")
    if isinstance(layer, numbers.Integral):
        index = int(layer)
        if not -len(layers) <= index < len(layers):
            raise ValueError(f"{what} index {index} is out of range for a model of {len(layers)} layers "
                             f"(valid: 0..{len(layers) - 1} or -{len(layers)}..-1); layers: {layer_names(layers)}")
        return index % len(layers)
    for index, candidate in enumerate(layers):
        if candidate is layer or candidate.name == layer:
            return index
    shown = layer if isinstance(layer, str) else getattr(layer, "name", layer)
    raise ValueError(f"{what} {shown!r} is not in the model; layers: {layer_names(layers)}")


@contextmanager
def preserved(layers, arena):
    """Run passes on `layers` (whose parameters live in `arena`) and then put back what they overwrite."""
    grads = arena.grads.copy()
    switches = [(layer, layer.emit_logits) for layer in layers if hasattr(layer, "emit_logits")]
    for layer, _ in switches:
        layer.emit_logits = False
    try:
        yield
    finally:
        arena.grads[...] = grads
        for layer, flag in switches:
            layer.emit_logits = flag


def forward_to(layers, x, stop):
    """The output of layers[stop] for the batch x, in inference mode."""
    for layer in layers[:stop + 1]:
        x = layer.forward(x, False)
    return x


def backward_from(layers, stop, dy):
    """The gradient of the input of layers[0] for the gradient dy of layers[stop]'s output (a new array)."""
    for layer in reversed(layers[:stop + 1]):
        dy = layer.backward(dy, True, False)
    return np.array(dy, dtype=np.float32, copy=True)


def mean_activation_seed(out, unit=None):
    """d(per-sample mean of `out`, or of its channel `unit` on the last axis)/d(out), summed over the batch:
    each sample's input gradient is that of its own mean."""
    dy = np.zeros(out.shape, np.float32)
    per_sample = out[0].size
    if unit is None:
        dy[...] = 1.0 / per_sample
    else:
        dy[..., unit] = 1.0 / (per_sample // out.shape[-1])
    return dy


def check_unit(layers, index, unit):
    if unit is None:
        return None
    if isinstance(unit, bool) or not isinstance(unit, numbers.Integral):
        raise TypeError(f"unit must be an integer (a channel on the last axis), got {unit!r}")
    n_units = layers[index].output_shape[-1]
    if not 0 <= unit < n_units:
        raise ValueError(f"unit {unit} is out of range: layer {layers[index].name!r} has {n_units} units/channels "
                         f"on its last axis (output shape {layers[index].output_shape}), valid 0..{n_units - 1}")
    return int(unit)


class PrefixAtSize:
    """Layers 0..stop of a model, rebuilt (with the same weights) for other image sizes when they allow it.

    At the model's own input shape the model's layers themselves are used (under `preserved`); at another
    shape a copy of the prefix is built from the layers' configs, holding copies of their weights, so
    convolutional prefixes run on any image large enough.
    """

    def __init__(self, model, stop):
        self.model, self.stop = model, stop
        self._copies = {}

    def output(self, x):
        """Layer `stop`'s output for the batch x (a new array)."""
        layers, arena = self._layers_for(x.shape[1:])
        with preserved(layers, arena):
            return forward_to(layers, x, self.stop).copy()

    def mean_activation_gradient(self, x, unit=None, pre_activation=False):
        """(per-sample mean activation of layer `stop` (or its `unit`), its gradient w.r.t. x); with
        `pre_activation`, of the values before the layer's activation function (when it has one)."""
        layers, arena = self._layers_for(x.shape[1:])
        with preserved(layers, arena):
            if pre_activation and hasattr(layers[self.stop], "emit_logits"):
                layers[self.stop].emit_logits = True
            out = forward_to(layers, x, self.stop)
            values = (out if unit is None else out[..., unit]).reshape(len(x), -1).mean(axis=1, dtype=np.float64)
            return values, backward_from(layers, self.stop, mean_activation_seed(out, unit))

    def _layers_for(self, shape):
        model = self.model
        if shape == model._input_shape:
            return model._layers, model._arena
        if shape not in self._copies:
            self._copies[shape] = self._copy(shape)
        return self._copies[shape]

    def _copy(self, shape):
        copies, current = [], shape
        for layer in self.model._layers[:self.stop + 1]:
            clone = type(layer).from_config(layer.get_config())
            try:
                clone.build(current)
            except ValueError as exc:
                raise ValueError(f"layer {layer.name!r} cannot run on images of shape {shape} "
                                 f"(it would receive {current}): {exc}") from None
            wanted = [spec.shape for spec in clone.param_specs()]
            if wanted != [w.shape for w in layer.weights]:
                raise ValueError(f"layer {layer.name!r} cannot run on images of shape {shape}: its weights "
                                 f"{[w.shape for w in layer.weights]} fix its input to {layer.input_shape}, it "
                                 f"would receive {current}; only convolutional layers adapt to the image size")
            clone.weights = [w.copy() for w in layer.weights]  # the arena keeps weights of matching shapes
            copies.append(clone)
            current = clone.output_shape
        return copies, Arena(copies)
