"""Model files: a `Sequential` model's architecture, weights and training state in one safetensors file.

Layout (format version 1). A safetensors file is an 8-byte little-endian header length N, N bytes of JSON
header, then the tensor bytes. Every tensor is float32:

- ``weights/<layer index>/<weight name>`` (e.g. ``weights/0/kernel``): each layer's weights, in Keras order;
- ``optimizer/<variable name>`` (e.g. ``optimizer/velocity``): the optimizer's state over the flat parameter arena.

The header's ``__metadata__`` holds strings: ``format`` ("fastnn"), ``format_version``, ``fastnn_version``
(informative), ``architecture`` (JSON: the model's name, input shape and each layer's class name and config) and,
when the optimizer is saved, ``training`` (JSON: optimizer config and iteration count, loss, metrics, and the
state of fastnn's random streams, so that a resumed `fit` continues exactly as an uninterrupted one).

Loading trusts nothing in the file: the header is checked before any tensor is read, layers are built only from
the classes in `fastnn.layers` (nothing named in the file is imported or evaluated), and every tensor must have
exactly the shape the architecture implies. Anything wrong raises `ModelFileError`.
"""
import contextlib
import json
import math
import os
import re

import numpy as np
import safetensors.numpy

from . import _random, layers as layers_mod, losses, metrics as metrics_mod, optimizers
from ._safetensors_io import Invalid as _Invalid, MAX_NDIM, is_int as _is_int, parse_json as _parse_json, \
    read_container, short, wrapped as _wrapped, write_atomically
from ._version import __version__
from .layers.base import Layer
from .model import Sequential

FORMAT_VERSION = 1
_MAX_LAYERS = 10_000  # building is quadratic in the layer count (unique names); bounds what a file can ask for
_LAYER_CLASSES = {name: getattr(layers_mod, name) for name in layers_mod.__all__
                  if isinstance(getattr(layers_mod, name), type) and issubclass(getattr(layers_mod, name), Layer)
                  and getattr(layers_mod, name) is not Layer}
_BIT_GENERATORS = {"PCG64": np.random.PCG64}


class ModelFileError(ValueError):
    """A model file that cannot be saved or loaded; the message names the file and what is wrong with it."""

    def __init__(self, path, problem):
        super().__init__(path, problem)
        self.path, self.problem = path, problem

    def __str__(self):
        return f"model file {self.path!r}: {self.problem}"


@contextlib.contextmanager
def _reported(path):
    """Turn a problem found in the file into a ModelFileError that names the file."""
    try:
        yield
    except _Invalid as exc:
        raise ModelFileError(os.fspath(path), str(exc)) from exc.__cause__


@contextlib.contextmanager
def _random_stream_kept():
    """Building a model draws initial weights from fastnn's random stream; loading overwrites them, so it puts
    the stream back: loading a file has no effect on later random draws (unless it restores the saved state)."""
    state = _random.generator().bit_generator.state
    try:
        yield
    finally:
        _random.generator().bit_generator.state = state


# ---- architecture ----------------------------------------------------------------------------------------------
def _expect_dict(value, keys, what):
    if not isinstance(value, dict) or set(value) != set(keys):
        raise _Invalid(f"{what} must be a JSON object with exactly the keys {sorted(keys)}, got "
                       f"{short(sorted(value)) if isinstance(value, dict) else type(value).__name__}")
    return value


