"""What fit/evaluate/predict print, off a terminal (captured stdout) and on one (a pseudo-terminal)."""
import io
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn import progress

REPO = Path(__file__).resolve().parent.parent


def _model():
    fastnn.set_seed(0)
    model = fastnn.Sequential([L.Input((5,)), L.Dense(6, activation="tanh"), L.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", ["accuracy"])
    return model


def _data(n=96):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 5)).astype(np.float32), rng.integers(0, 3, n)


LINE = re.compile(r"^Epoch (\d+)/3 - \d+\.\d\ds - [\d,]+ samples/s - loss: \d+\.\d{4} - accuracy: \d\.\d{4} - "
                  r"val_loss: \d+\.\d{4} - val_accuracy: \d\.\d{4}$")


def test_off_a_terminal_auto_prints_one_line_per_epoch(capsys):
    x, y = _data()
    _model().fit(x, y, epochs=3, validation_split=0.25)  # verbose="auto"; captured stdout is not a terminal
    lines = capsys.readouterr().out.splitlines()
    assert [int(LINE.match(line).group(1)) for line in lines] == [1, 2, 3]


def test_verbose_zero_is_silent_and_evaluate_predict_stay_quiet_off_a_terminal(capsys):
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=2, verbose=0)
    model.evaluate(x, y)
    model.predict(x)
    assert capsys.readouterr().out == ""
    model.evaluate(x, y, verbose=2)
    model.predict(x, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert re.match(r"^evaluate - \d+\.\d\ds - [\d,]+ samples/s - loss: \d\.\d{4} - accuracy: \d\.\d{4}$", lines[0])
    assert re.match(r"^predict - \d+\.\d\ds - [\d,]+ samples/s$", lines[1]) and len(lines) == 2


def test_verbose_one_draws_a_tqdm_bar_even_off_a_terminal(capsys):
    x, y = _data()
    _model().evaluate(x, y, verbose=1)
    out = capsys.readouterr().out
    assert "evaluate:   0%|" in out and "samples/s" in out and out.endswith("\n")


def test_bad_verbose_values():
    x, y = _data()
    for bad in (3, -1, True, "yes", None):
        with pytest.raises(ValueError, match="verbose must be 0, 1, 2 or 'auto'"):
            _model().fit(x, y, verbose=bad)
    with pytest.raises(ValueError, match="verbose"):
        _model().predict(x, verbose=5)


class _FrozenClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class _CountingMetric(fastnn.metrics.Metric):
    name = "counted"
    results = 0

    def result(self):
        type(self).results += 1
        return 0.5


def test_bar_formats_logs_only_when_it_redraws(monkeypatch):
    clock = _FrozenClock()
    monkeypatch.setattr(progress.time, "perf_counter", clock)
    stream = io.StringIO()
    metric = _CountingMetric()
    with progress.Progress(1, 1000, "Epoch 1/1", stream=stream) as bar:
        for seen in range(10, 1001, 10):
            bar.update(seen, 0.25, [metric])  # no time passes: no redraw, no formatting
        assert _CountingMetric.results == 0
        clock.now += 0.2
        bar.update(1000, 0.25, [metric])
        assert _CountingMetric.results == 1 and "loss: 0.2500 - counted: 0.5000" in stream.getvalue()
        bar.finish(1000, {"loss": 0.25, "val_loss": 0.5})
    assert stream.getvalue().endswith("Epoch 1/1 - 0.20s - 5,000 samples/s - loss: 0.2500 - val_loss: 0.5000\n")


CHILD = textwrap.dedent("""
    import time
    import numpy as np, fastnn
    from fastnn import layers as L

    class Slow(fastnn.callbacks.Callback):  # an epoch lasts > 0.3 s, so the bar redraws with a measured rate
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(0.004)

    fastnn.set_seed(0)
    m = fastnn.Sequential([L.Input((5,)), L.Dense(6, activation="tanh"), L.Dense(3, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy", ["accuracy"])
    x = np.random.default_rng(0).standard_normal((400, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    m.fit(x, y, batch_size=4, epochs=2, validation_split=0.1, callbacks=[Slow()])  # verbose="auto"
    print("evaluate result", m.evaluate(x, y, verbose="auto"))
""")


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_on_a_terminal_auto_draws_a_tqdm_bar_with_samples_per_second():
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 150, 0, 0))  # rows, columns
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert child.wait(timeout=120) == 0, b"".join(chunks).decode(errors="replace")
    out = b"".join(chunks).decode()
    # the live bar, redrawn in place with "\r", with a measured rate and the running logs
    bars = re.findall(r"\rEpoch 1/2: +\d+%\|[^|]*\| \d+/360 \[[^\]]*, [\d.]+k? samples/s, loss: [\d.]+ - "
                      r"accuracy: [\d.]+\]", out)
    assert bars, out
    # each epoch ends with its complete line; the bar's own line is cleared first
    finals = re.findall(r"Epoch (\d)/2 - [\d.]+s - [\d,]+ samples/s - loss: [\d.]+ - accuracy: [\d.]+ - "
                        r"val_loss: [\d.]+ - val_accuracy: [\d.]+\r\n", out)
    assert finals == ["1", "2"], out
    assert "\revaluate:   0%|" in out and re.search(r"\revaluate - [\d.]+s - [\d,]+ samples/s - loss: ", out)
