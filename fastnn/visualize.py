"""Looking inside a trained model: layer activations, input gradients, saliency maps, activation maximization
and DeepDream. Every function returns arrays (write them out with Pillow or matplotlib as you like).

All of them run the model in inference mode (dropout off, batch normalization on its moving statistics) and
leave it exactly as it was: weights, optimizer state, the gradient arena and fastnn's random streams are
untouched, so they can be called in the middle of training.

Examples
--------
>>> import numpy as np, fastnn
>>> from fastnn import layers, visualize
>>> model = fastnn.Sequential([layers.Input((8, 8, 1)), layers.Conv2D(4, 3, activation="relu", name="conv"),
...                            layers.Flatten(), layers.Dense(3, activation="softmax")])
>>> image = np.random.default_rng(0).random((8, 8, 1), dtype=np.float32)
>>> visualize.layer_output(model, image[None], "conv").shape
(1, 6, 6, 4)
>>> visualize.saliency_map(model, image, class_index=2).shape
(8, 8)
"""
import numbers

import numpy as np

from . import _validation, ops
from ._gradient_passes import (PrefixAtSize, backward_from, check_unit, forward_to, mean_activation_seed,
                               preserved, resolve_layer)

__all__ = ["layer_output", "input_gradient", "saliency_map", "activation_maximization", "deep_dream"]


def layer_output(model, x, layer, batch_size=32):
    """The activations of one layer of `model` for a batch `x`, in inference mode.

    Parameters
    ----------
    model : Sequential
    x : array of shape (n, *input_shape)
        Images of another size work too when the layers up to `layer` are convolutional (see `deep_dream`).
    layer : int or str
        The layer's index (negative counts from the end) or name.
    batch_size : int, default 32
        Samples run together.

    Returns
    -------
    array of shape (n, *layer.output_shape), float32 (a new array)

    Raises
    ------
    ValueError
        For a layer that is not in the model (the message lists the valid names and indices), or an `x` of
        the wrong shape.
    """
    index = resolve_layer(model, layer)
    batch_size = _validation.as_positive_int(batch_size, "batch_size")
    shape = model._input_shape
    if shape is not None and len(shape) == 3 and np.ndim(x) == 4 and np.shape(x)[1:] != shape:
        x = _validation.as_float32_array(x, "x")
        if np.shape(x)[3] != shape[2] or 0 in x.shape:
            raise ValueError(f"x has per-sample shape {x.shape[1:]}, the model takes {shape} (other image "
                             f"sizes are possible, other channel counts are not)")
        prefix = PrefixAtSize(model, index)
        return np.concatenate([prefix.output(x[start:start + batch_size])
                               for start in range(0, len(x), batch_size)])
    x = model._prepare_x(x)
    layers = model._layers
    out = np.empty((len(x),) + tuple(layers[index].output_shape), np.float32)
    with preserved(layers, model._arena):
        for start in range(0, len(x), batch_size):
            out[start:start + batch_size] = forward_to(layers, x[start:start + batch_size], index)
    return out


def _parse_target(model, target):
    """("class", c) | ("layer", index, unit or None) | ("loss", labels)."""
    if isinstance(target, bool):
        raise TypeError(f"target must be a class index, a layer (name, or ('layer', index or name[, unit])) or "
                        f"an array of labels, got {target!r}")
    if isinstance(target, numbers.Integral) or (isinstance(target, np.ndarray) and target.ndim == 0
                                                  and target.dtype.kind in "iu"):
        return "class", int(target)
    if isinstance(target, str):
        return "layer", resolve_layer(model, target, "target layer"), None
    if isinstance(target, tuple) and len(target) in (2, 3) and isinstance(target[0], str) and target[0] == "layer":
        index = resolve_layer(model, target[1], "target layer")
        return "layer", index, check_unit(model._layers, index, target[2] if len(target) == 3 else None)
    if isinstance(target, tuple) and target and isinstance(target[0], str):
        raise ValueError(f"a tuple target must be ('layer', index or name) or ('layer', index or name, unit), "
                         f"got {target!r}")
    return "loss", target


def _class_score_gradient(model, x, cls):
    layers = model._layers
    last = layers[-1]
    n_classes = last.output_shape[-1]
    if not 0 <= cls < n_classes:
        raise ValueError(f"class index {cls} is out of range: the model's output has {n_classes} classes on its "
                         f"last axis, valid 0..{n_classes - 1}")
    with preserved(layers, model._arena):
        if getattr(last, "activation", None) == "softmax":
            last.emit_logits = True  # the score before the softmax: it does not shrink as other classes grow
        out = forward_to(layers, x, len(layers) - 1)
        dy = np.zeros(out.shape, np.float32)
        dy[..., cls] = 1.0
        return backward_from(layers, len(layers) - 1, dy)


def _loss_gradient(model, x, labels):
    model._require_compiled("input_gradient with a label array as target")
    t = model._prepare_targets(labels, len(x))
    layers = model._layers
    with preserved(layers, model._arena):
        out = model._forward(x, False, True)  # the fused softmax/sigmoid stops at the logits, as in training
        grad = np.empty(out.shape, np.float32)
        model.loss.compute(out, t, None, grad, model._logits)
        return backward_from(layers, len(layers) - 1, grad)


