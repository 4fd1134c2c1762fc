"""Bad model files: every one is refused with a `ModelFileError` that names the file and says what is wrong;
nothing named in a file is ever imported, and a refused file changes nothing (not even the random streams)."""
import json
import sys

import numpy as np
import pytest
import safetensors.numpy

import fastnn
from fastnn import _random, layers as L
from fastnn.files import FORMAT_VERSION, ModelFileError


@pytest.fixture
def saved(tmp_path):
    """A valid file of a trained model with dropout (so it holds weights, optimizer state, random states)."""
    fastnn.set_seed(0)
    model = fastnn.Sequential([L.Input((4,)), L.Dense(5, activation="relu"), L.Dropout(0.2, seed=1),
                               L.Dense(3, activation="softmax")])
    model.compile(fastnn.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy", ["accuracy"])
    model.train_on_batch(np.ones((2, 4), np.float32), [0, 1])
    path = tmp_path / "model.safetensors"
    model.save(path)
    return path


def _split(path):
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def _write_raw(path, header, data=b""):
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)


def _refused(path, match):
    state = _random.generator().bit_generator.state
    modules = set(sys.modules)
    with pytest.raises(ModelFileError, match=match) as info:
        fastnn.load_model(path)
    assert info.value.path == str(path) and str(path) in str(info.value)
    assert isinstance(info.value, ValueError)
    assert _random.generator().bit_generator.state == state
    assert set(sys.modules) == modules  # nothing imported on the file's say-so


# ---- the container ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cut", [0, 3, 8, 9, 100, -1, -40])
def test_truncated_files(saved, cut):
    raw = saved.read_bytes()
    saved.write_bytes(raw[:cut if cut >= 0 else len(raw) + cut])
    _refused(saved, r"too short|truncated|not valid UTF-8 JSON|tensors cover|runs past")


def test_not_safetensors(saved):
    saved.write_text("this is a CSV file\n1,2,3\n" * 20)
    _refused(saved, "header length .* (exceeds|runs past)")
    plain = saved.with_name("plain.safetensors")
    safetensors.numpy.save_file({"x": np.zeros(3, np.float32)}, plain)
    _refused(plain, "not a fastnn model file")


@pytest.mark.parametrize("length,match", [(2**64 - 1, "exceeds"), (2**24 + 1, "exceeds"), (10**6, "runs past")])
def test_hostile_header_length(saved, length, match):
    raw = saved.read_bytes()
    saved.write_bytes(length.to_bytes(8, "little") + raw[8:])
    _refused(saved, match)


