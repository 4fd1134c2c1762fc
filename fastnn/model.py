"""`Sequential`: a stack of layers, its parameters, and the Keras/PyTorch-style API around them."""
from collections import OrderedDict

import numpy as np

from . import _validation, training
from ._arena import Arena
from .layers.base import InputLayer, Layer, _default_name


class Sequential(training.TrainingMixin):
    """A linear stack of layers.

    Parameters
    ----------
    layers : list of Layer, optional
        The layers in order; may start with ``fastnn.layers.Input(shape)`` to fix the per-sample input shape
        (otherwise the model is built on first use, from the data).
    name : str, optional

    Examples
    --------
    >>> import numpy as np, fastnn
    >>> from fastnn import layers
    >>> model = fastnn.Sequential([layers.Input((4,)), layers.Dense(8, activation="relu"),
    ...                            layers.Dense(3, activation="softmax")])
    >>> model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    >>> x = np.random.rand(64, 4).astype(np.float32); y = np.random.randint(0, 3, 64)
    >>> history = model.fit(x, y, epochs=2, verbose=0)
    >>> model.predict(x[:2]).shape
    (2, 3)
    """

    def __init__(self, layers=None, name=None):
        self.name = name or _default_name("Sequential")
        self._layers = []
        self._input_shape = None
        self._arena = None
        self.training = False
        training.TrainingMixin.__init__(self)
        for layer in layers or []:
            self.add(layer)

    # ---- structure -------------------------------------------------------------------------------------
    def add(self, layer):
        """Append a layer (or, first of all, an `Input`)."""
        if isinstance(layer, InputLayer):
            if self._layers or self._input_shape is not None:
                raise ValueError("an Input can only be the first entry of a Sequential model")
            self._input_shape = layer.shape
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a fastnn layer, got {type(layer).__name__}")
        if any(existing is layer for existing in self._layers):
            raise ValueError(f"layer {layer.name!r} is already in this model")
        if any(existing.name == layer.name for existing in self._layers):
            raise ValueError(f"a layer named {layer.name!r} is already in this model; layer names must be unique")
        if not self._layers and self._input_shape is None and layer._declared_input_shape is not None:
            self._input_shape = layer._declared_input_shape
        self._layers.append(layer)
        if self._arena is not None:
            self._build_layers(self._input_shape)
        elif self._input_shape is not None:
            self._build_layers(self._input_shape)
        self._on_structure_change()

    @property
    def layers(self):
        return list(self._layers)

    def __getitem__(self, index):
        return self._layers[index]

    def __len__(self):
        return len(self._layers)

    def __iter__(self):
        return iter(self._layers)

    def get_layer(self, name=None, index=None):
        """A layer by name or index."""
        if index is not None:
            return self._layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r}; layers: {', '.join(l.name for l in self._layers)}")

    @property
    def built(self):
        return self._arena is not None

    @property
    def input_shape(self):
        return None if self._input_shape is None else (None,) + tuple(self._input_shape)

    @property
    def output_shape(self):
        if not self.built:
            return None
        return (None,) + tuple(self._layers[-1].output_shape) if self._layers else self.input_shape

    def build(self, input_shape=None):
        """Build every layer for a per-sample input shape (a leading None batch axis is allowed)."""
        if input_shape is None:
            input_shape = self._input_shape
        if input_shape is None:
            raise ValueError("build() needs an input shape: give one, or start the model with layers.Input(shape)")
        input_shape = tuple(input_shape)
        if input_shape and input_shape[0] is None:
            input_shape = input_shape[1:]
        self._build_layers(input_shape)

    def _build_layers(self, input_shape):
        shape = tuple(int(d) for d in input_shape)
        if not shape or any(d <= 0 for d in shape):
            raise ValueError(f"input shape must be a non-empty tuple of positive ints, got {input_shape!r}")
        for layer in self._layers:
            if not layer.built or layer.input_shape != shape:
                if layer.built:
                    raise ValueError(f"layer {layer.name!r} was built for input shape {layer.input_shape}, "
                                     f"but receives {shape}")
                layer.build(shape)
            shape = layer.output_shape
        self._input_shape = tuple(int(d) for d in input_shape)
        self._arena = Arena(self._layers)

    def _ensure_built(self, sample_shape):
        if self._arena is None:
            self._build_layers(sample_shape)

    # ---- parameters --------------------------------------------------------------------------------------
    def count_params(self):
        """Number of parameters (trainable and not)."""
        self._require_built("count_params")
        return sum(layer.count_params() for layer in self._layers)

    def get_weights(self):
        """Copies of all weights, layer by layer, each in Keras order (e.g. Dense: kernel, bias)."""
        self._require_built("get_weights")
        return [w.copy() for layer in self._layers for w in layer.weights]

    def set_weights(self, weights):
        """Set all weights from a list like the one `get_weights()` returns (shapes must match exactly)."""
        self._require_built("set_weights")
        targets = [w for layer in self._layers for w in layer.weights]
        weights = list(weights)
        if len(weights) != len(targets):
            raise ValueError(f"set_weights expects {len(targets)} arrays (shapes {[t.shape for t in targets]}), "
                             f"got {len(weights)}")
        checked = []
        for i, (target, value) in enumerate(zip(targets, weights)):
            arr = _validation.as_float32_array(value, f"weights[{i}]")
            if arr.shape != target.shape:
                raise ValueError(f"weights[{i}] has shape {arr.shape}, expected {target.shape}")
            checked.append(arr)
        for target, arr in zip(targets, checked):
            target[...] = arr

    def parameters(self):
        """The trainable weight arrays themselves (live views: changing them changes the model)."""
        self._require_built("parameters")
        return [w for layer in self._layers for w, spec in zip(layer.weights, layer.param_specs()) if spec.trainable]

    def state_dict(self):
        """An ordered mapping "<layer index>.<weight name>" (e.g. "0.kernel") -> copy of the array, keyed by
        position as PyTorch's Sequential does, so it loads into any model of the same architecture."""
        self._require_built("state_dict")
        return OrderedDict((f"{i}.{spec.name}", w.copy()) for i, layer in enumerate(self._layers)
                           for w, spec in zip(layer.weights, layer.param_specs()))

    def load_state_dict(self, state):
        """Load weights from a mapping like the one `state_dict()` returns (every key must match)."""
        own = self.state_dict()
        missing, unexpected = set(own) - set(state), set(state) - set(own)
        if missing or unexpected:
            raise ValueError(f"state dict keys do not match: missing {sorted(missing)}, unexpected {sorted(unexpected)}")
        self.set_weights([state[key] for key in own])

    def reset_states(self):
        """Zero the carried states of every stateful recurrent layer (Keras' `model.reset_states()`)."""
        for layer in self._layers:
            if getattr(layer, "stateful", False):
                layer.reset_states()

    def train(self, mode=True):
        """PyTorch habit: calls of the model (`model(x)`) run in training mode (dropout active)."""
        self.training = bool(mode)
        return self

    def eval(self):
        """PyTorch habit: calls of the model (`model(x)`) run in inference mode."""
        return self.train(False)

    def _require_built(self, what):
        if self._arena is None:
            raise ValueError(f"{what}() needs a built model: start it with layers.Input(shape), call "
                             f"build(input_shape), or call it on data first")

    # ---- files -------------------------------------------------------------------------------------------------
    def save(self, path, include_optimizer=True):
        """Save the architecture, weights and (by default) training state to one safetensors file.

        Parameters
        ----------
        path : str or os.PathLike
            Written atomically (temporary file in the same folder, fsync, rename), so an interrupted save leaves
            any previous file intact. Load it with `fastnn.load_model`.
        include_optimizer : bool, default True
            Also save the optimizer (config, state, iteration count), loss, metrics and fastnn's random streams,
            so training resumes exactly where it stopped (``fit(..., initial_epoch=...)``).

        Examples
        --------
        >>> model.save("model.safetensors")                 # doctest: +SKIP
        >>> same = fastnn.load_model("model.safetensors")   # doctest: +SKIP
        """
        from .files import save_model
        save_model(self, path, include_optimizer)

    def save_weights(self, path):
        """Save the architecture and weights (no training state) to a safetensors file; see `load_weights`."""
        from .files import save_weights
        save_weights(self, path)

    def load_weights(self, path):
        """Load weights from a file written by `save_weights` or `save`; every weight must match this model's
        layer position, name and shape (an unbuilt model is built for the file's input shape first)."""
        from .files import load_weights
        load_weights(self, path)

    # ---- description --------------------------------------------------------------------------------------
    def summary(self, print_fn=print):
        """Print the Keras-style table of layers, output shapes and parameter counts."""
        rows = [("Layer (type)", "Output Shape", "Param #")]
        for layer in self._layers:
            shape = str((None,) + layer.output_shape) if layer.built else "? (not built)"
            rows.append((f"{layer.name} ({type(layer).__name__})", shape,
                         f"{layer.count_params():,}" if self.built else "?"))
        widths = [max(len(r[i]) for r in rows) + 2 for i in range(3)]
        line = "-" * sum(widths)
        out = [f'Model: "{self.name}"', line, "".join(c.ljust(w) for c, w in zip(rows[0], widths)), "=" * len(line)]
        out += ["".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows[1:]]
        out.append("=" * len(line))
        if self.built:
            trainable = sum(int(np.prod(w.shape)) for l in self._layers for w, s in zip(l.weights, l.param_specs())
                            if s.trainable and l.trainable)
            total = self.count_params()
            out += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                    f"Non-trainable params: {total - trainable:,}"]
        else:
            out.append("The model is not built yet: parameter counts appear once it knows its input shape "
                       "(layers.Input, build(), or a first call on data).")
        print_fn("\n".join(out))

    def __repr__(self):
        inner = ", ".join(repr(layer) for layer in self._layers)
        shape = f", input_shape={self._input_shape}" if self._input_shape is not None else ""
        return f"Sequential(name={self.name!r}{shape}, layers=[{inner}])"