def input_gradient(model, x, target):
    """The gradient of a scalar objective with respect to the input batch `x`, in inference mode.

    Parameters
    ----------
    model : Sequential
    x : array of shape (n, *input_shape)
    target : int, str, tuple or array
        What to differentiate, for each sample:

        - an int ``c``: the score of class c, the last layer's output ``[..., c]`` (summed over any other
          non-batch axes). When the last layer ends in a softmax (``Dense(..., activation="softmax")`` or
          ``Activation("softmax")``), it is the score *before* the softmax (the logit), as usual for saliency.
        - a layer name ``"conv2d_1"``, or ``("layer", index_or_name)``: the mean of that layer's output
          (post-activation) over all its values; ``("layer", index_or_name, unit)``: the mean of its channel
          ``unit`` (last axis) over the other axes.
        - an array of labels (what ``fit`` takes as y): the compiled loss (a mean over the batch, so each
          sample's gradient carries a factor 1/n).

    Returns
    -------
    array of x's shape, float32
        Row i is the gradient for sample i (samples do not interact in inference mode).

    Raises
    ------
    ValueError
        For an unknown layer (the valid names and indices are listed), a class index out of range, labels that
        do not fit the compiled loss, or an `x` of the wrong shape.
    RuntimeError
        For a label target on a model that was not compiled.
    """
    x = model._prepare_x(x)
    kind, *args = _parse_target(model, target)
    if kind == "class":
        return _class_score_gradient(model, x, args[0])
    if kind == "loss":
        return _loss_gradient(model, x, args[0])
    index, unit = args
    layers = model._layers
    with preserved(layers, model._arena):
        out = forward_to(layers, x, index)
        return backward_from(layers, index, mean_activation_seed(out, unit))


def _as_image(model, image, name="image"):
    """One image as (h, w, c) float32; (h, w) is accepted for a one-channel model. Returns it and whether it
    came without a channel axis."""
    shape = model._input_shape
    if shape is None or len(shape) != 3:
        raise ValueError(f"this function needs a model of images (per-sample shape (height, width, channels)); "
                         f"the model's input shape is {shape}")
    img = _validation.as_float32_array(image, name, ndim=(2, 3))
    squeeze = img.ndim == 2
    if squeeze:
        if shape[2] != 1:
            raise ValueError(f"{name} of shape {img.shape} has no channel axis, but the model takes {shape[2]} "
                             f"channels: give shape (height, width, {shape[2]})")
        img = img[:, :, None]
    if img.shape[2] != shape[2]:
        raise ValueError(f"{name} has {img.shape[2]} channels (shape {img.shape}), the model takes {shape[2]} "
                         f"(input shape {shape})")
    if 0 in img.shape:
        raise ValueError(f"{name} is empty (shape {img.shape})")
    return img, squeeze


def saliency_map(model, image, class_index):
    """Where a class's score is sensitive to the image: ``max over channels |d score / d image|``.

    Parameters
    ----------
    model : Sequential
        A model of images (per-sample input (height, width, channels)).
    image : array of shape (height, width, channels), or (height, width) for one channel
        Of the model's input size.
    class_index : int
        The class whose score (pre-softmax, see `input_gradient`) is differentiated.

    Returns
    -------
    array of shape (height, width), float32, non-negative
    """
    img, _ = _as_image(model, image)
    if img.shape != model._input_shape:
        raise ValueError(f"image has shape {img.shape}, the model takes {model._input_shape}")
    if isinstance(class_index, bool) or not isinstance(class_index, numbers.Integral):
        raise TypeError(f"class_index must be an integer, got {class_index!r}")
    grad = input_gradient(model, img[None], int(class_index))
    return np.abs(grad[0]).max(axis=-1)


def _normalized(grad):
    return grad / (float(grad.std()) + 1e-8)