@pytest.mark.parametrize("text,match", [
    (b"{not json", "not valid UTF-8 JSON"),
    (b'{"a\xff\xfe": 1}', "not valid UTF-8 JSON"),
    (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
    (b"[" * 40 + b"]" * 40, "nested more than 32 levels"),
    (b'{"x": {"dtype": "F32", "shape": [NaN], "data_offsets": [0, 0]}}', "NaN is not allowed"),
    (b'{"x": 1, "x": 2}', "duplicate key 'x'"),
    (b"[1, 2]", "not a JSON object"),
    (b"{" + b"".join(b'"k%d": 0, ' % i for i in range(200000)) + b'"k7": 1}', "duplicate key 'k7'"),
    (b'{"__metadata__": {"format": 1}}', "must map strings to strings"),
    (b'{"__metadata__": {"format": "fastnn", "format_version": "1"}}', "no architecture"),
])
def test_hostile_header_text(tmp_path, text, match):
    _write_raw(tmp_path / "bad.safetensors", text)
    _refused(tmp_path / "bad.safetensors", match)


def _tensor_edits():
    def entry(header, name="weights/0/kernel"):
        return header[name]
    return [
        (lambda h: entry(h).update(dtype="F64"), "dtype 'F64'"),
        (lambda h: entry(h).update(dtype="I32"), "dtype 'I32'"),
        (lambda h: entry(h).update(data_offsets=[-4, 0]), "data_offsets"),
        (lambda h: entry(h).update(data_offsets=[0, 2**70]), "needs 80 bytes"),
        (lambda h: entry(h).update(data_offsets=[2**64, 2**64 + 80]), "starts at data byte|tensors cover"),
        (lambda h: entry(h).update(shape=[4.0, 5]), "shape"),
        (lambda h: entry(h).update(shape=[True, 5]), "shape"),
        (lambda h: entry(h).update(shape=[-4, -5]), "shape"),
        (lambda h: entry(h).update(shape=[1] * 9), "at most 8"),
        (lambda h: entry(h).update(shape=[5, 4]), r"weights/0/kernel' has shape \(5, 4\) but the architecture "
                                                   r"needs \(4, 5\)"),
        (lambda h: entry(h).pop("data_offsets"), "exactly dtype, shape and data_offsets"),
        (lambda h: entry(h).update(code="__import__('os')"), "exactly dtype, shape and data_offsets"),
        (lambda h: entry(h, "weights/0/bias").update(data_offsets=entry(h)["data_offsets"]), "overlap|needs"),
        (lambda h: h.update({"extra": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}), "overlap"),
    ]


@pytest.mark.parametrize("edit,match", _tensor_edits())
def test_hostile_tensor_entries(saved, edit, match):
    header, data = _split(saved)
    edit(header)
    _write_raw(saved, header, data)
    _refused(saved, match)


def test_data_past_the_end_or_trailing_bytes(saved):
    header, data = _split(saved)
    _write_raw(saved, header, data + b"\0" * 8)
    _refused(saved, "tensors cover .* holds")


# ---- the fastnn contents --------------------------------------------------------------------------------------------
def _resave(path, edit_tensors=None, **edit_json):
    """Rewrite a valid file with its tensors and metadata (architecture/training parsed) edited."""
    header, _ = _split(path)
    metadata = header["__metadata__"]
    tensors = {k: np.array(v) for k, v in safetensors.numpy.load_file(path).items()}
    if edit_tensors:
        edit_tensors(tensors)
    for key, edit in edit_json.items():
        if key in ("architecture", "training"):
            value = json.loads(metadata[key])
            edit(value)
            metadata[key] = json.dumps(value)
        else:
            edit(metadata)
    safetensors.numpy.save_file(tensors, path, metadata=metadata)


def _layer(arch, i):
    return arch["config"]["layers"][i]


@pytest.mark.parametrize("edits,match", [
    (dict(meta=lambda m: m.update(format_version=str(FORMAT_VERSION + 1))), "newer fastnn.*upgrade fastnn"),
    (dict(meta=lambda m: m.update(format_version="0")), "not a positive integer"),
    (dict(meta=lambda m: m.update(format_version="1.0")), "not a positive integer"),
    (dict(meta=lambda m: m.pop("format")), "not a fastnn model file"),
    (dict(meta=lambda m: m.update(architecture="{" * 10)), "architecture is not valid"),
    (dict(architecture=lambda a: _layer(a, 0).update(class_name="this.Lambda")), "unknown type 'this.Lambda'"),
    (dict(architecture=lambda a: _layer(a, 0).update(class_name="Layer")), "unknown type 'Layer'"),
    (dict(architecture=lambda a: _layer(a, 0).update(class_name="InputLayer")), "unknown type"),
    (dict(architecture=lambda a: _layer(a, 0).update(class_name=["Dense"])), "unknown type"),
    (dict(architecture=lambda a: a.update(class_name="Functional")), "'Functional' is not supported"),
    (dict(architecture=lambda a: _layer(a, 0)["config"].update(units=6)), "shape .* architecture needs"),
    (dict(architecture=lambda a: _layer(a, 0)["config"].update(units="__import__('this')")), "units"),
    (dict(architecture=lambda a: _layer(a, 0)["config"].update(__class__="x")), "unexpected keyword"),
    (dict(architecture=lambda a: _layer(a, 0)["config"].update(kernel_initializer={"class_name": "this.x"})),
     "unknown initializer"),
    (dict(architecture=lambda a: _layer(a, 0)["config"].update(activation="os.system")), "unknown activation"),
    (dict(architecture=lambda a: a["config"].update(input_shape=[5])), r"\(4, 5\) but the architecture needs \(5, 5\)"),
    (dict(architecture=lambda a: a["config"].update(input_shape=[2**40, 2**40])), "sensible size"),
    (dict(architecture=lambda a: a["config"].update(input_shape=None)), "declares an input shape|missing"),
    (dict(architecture=lambda a: a["config"]["layers"].pop()), r"unexpected \['weights/2/bias"),
    (dict(architecture=lambda a: a["config"]["layers"].extend([{"class_name": "Flatten", "config": {}}] * 10**4)),
     "10003 layers; at most 10000"),
    (dict(architecture=lambda a: _layer(a, 2)["config"].update(name=_layer(a, 0)["config"]["name"])), "layer names must be unique"),
    (dict(edit_tensors=lambda t: t.pop("weights/0/bias")), r"missing \['weights/0/bias'\]"),
    (dict(edit_tensors=lambda t: t.update({"evil": np.zeros(1, np.float32)})), r"unexpected tensors \['evil'\]"),
    (dict(edit_tensors=lambda t: t.update({"optimizer/velocity": np.zeros(7, np.float32)})),
     r"optimizer state 'velocity' has shape \(7,\)"),
    (dict(edit_tensors=lambda t: t.update({"optimizer/ghost": np.zeros(t["optimizer/velocity"].shape,
                                                                       np.float32)})), "ghost"),
    (dict(training=lambda t: t["optimizer"].update(class_name="this.Optimizer")), "unknown optimizer"),
    (dict(training=lambda t: t["optimizer"]["config"].update(momentum=2.0)), "momentum must be in"),
    (dict(training=lambda t: t["optimizer"]["config"].update(exec="print(1)")), "unexpected keyword"),
    (dict(training=lambda t: t["loss"].update(class_name="this.loss")), "unknown loss"),
    (dict(training=lambda t: t.update(metrics=["this.metric"])), "unknown metric"),
    (dict(training=lambda t: t.update(metrics=[{"class_name": "mae", "name": "m", "config": {"k": 1}}])),
     "unexpected keyword"),
    (dict(training=lambda t: t.update(iterations=-1)), "iterations -1 is not"),
    (dict(training=lambda t: t.update(iterations=1.5)), "iterations 1.5 is not"),
    (dict(training=lambda t: t.update(iterations=True)), "iterations True is not"),
    (dict(training=lambda t: t["random_state"].update(bit_generator="MT19937")), "known generator"),
    (dict(training=lambda t: t["random_state"].update(state={"state": "x", "inc": 1})), "random_state is invalid"),
    (dict(training=lambda t: t["random_state"]["state"].update(state=-1)), "random_state is invalid"),
    (dict(training=lambda t: t.update(layer_random_states={"0": t["random_state"]})), "layer '0', which has no"),
    (dict(training=lambda t: t.update(layer_random_states={"1x": t["random_state"]})), "layer '1x', which has no"),
    (dict(training=lambda t: t.pop("loss")), "training state must be a JSON object with exactly the keys"),
])
def test_hostile_or_inconsistent_contents(saved, edits, match):
    if "meta" in edits:
        edits = dict(edits, metadata=edits.pop("meta"))
    _resave(saved, **edits)
    _refused(saved, match)


def test_refused_load_weights_changes_nothing(saved):
    model = fastnn.Sequential([L.Input((4,)), L.Dense(5), L.Dropout(0.2), L.Dense(3)])
    before = model.get_weights()
    _resave(saved, metadata=lambda m: m.update(format_version="99"))
    with pytest.raises(ModelFileError, match="newer fastnn"):
        model.load_weights(saved)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        fastnn.load_model(tmp_path / "nope.safetensors")
