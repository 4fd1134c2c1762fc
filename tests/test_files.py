"""Model files: save/load round trips, exact training resume, atomic saves, and bad files rejected clearly."""
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import safetensors
import safetensors.numpy

import fastnn
from fastnn import _random, initializers, layers as L, losses, metrics, optimizers, schedules
from fastnn.files import FORMAT_VERSION, ModelFileError

REPO = Path(__file__).resolve().parent.parent


def _x(shape, n=9, seed=0):
    return np.random.default_rng(seed).standard_normal((n,) + shape).astype(np.float32)


ARCHITECTURES = {
    "mlp_input_dropout": ((6,), lambda: [L.Input((6,)), L.Dense(7, activation="relu"), L.Dropout(0.3),
                                         L.Dense(3, activation="softmax")]),
    "no_input_initializers": ((5,), lambda: [
        L.Dense(4, activation="tanh", input_shape=(5,), kernel_initializer="he_normal", bias_initializer="ones"),
        L.Activation("sigmoid"),
        L.Dense(2, use_bias=False, kernel_initializer=initializers.RandomNormal(0.1, 0.3, seed=4))]),
    "flatten_reshape": ((2, 3, 4), lambda: [L.Input((2, 3, 4)), L.Flatten(), L.Dense(6, activation="gelu"),
                                            L.Reshape((2, -1)), L.Activation("leaky_relu"), L.Flatten(),
                                            L.Dense(3, kernel_initializer=initializers.RandomUniform(-1, 1, 7))]),
    "frozen_named": ((3,), lambda: [L.Input((3,)), L.Dense(4, name="frozen", trainable=False),
                                    L.Dropout(0.5, seed=11, name="drop"), L.Dense(2, activation="linear")]),
}


def _build(kind, seed=0):
    fastnn.set_seed(seed)
    shape, layers = ARCHITECTURES[kind]
    return fastnn.Sequential(layers(), name=f"model_{kind}"), shape


def _assert_same_model(a, b):
    assert b.name == a.name and len(b) == len(a) and b.input_shape == a.input_shape
    for la, lb in zip(a.layers, b.layers):
        assert type(lb) is type(la) and lb.get_config() == la.get_config()
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert wb.dtype == np.float32 and np.array_equal(wa, wb)


@pytest.mark.parametrize("kind", sorted(ARCHITECTURES))
def test_save_load_predicts_identically(tmp_path, kind):
    model, shape = _build(kind)
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = fastnn.load_model(path)
    _assert_same_model(model, loaded)
    x = _x(shape)
    assert np.array_equal(loaded.predict(x), model.predict(x))
    assert sorted(os.listdir(tmp_path)) == ["model.safetensors"]  # no temporary file left behind


def test_unbuilt_and_empty_models_round_trip(tmp_path):
    unbuilt = fastnn.Sequential([L.Dense(3, activation="relu"), L.Dense(2)])
    unbuilt.save(tmp_path / "u.safetensors")
    loaded = fastnn.load_model(tmp_path / "u.safetensors")
    assert not loaded.built and [type(l) for l in loaded.layers] == [L.Dense, L.Dense]
    assert loaded.predict(_x((4,))).shape == (9, 2)  # builds on first use, like the original
    empty = fastnn.Sequential([L.Input((4,))])
    empty.save(str(tmp_path / "e.safetensors"))
    assert fastnn.load_model(str(tmp_path / "e.safetensors")).input_shape == (None, 4)


def test_file_is_plain_safetensors(tmp_path):
    """Other tools read the weights by name, and the metadata says what wrote the file."""
    model, _ = _build("mlp_input_dropout")
    model.compile("sgd", "mse")
    model.save(tmp_path / "m.safetensors")
    tensors = safetensors.numpy.load_file(tmp_path / "m.safetensors")
    assert sorted(tensors) == ["weights/0/bias", "weights/0/kernel", "weights/2/bias", "weights/2/kernel"]
    assert np.array_equal(tensors["weights/2/kernel"], model.layers[2].weights[0])
    with safetensors.safe_open(tmp_path / "m.safetensors", "np") as f:
        metadata = f.metadata()
    assert metadata["format"] == "fastnn" and metadata["format_version"] == str(FORMAT_VERSION)
    assert metadata["fastnn_version"] == fastnn.__version__
    assert json.loads(metadata["architecture"])["config"]["layers"][1]["class_name"] == "Dropout"
    assert json.loads(metadata["training"])["loss"]["class_name"] == "mean_squared_error"


