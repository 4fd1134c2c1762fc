"""Weight initializers, by Keras name or as objects.

Each initializer is called as ``init(shape, fan_in, fan_out)`` and returns a float32 array. With ``seed=None``
it draws from fastnn's global stream (see `fastnn.set_seed`); an explicit seed gives a private stream.
"""
import numpy as np

from . import _random


class Initializer:
    """Base class: subclasses implement `__call__(shape, fan_in, fan_out)` and `get_config()`."""

    def __call__(self, shape, fan_in, fan_out):  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self):
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Zeros(Initializer):
    def __call__(self, shape, fan_in, fan_out):
        return np.zeros(shape, np.float32)


class Ones(Initializer):
    def __call__(self, shape, fan_in, fan_out):
        return np.ones(shape, np.float32)


class _Seeded(Initializer):
    def __init__(self, seed=None):
        self.seed = seed

    def get_config(self):
        return {"seed": self.seed}

    def _rng(self):
        return _random.generator(self.seed)


class GlorotUniform(_Seeded):
    """Uniform in [-l, l] with l = sqrt(6 / (fan_in + fan_out)) (Keras' default for kernels)."""

    def __call__(self, shape, fan_in, fan_out):
        limit = np.sqrt(6.0 / max(1, fan_in + fan_out))
        return self._rng().uniform(-limit, limit, size=shape).astype(np.float32)


class GlorotNormal(_Seeded):
    """Truncated normal (within 2 standard deviations) with stddev sqrt(2 / (fan_in + fan_out))."""

    def __call__(self, shape, fan_in, fan_out):
        return _truncated_normal(self._rng(), shape, np.sqrt(2.0 / max(1, fan_in + fan_out)))


class HeNormal(_Seeded):
    """Truncated normal (within 2 standard deviations) with stddev sqrt(2 / fan_in), as Keras."""

    def __call__(self, shape, fan_in, fan_out):
        return _truncated_normal(self._rng(), shape, np.sqrt(2.0 / max(1, fan_in)))


class HeUniform(_Seeded):
    def __call__(self, shape, fan_in, fan_out):
        limit = np.sqrt(6.0 / max(1, fan_in))
        return self._rng().uniform(-limit, limit, size=shape).astype(np.float32)


class RandomNormal(_Seeded):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = float(mean), float(stddev)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}

    def __call__(self, shape, fan_in, fan_out):
        return self._rng().normal(self.mean, self.stddev, size=shape).astype(np.float32)


class RandomUniform(_Seeded):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = float(minval), float(maxval)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}

    def __call__(self, shape, fan_in, fan_out):
        return self._rng().uniform(self.minval, self.maxval, size=shape).astype(np.float32)


class Orthogonal(_Seeded):
    """A (semi-)orthogonal matrix times `gain`, as Keras: the shape is seen as (prod(shape[:-1]), shape[-1]);
    with more columns than rows the rows are orthonormal, else the columns (Keras' default for recurrent
    kernels). From the QR decomposition of a standard normal matrix, signs fixed by R's diagonal."""

    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = float(gain)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}

    def __call__(self, shape, fan_in, fan_out):
        shape = tuple(int(d) for d in shape)
        if len(shape) < 2:
            raise ValueError(f"the orthogonal initializer needs a shape of rank >= 2, got {shape}")
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        a = self._rng().standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).astype(np.float32)


def _truncated_normal(rng, shape, stddev):
    # The normal cut at two standard deviations has a stddev 0.8796 times the untruncated one; rescale so the
    # result has the requested stddev (Keras does the same).
    scale = stddev / 0.87962566103423978
    out = rng.normal(0.0, scale, size=shape)
    bad = np.abs(out) > 2 * scale
    while bad.any():
        out[bad] = rng.normal(0.0, scale, size=int(bad.sum()))
        bad = np.abs(out) > 2 * scale
    return out.astype(np.float32)


_BY_NAME = {
    "zeros": Zeros,
    "ones": Ones,
    "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal,
    "he_normal": HeNormal,
    "he_uniform": HeUniform,
    "random_normal": RandomNormal,
    "random_uniform": RandomUniform,
    "orthogonal": Orthogonal,
    "uniform": RandomUniform,  # Keras' alias (Embedding's default): uniform in [-0.05, 0.05]
}


def get(identifier):
    """An initializer from a Keras name, an Initializer, or a callable ``f(shape, fan_in, fan_out)``."""
    if isinstance(identifier, Initializer) or (callable(identifier) and not isinstance(identifier, str)):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(f"unknown initializer {identifier!r}; valid names: {', '.join(sorted(_BY_NAME))}")


def serialize(init):
    for name, cls in _BY_NAME.items():
        if type(init) is cls:
            return {"class_name": name, "config": init.get_config()}
    raise ValueError(f"initializer {init!r} cannot be serialized (only fastnn's built-in initializers can)")


def deserialize_in(config, keys=("kernel_initializer", "bias_initializer")):
    """A copy of a layer config whose serialized initializers (dicts) under `keys` are built again."""
    config = dict(config)
    for key in keys:
        if isinstance(config.get(key), dict):
            config[key] = deserialize(config[key])
    return config


def deserialize(config):
    name = config.get("class_name") if isinstance(config, dict) else config
    if name not in _BY_NAME:
        raise ValueError(f"unknown initializer {name!r}; valid names: {', '.join(sorted(_BY_NAME))}")
    return _BY_NAME[name](**(config.get("config") or {})) if isinstance(config, dict) else _BY_NAME[name]()