def _value_range(value_range):
    if value_range is None:
        return None
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise ValueError(f"value_range must be None or a pair (low, high), got {value_range!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"value_range must be finite with low < high, got {value_range!r}")
    return lo, hi


def activation_maximization(model, layer, unit=None, steps=100, step_size=0.1, l2=1e-3, value_range=None,
                            seed=None):
    """An input that strongly activates a layer (or one of its units/channels), by gradient ascent from noise.

    Each step moves the input along the gradient of the mean activation, divided by its standard deviation
    (so `step_size` is in the input's units whatever the gradient's scale), then shrinks it by ``1 - l2``
    (a small L2 penalty that keeps values bounded) and, with `value_range`, clips it. While the unit is off
    everywhere (a ReLU at zero has no gradient), a step follows its value before the activation instead,
    until it turns on.

    Parameters
    ----------
    model : Sequential
        A built model.
    layer : int or str
        The layer, by index or name.
    unit : int, optional
        A channel (last axis) of the layer: its mean over the other axes is maximized. Default: the whole layer.
    steps : int, default 100
    step_size : float, default 0.1
    l2 : float in [0, 1), default 1e-3
    value_range : (float, float), optional
        The valid input values (e.g. (0, 1) for images scaled so): the start is uniform noise around the
        middle of the range and every step clips to it. Default: start from N(0, 0.1^2) noise, no clipping.
    seed : int, optional
        For the starting noise (a separate generator: fastnn's own random streams are not used).

    Returns
    -------
    array of shape model.input_shape[1:], float32
    """
    model._require_built("activation_maximization")
    index = resolve_layer(model, layer)
    unit = check_unit(model._layers, index, unit)
    steps = _validation.as_positive_int(steps, "steps")
    step_size = _validation.as_finite_float(step_size, "step_size", positive=True)
    l2 = _validation.as_finite_float(l2, "l2", low=0.0)
    if l2 >= 1:
        raise ValueError(f"l2 must be in [0, 1), got {l2}")
    bounds = _value_range(value_range)
    rng = np.random.default_rng(seed)
    shape = (1,) + tuple(model._input_shape)
    if bounds is None:
        x = (0.1 * rng.standard_normal(shape)).astype(np.float32)
    else:
        lo, hi = bounds
        x = (lo + (hi - lo) * (0.45 + 0.1 * rng.random(shape))).astype(np.float32)
    prefix = PrefixAtSize(model, index)
    for _ in range(steps):
        _, grad = prefix.mean_activation_gradient(x, unit)
        if not grad.any():
            _, grad = prefix.mean_activation_gradient(x, unit, pre_activation=True)
        x += np.float32(step_size) * _normalized(grad)
        x *= np.float32(1.0 - l2)
        if bounds is not None:
            np.clip(x, *bounds, out=x)
    return x[0]


def _octave_sizes(h, w, octaves, scale):
    """Image sizes from the smallest octave to the full size."""
    return [(max(1, round(h / scale ** k)), max(1, round(w / scale ** k))) for k in range(octaves - 1, -1, -1)]


def deep_dream(model, image, layer, steps=20, step_size=0.05, octaves=3, octave_scale=1.4, jitter=2,
               value_range=None, seed=None):
    """DeepDream: amplify what a layer sees in an image by gradient ascent on its mean activation, over octaves.

    The image is first shrunk by `octave_scale` (octaves - 1) times; at each size from the smallest up, it
    takes `steps` ascent steps (each on a copy rolled by a random shift of up to `jitter` pixels, with the
    gradient divided by its standard deviation), then is enlarged to the next size, and the detail that
    shrinking lost is added back.

    Parameters
    ----------
    model : Sequential
        A model of images. At sizes other than its input size the layers up to `layer` run as copies rebuilt
        for that size, which works for convolutional layers (Conv2D, pooling, batch normalization, ...); a
        Dense layer up to `layer` ties the image to the model's input size (use octaves=1 there).
    image : array of shape (height, width, channels), or (height, width) for one channel
        Of the model's input size, or any size when the layers up to `layer` are convolutional.
    layer : int or str
        The layer whose mean activation is raised.
    steps : int, default 20
        Ascent steps per octave.
    step_size : float, default 0.05
    octaves : int, default 3
    octave_scale : float > 1, default 1.4
    jitter : int, default 2
        The largest random shift (pixels) of each step's copy; 0 for none.
    value_range : (float, float), optional
        Clip the image to these values after every step (e.g. (0, 1)).
    seed : int, optional
        For the jitter shifts (a separate generator: fastnn's own random streams are not used).

    Returns
    -------
    array of image's shape, float32
    """
    img, squeeze = _as_image(model, image)
    index = resolve_layer(model, layer)
    steps = _validation.as_positive_int(steps, "steps")
    octaves = _validation.as_positive_int(octaves, "octaves")
    step_size = _validation.as_finite_float(step_size, "step_size", positive=True)
    octave_scale = _validation.as_finite_float(octave_scale, "octave_scale")
    if octave_scale <= 1.0:
        raise ValueError(f"octave_scale must be > 1 (each octave shrinks the image by it), got {octave_scale}")
    jitter = _validation.as_positive_int(jitter, "jitter", minimum=0)
    bounds = _value_range(value_range)
    rng = np.random.default_rng(seed)
    prefix = PrefixAtSize(model, index)
    original = img[None]
    sizes = _octave_sizes(img.shape[0], img.shape[1], octaves, octave_scale)
    shrunk = ops.resize2d(original, sizes[0])
    dream = shrunk.copy()
    for i, size in enumerate(sizes):
        if i > 0:
            same_size = ops.resize2d(original, size)
            dream = ops.resize2d(dream, size) + (same_size - ops.resize2d(shrunk, size))
            shrunk = same_size
        for _ in range(steps):
            dy, dx = (rng.integers(-jitter, jitter + 1, size=2) if jitter else (0, 0))
            rolled = np.ascontiguousarray(np.roll(dream, (dy, dx), axis=(1, 2)))
            _, grad = prefix.mean_activation_gradient(rolled)
            dream += np.float32(step_size) * np.roll(_normalized(grad), (-dy, -dx), axis=(1, 2))
            if bounds is not None:
                np.clip(dream, *bounds, out=dream)
    return dream[0, :, :, 0] if squeeze else dream[0]
