"""Callbacks: the hook protocol, each built-in callback's behaviour, name resolution and errors, History.plot."""
import csv
import math
import sys

import numpy as np
import pytest

import fastnn
from fastnn import callbacks as C
from fastnn import layers as L
from fastnn import optimizers

from callback_support import Scripted, data as _data, fit as _fit, model_for as _model, \
    same_weights as _same_weights


# ---- the hook protocol ---------------------------------------------------------------------------------------
HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
         "on_train_batch_end", "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end",
         "on_predict_begin", "on_predict_end", "on_predict_batch_begin", "on_predict_batch_end")


def _recording_callback():
    """A Callback overriding every hook; each call is recorded as (hook name, *integer arguments)."""
    calls = []

    def recorder(name):
        return lambda self, *args: calls.append((name,) + tuple(a for a in args if isinstance(a, int)))

    cls = type("Hooks", (C.Callback,), {name: recorder(name) for name in HOOKS})
    return cls(), calls


def test_fit_calls_hooks_in_keras_order():
    rec, calls = _recording_callback()
    x, y = _data(40)
    _model().fit(x[:32], y[:32], batch_size=16, epochs=2, verbose=0, validation_data=(x[32:], y[32:]),
                 callbacks=[rec])

    def epoch(e):
        batches = [c for b in (0, 1) for c in (("on_train_batch_begin", b), ("on_train_batch_end", b))]
        validation = [("on_test_begin",), ("on_test_batch_begin", 0), ("on_test_batch_end", 0), ("on_test_end",)]
        return [("on_epoch_begin", e)] + batches + validation + [("on_epoch_end", e)]

    assert calls == [("on_train_begin",)] + epoch(0) + epoch(1) + [("on_train_end",)]
    assert rec.params == {"epochs": 2, "steps": 2, "batch_size": 16, "verbose": 0} and rec.model is not None


def test_logs_passed_to_hooks_and_legacy_batch_names():
    seen = {}

    class Spy(C.Callback):
        def on_batch_end(self, batch, logs=None):  # Keras' older name still works
            seen.setdefault("batch", []).append(sorted(logs))

        def on_epoch_end(self, epoch, logs=None):
            seen["epoch"] = sorted(logs)

        def on_test_end(self, logs=None):
            seen["test"] = sorted(logs)

    _fit(_model(), [Spy()], 1, validation_split=0.25)
    assert seen["batch"] == [["accuracy", "loss"]] * 3
    assert seen["epoch"] == ["accuracy", "loss", "val_accuracy", "val_loss"] and seen["test"] == ["accuracy", "loss"]


def test_evaluate_and_predict_call_their_hooks():
    got = []

    class Spy(C.Callback):
        def on_test_batch_end(self, batch, logs=None):
            got.append(("test", batch, logs["loss"]))

        def on_test_end(self, logs=None):
            got.append(("test_end", logs))

        def on_predict_batch_end(self, batch, logs=None):
            got.append(("predict", batch, logs["outputs"].copy()))

        def on_predict_end(self, logs=None):
            got.append(("predict_end",))

    model, (x, y) = _model(), _data(40)
    result = model.evaluate(x, y, batch_size=32, verbose=0, callbacks=[Spy()], return_dict=True)
    assert [g[:2] for g in got[:2]] == [("test", 0), ("test", 1)] and got[2] == ("test_end", result)
    got.clear()
    out = model.predict(x, batch_size=32, verbose=0, callbacks=[Spy()])
    np.testing.assert_array_equal(np.concatenate([g[2] for g in got[:2]]), out)
    assert got[2] == ("predict_end",)


def test_stop_training_in_a_batch_hook_stops_after_that_batch():
    class StopAt(C.Callback):
        def __init__(self):
            self.batches = 0

        def on_train_batch_end(self, batch, logs=None):
            self.batches += 1
            if batch == 1:
                self.model.stop_training = True

    stop = StopAt()
    history = _fit(_model(), [stop], 5)
    assert stop.batches == 2 and history.epoch == [0]


