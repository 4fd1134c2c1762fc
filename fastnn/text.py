"""Character-level text: a vocabulary, windowed training data, and sampling from a recurrent model.

    >>> import fastnn
    >>> from fastnn import layers, text
    >>> corpus = "to be or not to be"
    >>> vocab = text.CharVocabulary(corpus)
    >>> x, y = text.sequence_dataset(vocab.encode(corpus), window=8)
    >>> x.shape, y.shape
    ((2, 8), (2, 8))
    >>> fastnn.set_seed(0)
    >>> model = fastnn.Sequential([layers.Input((8,)), layers.Embedding(vocab.size, 8),
    ...                            layers.LSTM(16, return_sequences=True),
    ...                            layers.Dense(vocab.size, activation="softmax")])
    >>> model.compile("adam", "sparse_categorical_crossentropy")
    >>> len(text.generate(model, vocab, "to be", 20, temperature=0.8, seed=1))
    20
"""
import json

import numpy as np

from . import _random, _validation


class CharVocabulary:
    """The characters of a text, sorted by code point; character i has id i.

    Parameters
    ----------
    text : str
        The corpus (or just its characters); at least one character.

    Examples
    --------
    >>> vocab = CharVocabulary("hello")
    >>> vocab.chars, vocab.size
    ('ehlo', 4)
    >>> vocab.encode("hole")
    array([1, 3, 2, 0])
    >>> vocab.decode([1, 0, 2, 2, 3])
    'hello'
    """

    def __init__(self, text):
        if not isinstance(text, str):
            raise TypeError(f"CharVocabulary needs a str, got {type(text).__name__}")
        if not text:
            raise ValueError("CharVocabulary needs a non-empty text to take its characters from")
        self.chars = "".join(sorted(set(text)))
        self._codes = _code_points(self.chars)

    @property
    def size(self):
        """The number of characters (the number of classes of a model over this vocabulary)."""
        return len(self.chars)

    def __len__(self):
        return len(self.chars)

    def __contains__(self, char):
        return isinstance(char, str) and len(char) == 1 and char in self.chars

    def __eq__(self, other):
        return isinstance(other, CharVocabulary) and other.chars == self.chars

    def __hash__(self):
        return hash(self.chars)

    def __repr__(self):
        shown = self.chars if len(self.chars) <= 40 else self.chars[:37] + "..."
        return f"CharVocabulary(size={self.size}, chars={shown!r})"

    def encode(self, text):
        """The ids of the characters of `text`: int64 array of shape (len(text),).

        Raises ValueError naming the characters that are not in the vocabulary and where they first occur."""
        return self._encode(text, "text")

    def _encode(self, text, name):
        if not isinstance(text, str):
            raise TypeError(f"{name} must be a str, got {type(text).__name__}")
        codes = _code_points(text)
        ids = np.minimum(np.searchsorted(self._codes, codes), self.size - 1)
        unknown = self._codes[ids] != codes
        if unknown.any():
            positions = np.flatnonzero(unknown)
            firsts = {}
            for pos in positions:
                firsts.setdefault(text[pos], int(pos))
            listed = ", ".join(f"{ch!r} (first at position {pos})" for ch, pos in list(firsts.items())[:10])
            more = f" and {len(firsts) - 10} more" if len(firsts) > 10 else ""
            raise ValueError(f"{name} has {len(positions)} character(s) not in the vocabulary of {self.size}: "
                             f"{listed}{more}")
        return ids

    def decode(self, ids):
        """The text of a sequence of ids (shape (n,), integers in [0, size)).

        Raises ValueError naming the first id out of range and its position."""
        arr = np.asarray(ids)
        if arr.ndim > 1:
            raise ValueError(f"decode needs a 1-D sequence of ids, got shape {arr.shape}")
        arr = arr.reshape(-1)
        if arr.dtype.kind == "f" and arr.size and (~np.isfinite(arr) | (arr != np.round(arr))).any():
            raise ValueError("decode needs whole-number ids, got non-integral or NaN values")
        if arr.dtype.kind not in "iuf" and arr.size:
            raise TypeError(f"decode needs integer ids, got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        bad = np.flatnonzero((arr < 0) | (arr >= self.size))
        if bad.size:
            raise ValueError(f"id {arr[bad[0]]} at position {bad[0]} is out of range: the vocabulary has "
                             f"{self.size} characters, so ids must be in [0, {self.size - 1}]")
        return self._codes[arr].astype("<u4").tobytes().decode("utf-32-le", "surrogatepass")

    def get_config(self):
        """A JSON-able dict that `from_config` turns back into this vocabulary."""
        return {"chars": self.chars}

    @classmethod
    def from_config(cls, config):
        chars = config.get("chars") if isinstance(config, dict) else None
        if not isinstance(chars, str):
            raise ValueError(f"a CharVocabulary config needs 'chars' (a str), got {config!r}")
        vocab = cls(chars)
        if vocab.chars != chars:  # ids would silently differ from the ones the config was made with
            raise ValueError("a CharVocabulary config's 'chars' must be unique characters sorted by code point")
        return vocab

    def save(self, path):
        """Write the vocabulary as JSON (e.g. next to the model file)."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.get_config(), f, ensure_ascii=True)

    @classmethod
    def load(cls, path):
        """A vocabulary written by `save`."""
        with open(path, encoding="utf-8") as f:
            return cls.from_config(json.load(f))


def _code_points(text):
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32).astype(np.int64)


def sequence_dataset(ids, window, stride=None, targets="sequence"):
    """Windows of an encoded text and their next-character targets.

    Window i is ``ids[i*stride : i*stride + window]``; its targets are the characters that follow each position
    (``targets="sequence"``: ``ids[i*stride + 1 : i*stride + window + 1]``, for per-timestep training), or only
    the character after the window (``targets="last"``).

    Parameters
    ----------
    ids : array_like of int, shape (n,)
        An encoded text (`CharVocabulary.encode`), at least window + 1 long.
    window : int
        Characters per input sequence.
    stride : int, optional
        Start of one window to the start of the next; default `window` (windows do not overlap).
    targets : {"sequence", "last"}

    Returns
    -------
    x : ndarray of int64, shape (m, window)
    y : ndarray of int64, shape (m, window) for "sequence", (m,) for "last"
        m = (n - window - 1) // stride + 1.

    Examples
    --------
    >>> x, y = sequence_dataset([0, 1, 2, 3, 4, 5], window=2)
    >>> x.tolist(), y.tolist()
    ([[0, 1], [2, 3]], [[1, 2], [3, 4]])
    >>> sequence_dataset([0, 1, 2, 3, 4, 5], window=3, stride=1, targets="last")[1].tolist()
    [3, 4, 5]
    """
    window = _validation.as_positive_int(window, "window")
    stride = window if stride is None else _validation.as_positive_int(stride, "stride")
    if targets not in ("sequence", "last"):
        raise ValueError(f"targets must be 'sequence' or 'last', got {targets!r}")
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"ids must be a 1-D sequence of character ids, got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"ids must be integers (from CharVocabulary.encode), got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"ids must be non-negative, got {arr.min()} at position {int(np.argmin(arr))}")
    if len(arr) < window + 1:
        raise ValueError(f"ids has {len(arr)} characters; a window of {window} and its next character need at "
                         f"least {window + 1}")
    spans = np.lib.stride_tricks.sliding_window_view(arr.astype(np.int64, copy=False), window + 1)[::stride]
    x = np.ascontiguousarray(spans[:, :-1])
    y = np.ascontiguousarray(spans[:, 1:] if targets == "sequence" else spans[:, -1])
    return x, y


def generate(model, vocab, seed_text, length, temperature=1.0, seed=None):
    """Sample `length` characters that follow `seed_text`, one at a time, from a character model.

    The seed text goes through the model once, with its recurrent layers made stateful for the call (batch 1,
    starting from zero states); then each sampled character goes in alone (T=1), continuing from the states
    the previous step left, so a step costs one time step of the network rather than a whole window. The
    layers' stateful flags and states are restored afterwards. Each character is drawn from
    softmax(log p / temperature) in float64, where p is the model's next-character distribution.

    Parameters
    ----------
    model : Sequential
        Built, with a recurrent layer (LSTM, GRU, SimpleRNN); input (T,) character ids (e.g. an Embedding
        first) or (T, vocab.size) one-hot rows; output (T, vocab.size) or (vocab.size,), a softmax (or logits
        when compiled with a ``from_logits=True`` cross-entropy). Any T: the model runs on other lengths here.
    vocab : CharVocabulary
    seed_text : str
        Non-empty, characters of the vocabulary only.
    length : int
        Characters to generate (>= 0).
    temperature : float, default 1.0
        > 0; below 1 sharpens the distribution (more likely characters), above 1 flattens it.
    seed : int, optional
        Seeds this call's own generator: the same seed gives the same text. None draws from fastnn's global
        generator (`fastnn.set_seed`).

    Returns
    -------
    str
        The `length` generated characters (without the seed text).
    """
    if not isinstance(vocab, CharVocabulary):
        raise TypeError(f"vocab must be a CharVocabulary, got {type(vocab).__name__}")
    temperature = _validation.as_finite_float(temperature, "temperature", positive=True)
    length = _validation.as_positive_int(length, "length", minimum=0)
    if isinstance(seed_text, str) and not seed_text:
        raise ValueError("seed_text is empty; generate needs at least one character to start from")
    prompt = vocab._encode(seed_text, "seed_text")
    stream = _Stream(model, vocab)
    rng = _random.generator(seed)
    sampled = np.empty(length, np.int64)
    with stream:
        scores = stream.feed(prompt)
        for i in range(length):
            sampled[i] = _sample(scores, stream.logits, temperature, rng)
            if i + 1 < length:
                scores = stream.feed(sampled[i:i + 1])
    return vocab.decode(sampled)


def _sample(scores, logits, temperature, rng):
    """An id drawn from softmax(log p / temperature) (scores p; or softmax(z / temperature) for logits z)."""
    with np.errstate(divide="ignore"):
        z = (scores if logits else np.log(scores)) / temperature
    p = np.exp(z - z.max())
    cdf = np.cumsum(p)
    return min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), len(p) - 1)


class _Stream:
    """Runs a model over one sequence (batch 1) in pieces, its recurrent layers carrying their states from piece
    to piece; while open, the layers are stateful, and closing restores their flags and states."""

    def __init__(self, model, vocab):
        layers = getattr(model, "layers", None)
        if layers is None or not hasattr(model, "_forward"):
            raise TypeError(f"generate needs a fastnn Sequential model, got {type(model).__name__}")
        if not layers:
            raise ValueError("the model has no layers")
        if not model.built:
            if model.input_shape is None:
                raise ValueError("the model is not built: give it an Input((T,)) first layer or call build()")
            model.build()
        self.recurrent = [layer for layer in layers if hasattr(layer, "reset_states") and hasattr(layer, "stateful")]
        if not self.recurrent:
            raise ValueError(f"generate needs a model with a recurrent layer (LSTM, GRU or SimpleRNN) whose state "
                             f"carries the text so far; this model's layers are "
                             f"{', '.join(type(layer).__name__ for layer in layers)}")
        self.model, self.vocab = model, vocab
        self.one_hot = _input_kind(model, vocab)
        self.logits = _output_kind(model, vocab)

    def __enter__(self):
        self._saved = [(layer.stateful, _copy_states(layer.states)) for layer in self.recurrent]
        for layer in self.recurrent:
            layer.stateful = True
            layer.reset_states()
        return self

    def __exit__(self, *exc):
        for layer, (stateful, states) in zip(self.recurrent, self._saved):
            layer.stateful = True
            # zero (or no) states restore as fresh zeros: the next batch may then have any size, as before
            if states is None or not any(s.any() for s in states):
                layer.reset_states()
            else:
                layer.reset_states(states)
            layer.stateful = stateful

    def feed(self, ids):
        """The model's output (float64, shape (vocab.size,)) after the sequence so far and then `ids`."""
        if self.one_hot:
            x = np.zeros((1, len(ids), self.vocab.size), np.float32)
            x[0, np.arange(len(ids)), ids] = 1.0
        else:
            x = ids.astype(np.float32).reshape(1, -1)
        out = self.model._forward(x, False, False)
        scores = (out[0, -1] if out.ndim == 3 else out[0]).astype(np.float64)
        if not np.isfinite(scores).all():
            raise FloatingPointError("the model's output holds NaN or Inf; cannot sample from it")
        return scores


def _copy_states(states):
    return None if states is None else [np.array(s, copy=True) for s in states]


def _input_kind(model, vocab):
    """True when the model takes one-hot rows (T, vocab.size), False for ids (T,)."""
    shape = tuple(model.input_shape[1:])
    if len(shape) == 1:
        return False
    if len(shape) == 2 and shape[1] == vocab.size:
        return True
    raise ValueError(f"generate needs a model whose input is character ids, shape (None, T), or one-hot rows, "
                     f"shape (None, T, {vocab.size}); this model's input has shape {model.input_shape}")


def _output_kind(model, vocab):
    """True when the model's output holds logits, False for probabilities; raises when it is neither a
    distribution over the vocabulary nor logits of one."""
    shape = tuple(model.output_shape)
    if len(shape) not in (2, 3) or shape[-1] != vocab.size:
        raise ValueError(f"generate needs a model whose output is a distribution over the {vocab.size} characters "
                         f"of the vocabulary, shape (None, T, {vocab.size}) or (None, {vocab.size}); this model's "
                         f"output has shape {model.output_shape}")
    last = model.layers[-1]
    if getattr(last, "activation", None) == "softmax":
        return False
    loss = getattr(model, "loss", None)
    if loss is not None and loss.from_logits and loss.fused_activation == "softmax":
        return True
    raise ValueError(f"generate needs the model's output to be a distribution over the vocabulary: end it with a "
                     f"softmax (e.g. Dense({vocab.size}, activation='softmax')), or compile it with a "
                     f"from_logits=True categorical cross-entropy if it outputs logits; its last layer "
                     f"{last.name!r} has activation {getattr(last, 'activation', None)!r}")


__all__ = ["CharVocabulary", "sequence_dataset", "generate"]