@pytest.mark.parametrize("layer", [
    L.Dense(5), L.Dense(3, activation="softmax", use_bias=False, kernel_initializer="glorot_normal", name="head"),
    L.Dense(2, kernel_initializer=initializers.HeUniform(seed=3), trainable=False, input_shape=(4,)),
    L.Activation("tanh"), L.Flatten(), L.Reshape((3, -1)), L.Dropout(0.25), L.Dropout(0.5, seed=9)],
    ids=lambda layer: type(layer).__name__)
def test_layer_config_round_trips_through_json(layer):
    config = json.loads(json.dumps(layer.get_config()))
    again = type(layer).from_config(config)
    assert type(again) is type(layer) and again.get_config() == layer.get_config()


# ---- training state and exact resume ---------------------------------------------------------------------------
def _resume_model(optimizer):
    fastnn.set_seed(3)
    model = fastnn.Sequential([L.Input((6,)), L.Dense(16, activation="relu"), L.Dropout(0.3),
                               L.Dense(8, activation="tanh"), L.Dropout(0.2, seed=5),
                               L.Dense(3, activation="softmax")])
    model.compile(optimizer=optimizer(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


RESUMED_OPTIMIZERS = {
    "sgd_momentum": lambda: optimizers.SGD(0.05, momentum=0.9),
    "sgd_nesterov_schedule": lambda: optimizers.SGD(schedules.ExponentialDecay(0.1, 5, 0.7, staircase=True),
                                                    momentum=0.8, nesterov=True),
    "adam_cosine_clipnorm": lambda: optimizers.Adam(schedules.CosineDecay(0.01, decay_steps=20), clipnorm=0.5),
    "rmsprop_weight_decay": lambda: optimizers.RMSprop(0.005, weight_decay=0.01),
    **{f"{name}_defaults": cls for name, cls in sorted(optimizers._BY_NAME.items())},
}


@pytest.mark.parametrize("optimizer", RESUMED_OPTIMIZERS.values(), ids=RESUMED_OPTIMIZERS.keys())
def test_save_and_resume_equals_uninterrupted_run_bit_for_bit(tmp_path, optimizer):
    x = _x((6,), n=100, seed=1)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)
    whole = _resume_model(optimizer)
    full_history = whole.fit(x, y, batch_size=16, epochs=4, shuffle=True, verbose=0).history

    first = _resume_model(optimizer)
    first.fit(x, y, batch_size=16, epochs=2, shuffle=True, verbose=0)
    first.save(tmp_path / "ckpt.safetensors")
    fastnn.set_seed(999)  # whatever happens in between, loading restores the random streams
    resumed = fastnn.load_model(tmp_path / "ckpt.safetensors")
    assert resumed.optimizer.iterations == first.optimizer.iterations == 2 * 7
    rest = resumed.fit(x, y, batch_size=16, epochs=4, initial_epoch=2, shuffle=True, verbose=0).history

    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        assert np.array_equal(a, b)
    assert rest["loss"] == full_history["loss"][2:] and rest["accuracy"] == full_history["accuracy"][2:]
    after = _random.generator().integers(0, 2**62, 4)
    _resume_model(optimizer).fit(x, y, batch_size=16, epochs=4, verbose=0)
    assert np.array_equal(after, _random.generator().integers(0, 2**62, 4))  # global stream continues alike


def test_training_configuration_is_restored(tmp_path):
    fastnn.set_seed(0)
    model = fastnn.Sequential([L.Input((4,)), L.Dense(3)])
    top2 = metrics.SparseTopKCategoricalAccuracy(k=2)
    top2.name = "top2"
    model.compile(optimizers.SGD(0.02, momentum=0.5), losses.SparseCategoricalCrossentropy(from_logits=True),
                  ["acc", top2])
    model.optimizer.learning_rate = 0.007  # set between steps: the current value is what is saved
    model.train_on_batch(_x((4,)), np.arange(9) % 3)
    model.save(tmp_path / "m.safetensors")
    state = _random.generator().bit_generator.state
    _random.generator().random(5)
    loaded = fastnn.load_model(tmp_path / "m.safetensors")
    assert loaded.optimizer.get_config() == {"learning_rate": 0.007, "momentum": 0.5, "nesterov": False}
    assert loaded.optimizer.iterations == 1
    assert np.array_equal(loaded.optimizer.variables()["velocity"], model.optimizer.variables()["velocity"])
    assert type(loaded.loss) is losses.SparseCategoricalCrossentropy and loaded.loss.from_logits
    assert loaded._metric_ids[0] == "acc" and loaded._metric_ids[1].name == "top2" and loaded._metric_ids[1].k == 2
    assert _random.generator().bit_generator.state == state

    _random.generator().random(5)
    moved = _random.generator().bit_generator.state
    plain = fastnn.load_model(tmp_path / "m.safetensors", compile=False)
    assert plain.optimizer is None and plain.loss is None
    assert _random.generator().bit_generator.state == moved  # compile=False leaves the random streams alone


def test_include_optimizer_false_and_unsavable_training_state(tmp_path):
    class MyLoss(losses.MeanSquaredError):
        pass

    model = fastnn.Sequential([L.Input((2,)), L.Dense(1)])
    model.compile("sgd", MyLoss())
    with pytest.raises(ModelFileError, match="include_optimizer=False"):
        model.save(tmp_path / "m.safetensors")
    assert os.listdir(tmp_path) == []
    model.save(tmp_path / "m.safetensors", include_optimizer=False)
    loaded = fastnn.load_model(tmp_path / "m.safetensors")
    assert loaded.loss is None and np.array_equal(loaded.get_weights()[0], model.get_weights()[0])


def test_save_weights_and_load_weights(tmp_path):
    source, _ = _build("mlp_input_dropout", seed=1)
    source.save_weights(tmp_path / "w.safetensors")
    target, _ = _build("mlp_input_dropout", seed=2)
    target.load_weights(tmp_path / "w.safetensors")
    assert all(np.array_equal(a, b) for a, b in zip(source.get_weights(), target.get_weights()))
    unbuilt = fastnn.Sequential([L.Dense(7, activation="relu"), L.Dropout(0.3), L.Dense(3)])
    unbuilt.load_weights(tmp_path / "w.safetensors")  # built for the file's input shape, then filled
    assert unbuilt.input_shape == (None, 6)
    assert all(np.array_equal(a, b) for a, b in zip(source.get_weights(), unbuilt.get_weights()))

    other = fastnn.Sequential([L.Input((6,)), L.Dense(7), L.Dropout(0.3), L.Dense(4)])
    before = other.get_weights()
    with pytest.raises(ModelFileError, match=r"weights/2/kernel.*\(7, 3\).*needs \(7, 4\)"):
        other.load_weights(tmp_path / "w.safetensors")
    assert all(np.array_equal(a, b) for a, b in zip(before, other.get_weights()))  # nothing half-loaded
    shorter = fastnn.Sequential([L.Input((6,)), L.Dense(7), L.Dense(3)])
    with pytest.raises(ModelFileError, match="missing.*weights/1/kernel"):
        shorter.load_weights(tmp_path / "w.safetensors")


# ---- atomic saves -----------------------------------------------------------------------------------------------
def test_failed_save_keeps_the_previous_file_and_leaves_no_temp(tmp_path, monkeypatch):
    model, shape = _build("mlp_input_dropout")
    path = tmp_path / "m.safetensors"
    model.save(path)
    good = path.read_bytes()
    model.layers[0].weights[0][...] = 7.0

    def broken_fsync(fd):
        raise OSError(5, "simulated I/O error")

    monkeypatch.setattr("fastnn._safetensors_io.os.fsync", broken_fsync)
    with pytest.raises(OSError, match="simulated"):
        model.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == good and os.listdir(tmp_path) == ["m.safetensors"]
    with pytest.raises(FileNotFoundError):
        model.save(tmp_path / "no_such_folder" / "m.safetensors")


_SAVER = textwrap.dedent("""
    import sys
    import fastnn
    from fastnn import layers as L
    model = fastnn.Sequential([L.Input((1000,)), L.Dense(1500), L.Dense(1000)])
    k = 1
    while True:
        for w in model.parameters():
            w.fill(k)
        model.save(sys.argv[1])
        print(k, flush=True)
        k += 1
""")


def test_save_killed_mid_write_leaves_the_previous_file_loadable(tmp_path):
    """SIGKILL a process that saves 10 MB models in a loop, at random moments: the file on disk is always a
    complete save (every weight equal to the same save counter), never a torn or truncated one."""
    path = tmp_path / "big.safetensors"
    model = fastnn.Sequential([L.Input((1000,)), L.Dense(1500), L.Dense(1000)])
    for w in model.parameters():
        w.fill(0.0)
    model.save(path)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    rng = random.Random(1234)
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(path)], stdout=subprocess.PIPE, env=env)
        try:
            assert proc.stdout.readline()  # one save done: the next ones are in flight
            time.sleep(rng.uniform(0.0, 0.4))
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait()
            proc.stdout.close()
        weights = fastnn.load_model(path).get_weights()
        counter = weights[0].flat[0]
        assert all(np.all(w == counter) for w in weights)
    model.save(path)  # a successful save also clears the temporaries of saves that died
    assert os.listdir(tmp_path) == ["big.safetensors"]