# ---- EarlyStopping -----------------------------------------------------------------------------------------------
def test_early_stopping_stops_at_the_right_epoch_and_restores_the_best_weights():
    script = Scripted([1.0, 0.5, 0.6, 0.4, 0.45, 0.41, 0.3, 0.2, 0.1, 0.0])
    stop = C.EarlyStopping(patience=2, restore_best_weights=True)
    model = _model()
    history = _fit(model, [script, stop], 10)
    # best 0.4 at epoch 3; epochs 4 and 5 do not improve: patience 2 is used up at epoch 5
    assert history.epoch == [0, 1, 2, 3, 4, 5] and stop.stopped_epoch == 5 and stop.best_epoch == 3
    assert _same_weights(model.get_weights(), script.weights[3])
    assert not _same_weights(model.get_weights(), script.weights[5])


def test_early_stopping_without_restore_keeps_the_last_weights():
    script = Scripted([1.0, 1.0, 1.0, 1.0])
    model = _model()
    history = _fit(model, [script, C.EarlyStopping(patience=1)], 4)
    assert history.epoch == [0, 1] and _same_weights(model.get_weights(), script.weights[-1])


@pytest.mark.parametrize("kwargs,values,epochs_run", [
    ({"min_delta": 0.1, "patience": 1}, [1.0, 0.95, 0.5, 0.4], 2),      # 0.05 better is not enough
    ({"min_delta": 0.01, "patience": 1}, [1.0, 0.95, 0.5, 0.5], 4),
    ({"monitor": "val_accuracy", "patience": 0}, [0.5, 0.6, 0.55, 0.7], 3),  # auto mode: higher is better
    ({"mode": "max", "patience": 0}, [0.5, 0.6, 0.55, 0.7], 3),
    ({"mode": "min", "monitor": "val_accuracy", "patience": 0}, [0.5, 0.6, 0.55, 0.7], 2),
    ({"baseline": 0.5, "patience": 3}, [0.9, 0.8, 0.85, 0.86, 0.9], 3),  # never beat the baseline
    ({"patience": 3}, [0.9, 0.8, 0.85, 0.86, 0.9], 5),
    ({"start_from_epoch": 2, "patience": 0}, [1.0, 2.0, 3.0, 4.0, 5.0], 4),  # warm-up epochs are ignored
    ({"patience": 0}, [1.0, float("nan"), 0.5], 2),                       # NaN is never an improvement
])
def test_early_stopping_settings(kwargs, values, epochs_run):
    key = kwargs.get("monitor", "val_loss")
    history = _fit(_model(), [Scripted(values, key), C.EarlyStopping(**kwargs)], len(values))
    assert len(history.epoch) == epochs_run


def test_early_stopping_warns_when_the_monitored_value_is_missing():
    with pytest.warns(UserWarning, match=r"EarlyStopping monitors 'val_loss', which is not in the logs "
                                         r"\(available: accuracy, loss\)"):
        history = _fit(_model(), [C.EarlyStopping(patience=0)], 3)
    assert len(history.epoch) == 3
    with pytest.warns(UserWarning, match="ReduceLROnPlateau monitors 'val_loss'.*the learning rate is left unchanged"):
        history = _fit(_model(lr=0.1), [C.ReduceLROnPlateau(patience=0)], 2)
    assert history.history["learning_rate"] == [0.1, 0.1]


def test_early_stopping_prints_when_verbose(capsys):
    _fit(_model(), [Scripted([1.0, 2.0, 3.0]), C.EarlyStopping(verbose=1, restore_best_weights=True)], 3)
    out = capsys.readouterr().out
    assert "Epoch 2: early stopping" in out and "best epoch: 1" in out