def _architecture(model):
    return {"class_name": "Sequential", "config": {
        "name": model.name,
        "input_shape": None if model._input_shape is None else list(model._input_shape),
        "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()} for layer in model.layers]}}


def _check_input_shape(shape):
    if shape is None:
        return None
    if (not isinstance(shape, list) or not 1 <= len(shape) <= MAX_NDIM
            or not all(_is_int(d) and 0 < d < 2**31 for d in shape) or math.prod(shape) > 2**40):
        raise _Invalid(f"architecture input_shape {short(shape)} is not a list of 1 to {MAX_NDIM} positive integers "
                       f"of a sensible size")
    return tuple(shape)


def _layers_from_architecture(arch):
    """Layers (built when the input shape is known) from the allow-list, the model name and input shape."""
    config = _expect_dict(_expect_dict(arch, ("class_name", "config"), "architecture")["config"],
                          ("name", "input_shape", "layers"), "architecture config")
    if arch["class_name"] != "Sequential":
        raise _Invalid(f"architecture class {short(arch['class_name'])} is not supported; expected 'Sequential'")
    if not isinstance(config["name"], str) or not isinstance(config["layers"], list):
        raise _Invalid("architecture name must be a string and layers a list")
    if len(config["layers"]) > _MAX_LAYERS:
        raise _Invalid(f"architecture has {len(config['layers'])} layers; at most {_MAX_LAYERS} are supported")
    shape = input_shape = _check_input_shape(config["input_shape"])
    built = []
    for i, entry in enumerate(config["layers"]):
        entry = _expect_dict(entry, ("class_name", "config"), f"layer {i}")
        name = entry["class_name"]
        cls = _LAYER_CLASSES.get(name) if isinstance(name, str) else None
        if cls is None:
            raise _Invalid(f"layer {i} has unknown type {short(name)}; fastnn builds only "
                           f"{', '.join(sorted(_LAYER_CLASSES))}")
        if not isinstance(entry["config"], dict):
            raise _Invalid(f"layer {i} ({name}) config must be a JSON object")
        with _wrapped(f"layer {i} ({name}) config {short(entry['config'])} is invalid"):
            layer = cls.from_config(entry["config"])
        if i == 0 and input_shape is None and layer._declared_input_shape is not None:
            raise _Invalid("architecture input_shape is null but its first layer declares an input shape")
        with _wrapped(f"layer {i} ({name}) cannot be built for input shape {shape}"):
            if shape is not None:
                layer.build(shape)
                shape = layer.output_shape
        built.append(layer)
    return config["name"], input_shape, built


def _weight_names(model_layers):
    """(tensor name, layer index, weight index, expected shape) for every weight of the built layers."""
    return [(f"weights/{i}/{spec.name}", i, k, tuple(spec.shape)) for i, layer in enumerate(model_layers)
            if layer.built for k, spec in enumerate(layer.param_specs())]


def _check_weight_tensors(shapes, expected, what):
    present = {name for name in shapes if name.startswith("weights/")}
    missing = [name for name, *_ in expected if name not in present]
    unexpected = sorted(present - {name for name, *_ in expected})
    if missing or unexpected:
        raise _Invalid(f"weights do not match {what}: missing {short(missing)}, unexpected {short(unexpected)}")
    for name, _, _, shape in expected:
        if shapes[name] != shape:
            raise _Invalid(f"tensor {name!r} has shape {shapes[name]} but {what} needs {shape}")


# ---- training state ------------------------------------------------------------------------------------------------
def _by_class(registry, obj, preferred=None):
    """The registry key whose class is exactly type(obj) (preferring `preferred`), or None."""
    if registry.get(preferred) is type(obj):
        return preferred
    return next((key for key, cls in registry.items() if cls is type(obj)), None)


def _deserialize_optimizer(config):
    with _wrapped(f"optimizer {short(config)} is invalid"):
        return optimizers.deserialize(config)


def _metric_config(metric):
    # Metrics keep their constructor arguments as public attributes (e.g. top-k's `k`); the rest is running state.
    config = {key: value for key, value in vars(metric).items() if not key.startswith("_") and key != "name"}
    return {"class_name": _by_class(metrics_mod._BY_NAME, metric), "name": metric.name, "config": config}


def _metric_from_config(config):
    config = _expect_dict(config, ("class_name", "name", "config"), "metric")
    cls = metrics_mod._BY_NAME.get(config["class_name"]) if isinstance(config["class_name"], str) else None
    if cls is None or not isinstance(config["name"], str) or not isinstance(config["config"], dict):
        raise _Invalid(f"unknown metric {short(config)}; valid: {', '.join(sorted(metrics_mod._BY_NAME))}")
    with _wrapped(f"metric config {short(config['config'])} is invalid"):
        metric = cls(**config["config"])
    metric.name = config["name"]
    return metric


def _loss_from_config(config):
    config = _expect_dict(config, ("class_name", "config"), "loss")
    cls = losses._BY_NAME.get(config["class_name"]) if isinstance(config["class_name"], str) else None
    if cls is None or not isinstance(config["config"], dict):
        raise _Invalid(f"unknown loss {short(config['class_name'])}; valid: {', '.join(sorted(losses._BY_NAME))}")
    with _wrapped(f"loss config {short(config['config'])} is invalid"):
        return cls(**config["config"])


def _training_config(model):
    try:
        optimizer = optimizers.serialize(model.optimizer)
    except TypeError:
        optimizer = None
    loss_key = _by_class(losses._BY_NAME, model.loss, getattr(model.loss, "name", None))
    metric_ids = [m if isinstance(m, str) else _metric_config(m) for m in model._metric_ids]
    if optimizer is None or loss_key is None or any(isinstance(m, dict) and m["class_name"] is None
                                                    for m in metric_ids):
        raise _Invalid("only fastnn's built-in optimizers, losses and metrics can be saved with the model; "
                       "use include_optimizer=False to save the architecture and weights only")
    rng_states = {str(i): layer._rng.bit_generator.state for i, layer in enumerate(model.layers)
                  if isinstance(getattr(layer, "_rng", None), np.random.Generator)}
    return {"optimizer": optimizer, "iterations": int(model.optimizer.iterations),
            "loss": {"class_name": loss_key, "config": model.loss.get_config()}, "metrics": metric_ids,
            "random_state": _random.generator().bit_generator.state, "layer_random_states": rng_states}


def _checked_rng_state(state, what):
    """A random-generator state from the file, validated on a scratch generator of an allow-listed kind."""
    kind = state.get("bit_generator") if isinstance(state, dict) else None
    if not isinstance(kind, str) or kind not in _BIT_GENERATORS:
        raise _Invalid(f"{what} is not a saved state of a known generator ({', '.join(_BIT_GENERATORS)})")
    with _wrapped(f"{what} is invalid"):
        _BIT_GENERATORS[kind]().state = state
    return state


def _restore_training(model, training, shapes, tensors):
    keys = ("optimizer", "iterations", "loss", "metrics", "random_state", "layer_random_states")
    training = _expect_dict(training, keys, "training state")
    optimizer = _deserialize_optimizer(training["optimizer"])
    loss = _loss_from_config(training["loss"])
    if not isinstance(training["metrics"], list):
        raise _Invalid("training metrics must be a list")
    metric_ids = [_metric_from_config(m) if isinstance(m, dict) else m for m in training["metrics"]]
    iterations = training["iterations"]
    if not _is_int(iterations) or not 0 <= iterations < 2**63:
        raise _Invalid(f"optimizer iterations {short(iterations)} is not a non-negative integer")
    global_state = _checked_rng_state(training["random_state"], "random_state")
    layer_states = training["layer_random_states"]
    if not isinstance(layer_states, dict):
        raise _Invalid("layer_random_states must be a JSON object")
    for index, state in layer_states.items():
        layer = model.layers[int(index)] if re.fullmatch(r"[0-9]{1,6}", index) and int(index) < len(model) else None
        if not isinstance(getattr(layer, "_rng", None), np.random.Generator):
            raise _Invalid(f"layer_random_states names layer {short(index)}, which has no random generator")
        _checked_rng_state(state, f"random state of layer {index}")
    size = model._arena.params.size if model.built else 0
    variables = {name[len("optimizer/"):]: tensors[name] for name in shapes if name.startswith("optimizer/")}
    for name, value in variables.items():
        if value.shape != (size,):
            raise _Invalid(f"optimizer state {short(name)} has shape {value.shape}; the model's parameter arena "
                           f"needs ({size},)")
    with _wrapped("the training configuration is invalid"):
        model.compile(optimizer, loss, metric_ids)
        optimizer.set_variables(variables)
    optimizer.iterations = iterations
    # Random streams last, once nothing else can fail: a rejected file leaves fastnn's state alone.
    for index, state in layer_states.items():
        model.layers[int(index)]._rng.bit_generator.state = state
    _random.generator().bit_generator.state = global_state


# ---- public API ------------------------------------------------------------------------------------------------
def save_model(model, path, include_optimizer=True):
    """Save a model to one safetensors file (what `Sequential.save` calls).

    Parameters
    ----------
    model : Sequential
    path : str or os.PathLike
        Written atomically: a temporary file in the same folder is fsynced, then renamed over `path`.
    include_optimizer : bool, default True
        Also save the training state of a compiled model (optimizer config, state and iteration count, loss,
        metrics, and fastnn's random streams), so that `load_model` + `fit(initial_epoch=...)` resumes exactly.

    Raises
    ------
    ModelFileError
        When the model holds something that cannot be saved (e.g. a custom loss with include_optimizer=True).
    OSError
        When the file cannot be written.
    """
    with _reported(path):
        tensors = {name: np.ascontiguousarray(model.layers[i].weights[k], np.float32)
                   for name, i, k, _ in _weight_names(model.layers)}
        metadata = {"format": "fastnn", "format_version": str(FORMAT_VERSION), "fastnn_version": __version__}
        with _wrapped("the model's configuration cannot be written as JSON"):
            metadata["architecture"] = json.dumps(_architecture(model), allow_nan=False)
            if include_optimizer and model.optimizer is not None:
                metadata["training"] = json.dumps(_training_config(model), allow_nan=False)
                tensors.update((f"optimizer/{name}", np.ascontiguousarray(value, np.float32).reshape(-1))
                               for name, value in model.optimizer.variables().items())
        payload = safetensors.numpy.save(tensors, metadata=metadata)
    write_atomically(os.fspath(path), payload)


def save_weights(model, path):
    """Save the architecture and weights only (no training state); see `save_model`."""
    save_model(model, path, include_optimizer=False)


def _fastnn_metadata(metadata):
    if metadata.get("format") != "fastnn":
        raise _Invalid("not a fastnn model file: its safetensors metadata lacks format='fastnn'")
    version = metadata.get("format_version")
    if not isinstance(version, str) or not re.fullmatch(r"[0-9]{1,9}", version) or int(version) < 1:
        raise _Invalid(f"format_version {short(version)} is not a positive integer")
    if int(version) > FORMAT_VERSION:
        raise _Invalid(f"written in format version {version} by a newer fastnn; this fastnn ({__version__}) reads "
                       f"format versions up to {FORMAT_VERSION}: upgrade fastnn to load it")
    if "architecture" not in metadata:
        raise _Invalid("the metadata has no architecture")
    return _parse_json(metadata["architecture"], "architecture")


def load_model(path, compile=True):
    """Load a model saved by `Sequential.save`.

    Parameters
    ----------
    path : str or os.PathLike
    compile : bool, default True
        Restore the training state when the file has one: the model comes back compiled with the saved optimizer
        (state and iteration count), loss and metrics, **and fastnn's global random stream** (with any seeded
        Dropout streams) is reset to where it was at save time, so that ``fit(..., initial_epoch=k)`` continues
        bit for bit as the uninterrupted run would have. Call `fastnn.set_seed` afterwards to choose otherwise.
        With False (or a file saved without optimizer) the model comes back uncompiled and no random state changes.

    Returns
    -------
    Sequential

    Raises
    ------
    ModelFileError
        (a ValueError) When the file is not a valid fastnn model file: truncated, not safetensors, from a newer
        format version, with unknown layer types or shapes that contradict the architecture, or corrupted.
    OSError
        When the file cannot be read (missing, permissions).

    Examples
    --------
    >>> model.save("model.safetensors")                       # doctest: +SKIP
    >>> model = fastnn.load_model("model.safetensors")        # doctest: +SKIP
    """
    with _reported(path):
        metadata, shapes, tensors = read_container(os.fspath(path))
        name, input_shape, model_layers = _layers_from_architecture(_fastnn_metadata(metadata))
        expected = _weight_names(model_layers)
        _check_weight_tensors(shapes, expected, "the architecture")
        training = _parse_json(metadata["training"], "training state") if "training" in metadata else None
        stray = [n for n in shapes
                 if not n.startswith("weights/") and not (training is not None and n.startswith("optimizer/"))]
        if stray:
            raise _Invalid(f"unexpected tensors {short(sorted(stray))}")
        with _wrapped("the architecture does not make a valid model"), _random_stream_kept():
            model = Sequential(model_layers, name=name)
            if input_shape is not None:
                model.build(input_shape)
        for tensor_name, i, k, _ in expected:
            model_layers[i].weights[k][...] = tensors[tensor_name]
        if compile and training is not None:
            _restore_training(model, training, shapes, tensors)
    return model


def load_weights(model, path):
    """Load weights saved by `save_weights` or `save` into `model`, layer by layer (what `Sequential.load_weights`
    calls). Every weight of the file must match the model's in layer position, name and shape; nothing changes
    unless all do. An unbuilt model is first built for the input shape recorded in the file."""
    with _reported(path):
        metadata, shapes, tensors = read_container(os.fspath(path))
        arch = _fastnn_metadata(metadata)
        if not model.built:
            config = arch.get("config") if isinstance(arch, dict) else None
            input_shape = _check_input_shape(config.get("input_shape") if isinstance(config, dict) else None)
            if input_shape is None:
                raise _Invalid("the model is not built and the file records no input shape to build it with")
            with _wrapped("cannot build the model for the file's input shape"), _random_stream_kept():
                model.build(input_shape)
        expected = _weight_names(model.layers)
        _check_weight_tensors(shapes, expected, "the model")
        for tensor_name, i, k, _ in expected:
            model.layers[i].weights[k][...] = tensors[tensor_name]
