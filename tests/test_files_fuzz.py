"""Fuzzing model files: thousands of truncated, byte-flipped and header-mutated versions of a valid file. Each
one either loads as a model of the same architecture or is refused with `ModelFileError`: never another
exception, never a crash."""
import json
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastnn
from fastnn import layers as L
from fastnn.files import ModelFileError

FUZZ = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_DOCUMENTS = ("header", "architecture", "training")  # the header, and the JSON held in two metadata strings
_TARGETS, _BOOLEANS = st.sampled_from(_DOCUMENTS), st.booleans()
_TAILS = st.binary(max_size=16)
_JSON_TEXT = st.lists(st.sampled_from(list('{}[]",:0123456789-.eE +truefalsnNIiy\\/u') + ["\xff", "\u00e9", "F32"]),
                      max_size=8)
_ONE_IN_TEN = st.integers(0, 9).map(lambda k: k == 0)
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12) | st.sampled_from(["F32", "F64", "Dense", "PCG64", "sgd", "relu", "1", "2"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


def _paths(value, prefix=()):
    """Every position (a tuple of keys/indexes) inside nested dicts and lists."""
    yield prefix
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield from _paths(child, prefix + (key,))


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """A saved, trained model with every kind of content (weights, optimizer state, a schedule, metrics, random
    states), its bytes and parsed header, and what a successful load must give back."""
    fastnn.set_seed(0)
    model = fastnn.Sequential([L.Input((2, 3)), L.Flatten(), L.Dense(4, activation="relu"),
                               L.Dropout(0.2, seed=1), L.Reshape((2, 2)), L.Flatten(),
                               L.Dense(3, activation="softmax")])
    lr = fastnn.schedules.ExponentialDecay(0.1, 10, 0.5)
    model.compile(fastnn.optimizers.SGD(lr, momentum=0.9), "sparse_categorical_crossentropy", ["accuracy"])
    model.train_on_batch(np.ones((2, 2, 3), np.float32), [0, 2])
    path = tmp_path_factory.mktemp("fuzz") / "model.safetensors"
    model.save(path)
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    texts = {"header": raw[8:8 + n].decode(), **{k: header["__metadata__"][k] for k in _DOCUMENTS[1:]}}
    # Strategies are built once: hypothesis re-analyses a strategy object each time a new one is drawn from.
    anywhere, in_header = st.integers(0, len(raw) - 1), st.integers(0, 8 + n - 1)
    flip = st.tuples(st.one_of(in_header, anywhere), st.sampled_from([1 << bit for bit in range(8)]), st.just(0))
    overwrite = st.tuples(in_header, st.just(0), st.sampled_from(b'0123456789{}[]",:.-eE aflnrstu'))
    paths = {k: list(_paths(json.loads(text))) for k, text in texts.items()}
    return SimpleNamespace(
        raw=raw, n=n, data=raw[8 + n:], path=path, texts=texts,
        types=[type(l) for l in model.layers], shapes=[w.shape for w in model.get_weights()],
        cuts=st.one_of(st.integers(0, len(raw)), st.integers(8 + n, len(raw))),  # in the header or the data
        edits=st.lists(st.one_of(flip, overwrite), min_size=1, max_size=8),
        splice_starts=st.integers(0, n), splice_lengths=st.integers(0, 12),
        paths={k: st.sampled_from(v) for k, v in paths.items()})


def _check_loads_or_refuses(original, data):
    path = original.path
    path.unlink()  # a new file, not a truncated one: ext4 flushes files truncated and rewritten (auto_da_alloc)
    path.write_bytes(data)
    try:
        model = fastnn.load_model(path)
    except ModelFileError as exc:
        assert str(path) in str(exc)
        return
    assert [type(l) for l in model.layers] == original.types
    assert [w.shape for w in model.get_weights()] == original.shapes


@FUZZ
@given(st.data())
def test_truncated_or_extended(original, data):
    cut, tail = data.draw(original.cuts), data.draw(_TAILS)
    _check_loads_or_refuses(original, original.raw[:cut] + tail)


@FUZZ
@given(st.data())
def test_byte_flips(original, data):
    """Flip bits anywhere, or overwrite header bytes with JSON-ish characters (random bytes in a JSON header
    mostly stop at the UTF-8 check; printable ones get further)."""
    raw = bytearray(original.raw)
    for index, mask, value in data.draw(original.edits):
        raw[index] = raw[index] ^ mask if mask else value
    _check_loads_or_refuses(original, bytes(raw))


@FUZZ
@given(st.data())
def test_header_text_edits(original, data):
    """Splice JSON-like text into the header; the length prefix is mostly fixed up, so that the edit reaches the
    parser and everything behind it."""
    header = original.raw[8:8 + original.n]
    start = data.draw(original.splice_starts)
    stop = min(original.n, start + data.draw(original.splice_lengths))
    header = header[:start] + "".join(data.draw(_JSON_TEXT)).encode() + header[stop:]
    length = original.n if data.draw(_ONE_IN_TEN) else len(header)
    _check_loads_or_refuses(original, length.to_bytes(8, "little") + header + original.data)


@FUZZ
@given(st.data())
def test_structured_header_mutations(original, data):
    """Replace one node anywhere in the header, or in the architecture or training JSON held in the metadata,
    by a random JSON value, or delete a key."""
    target = data.draw(_TARGETS)
    docs = {name: json.loads(text) for name, text in original.texts.items()}
    path = data.draw(original.paths[target])
    if not path:
        docs[target] = data.draw(_JSON_VALUES)
    else:
        parent = docs[target]
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and data.draw(_BOOLEANS):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(_JSON_VALUES)
    header = docs["header"]
    if target != "header":
        header["__metadata__"][target] = json.dumps(docs[target])
    text = json.dumps(header).encode()
    _check_loads_or_refuses(original, len(text).to_bytes(8, "little") + text + original.data)