# ---- ModelCheckpoint ---------------------------------------------------------------------------------------------
def test_checkpoint_save_best_only_writes_only_on_improvement(tmp_path):
    script = Scripted([1.0, 0.8, 0.9, 0.7, 0.75])
    check = C.ModelCheckpoint(tmp_path / "ckpt" / "m-{epoch:02d}-{val_loss:.2f}.safetensors", save_best_only=True)
    model = _model()
    _fit(model, [script, check], 5)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "m-01-1.00.safetensors", "m-02-0.80.safetensors", "m-04-0.70.safetensors"]
    best = fastnn.load_model(tmp_path / "ckpt" / "m-04-0.70.safetensors")
    assert _same_weights(best.get_weights(), script.weights[3])


def test_checkpoint_every_epoch_and_weights_only(tmp_path):
    script = Scripted([0.5, 0.6, 0.7])
    model = _model()
    _fit(model, [script, C.ModelCheckpoint(str(tmp_path / "w-{epoch}.safetensors"), save_weights_only=True)], 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"w-{e}.safetensors" for e in (1, 2, 3)]
    other = _model(seed=1)
    other.load_weights(tmp_path / "w-2.safetensors")
    assert _same_weights(other.get_weights(), script.weights[1])


def test_checkpoint_mode_max_and_initial_threshold(tmp_path):
    saved = []

    class Probe(fastnn.Sequential):
        def save(self, path):
            saved.append(path)

    fastnn.set_seed(0)
    model = Probe([L.Input((5,)), L.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", ["accuracy"])
    check = C.ModelCheckpoint(str(tmp_path / "{epoch}"), monitor="val_accuracy", save_best_only=True,
                              initial_value_threshold=0.55)
    _fit(model, [Scripted([0.5, 0.6, 0.58, 0.9], "val_accuracy"), check], 4)
    assert saved == [str(tmp_path / "2"), str(tmp_path / "4")]


def test_checkpoint_errors(tmp_path):
    with pytest.raises(ValueError, match=r"cannot fill filepath .*epoch 1: KeyError: 'val_acc'.*available "
                                         r"fields: epoch, loss, accuracy"):
        _fit(_model(), [C.ModelCheckpoint(str(tmp_path / "{val_acc}.safetensors"))], 1)
    with pytest.raises(ValueError, match="ModelCheckpoint: filepath"):
        C.ModelCheckpoint("m-{epoch.safetensors")
    with pytest.raises(TypeError, match="ModelCheckpoint: filepath"):
        C.ModelCheckpoint(3)
    with pytest.warns(UserWarning, match="no checkpoint is saved"):
        _fit(_model(), [C.ModelCheckpoint(str(tmp_path / "x.safetensors"), save_best_only=True)], 1)
    assert not (tmp_path / "x.safetensors").exists()


# ---- CSVLogger and TerminateOnNaN ---------------------------------------------------------------------------------
def test_csv_logger_writes_one_row_per_epoch_and_appends(tmp_path):
    path = tmp_path / "log.csv"
    history = _fit(_model(), [C.CSVLogger(path)], 3, validation_split=0.25)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    keys = sorted(history.history)
    assert rows[0] == ["epoch"] + keys and [r[0] for r in rows[1:]] == ["0", "1", "2"]
    for i, row in enumerate(rows[1:]):
        assert [float(v) for v in row[1:]] == [history.history[k][i] for k in keys]
    _fit(_model(), [C.CSVLogger(path, separator=";", append=True)], 2, validation_split=0.25, initial_epoch=0)
    lines = path.read_text().splitlines()
    assert len(lines) == 6 and lines[4].startswith("0;") and lines[0].count(",") == len(keys)
    _fit(_model(), [C.CSVLogger(path)], 1)  # no append: the file starts over
    assert path.read_text().splitlines()[0] == "epoch,accuracy,loss"
    with pytest.raises(ValueError, match="one character"):
        C.CSVLogger(path, separator=", ")


def _exploding_model():
    fastnn.set_seed(0)
    model = fastnn.Sequential([L.Input((4,)), L.Dense(3)])
    model.compile(optimizer=optimizers.SGD(1e10), loss="mse")
    x = np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32) * 1e3
    return model, x, np.ones((10, 3)) * 1e15


def test_terminate_on_nan_stops_cleanly_with_the_last_good_weights(capsys):
    model, x, y = _exploding_model()
    snapshots = []

    class Snapshot(C.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if math.isfinite(logs["loss"]):
                snapshots.append(model.get_weights())

    history = model.fit(x, y, batch_size=2, epochs=3, verbose=0, shuffle=False,
                        callbacks=[Snapshot(), C.TerminateOnNaN()])
    assert snapshots and not math.isfinite(history.history["loss"][-1]) and len(history.epoch) == 1
    assert _same_weights(model.get_weights(), snapshots[-1])
    assert f"Batch {len(snapshots)}: invalid loss" in capsys.readouterr().out
    model, x, y = _exploding_model()
    with pytest.raises(FloatingPointError, match=rf"epoch 1, batch {len(snapshots) + 1}: the loss became"):
        model.fit(x, y, batch_size=2, epochs=3, verbose=0, shuffle=False)


# ---- names and errors ------------------------------------------------------------------------------------------------
def test_callbacks_by_name_and_clear_errors():
    assert isinstance(C.get("early_stopping"), C.EarlyStopping) and isinstance(C.get("TerminateOnNaN"),
                                                                              C.TerminateOnNaN)
    history = _fit(_model(), "terminate_on_nan", 2)
    assert len(history.epoch) == 2
    model = _model()
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"unknown callback 'stop_early'; valid names: early_stopping, "
                                         r"reduce_lr_on_plateau, terminate_on_nan"):
        _fit(model, ["stop_early"], 1)
    with pytest.raises(ValueError, match=r"'model_checkpoint' needs arguments: pass fastnn.callbacks."
                                         r"ModelCheckpoint\(filepath\)"):
        _fit(model, ["model_checkpoint"], 1)
    with pytest.raises(TypeError, match="is not a callback: it has none of the hooks on_train_begin.*subclass "
                                        "fastnn.callbacks.Callback, or use one of EarlyStopping"):
        _fit(model, [object()], 1)
    with pytest.raises(TypeError, match=r"got the class EarlyStopping: write EarlyStopping\(...\)"):
        _fit(model, [C.EarlyStopping], 1)
    with pytest.raises(TypeError, match="callbacks must be a list"):
        _fit(model, 5, 1)
    assert _same_weights(model.get_weights(), before)  # rejected before any training step


def test_duck_typed_callbacks_work():
    seen = []

    class Plain:  # not a Callback subclass, no set_model: fit calls only what it has
        def on_epoch_end(self, epoch, logs):
            seen.append(epoch)

    _fit(_model(), [Plain()], 2)
    assert seen == [0, 1]


# ---- History ---------------------------------------------------------------------------------------------------------
def test_history_is_fits_return_value_and_model_history():
    model = _model()
    history = _fit(model, None, 2, validation_split=0.25, initial_epoch=0)
    assert model.history is history and isinstance(history, C.Callback) and fastnn.History is C.History
    assert history.epoch == [0, 1] and set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history.params["epochs"] == 2 and "History(epochs=2" in repr(history)


def test_history_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    model = _model()
    history = _fit(model, [C.LearningRateScheduler(lambda e, lr: lr)], 4, validation_split=0.25)
    fig = history.plot(tmp_path / "h.png")
    data = (tmp_path / "h.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["loss", "accuracy", "learning_rate"]
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["train", "validation"]
    np.testing.assert_array_equal(fig.axes[0].get_lines()[1].get_ydata(), history.history["val_loss"])
    with pytest.raises(ValueError, match="no epochs"):
        C.History().plot(tmp_path / "empty.png")


def test_history_plot_without_matplotlib_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r'pip install "fastnn\[plot\]"'):
        C.History().plot(tmp_path / "h.png")
