"""A character-level LSTM on Tiny Shakespeare, trained for a wall-clock budget; optionally against PyTorch.

    python examples/char_lstm.py [TEXT_FILE] [--minutes 10] [--compare] [--units 512] [--window 100] ...

TEXT_FILE defaults to $FASTNN_DATA/tinyshakespeare/input.txt, else ../shared/data/tinyshakespeare/input.txt
(from the current directory, e.g. the repository root). The last 10% of the text is held out. The network is
Embedding -> LSTM(return_sequences=True) -> Dense(vocab, softmax), trained to predict the next character at
every position of non-overlapping windows (sparse cross-entropy per time step), with Adam and global gradient
clipping. After every epoch (a pass over the training windows, cut short when the budget runs out) it prints
the validation loss per character, in nats and bits, and a sample generated from the model.

--compare then trains the same network in PyTorch (run by PYTORCH_PYTHON, default /work/venv-peers/bin/python,
with examples/char_lstm_torch.py) from the same initial weights, with the same recipe and the same data order,
for the same training wall-clock budget (validation and sampling are not counted, on either side), and prints
both validation losses side by side. Only --compare needs torch. PyTorch's LSTM has two biases where Keras
(and fastnn) has one: the twin freezes the second at zero, so both train the same parameters.

On a machine shared with other jobs, OpenMP threads that spin while waiting lose much of their time slice:
with OMP_WAIT_POLICY=PASSIVE in the environment (the PyTorch process inherits it) both run several times
faster there (measured at a load average of ~9 on 2 cores: fastnn 3-4x, PyTorch 5x or more).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import fastnn
from fastnn import layers, text
from fastnn.callbacks import Callback

HERE = Path(__file__).resolve().parent


def find_text(path):
    """The corpus file: `path`, $FASTNN_DATA/tinyshakespeare/input.txt or ../shared/data/tinyshakespeare/..."""
    if path is not None:
        candidates = [Path(path)]
    else:
        candidates = [Path.cwd().parent / "shared" / "data" / "tinyshakespeare" / "input.txt"]
        if os.environ.get("FASTNN_DATA"):
            candidates.insert(0, Path(os.environ["FASTNN_DATA"]) / "tinyshakespeare" / "input.txt")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c.resolve()) for c in candidates)
    raise SystemExit(f"text not found (looked at {looked}); pass the file or set FASTNN_DATA to the data folder")


def build_model(vocab_size, window, embedding_dim, units):
    return fastnn.Sequential([
        layers.Input((window,)),
        layers.Embedding(vocab_size, embedding_dim),
        layers.LSTM(units, return_sequences=True),
        layers.Dense(vocab_size, activation="softmax"),
    ])


def split_windows(corpus, vocab, window):
    """(x_train, y_train), (x_val, y_val): non-overlapping windows of the first 90% and of the last 10%."""
    ids = vocab.encode(corpus)
    cut = int(len(ids) * 0.9)
    return text.sequence_dataset(ids[:cut], window), text.sequence_dataset(ids[cut:], window)


def epoch_order(seed, epoch, n):
    """The order of the training windows in an epoch (char_lstm_torch.py draws the same)."""
    return np.random.default_rng(seed + epoch).permutation(n)


class TimeBudget(Callback):
    """Stops training once the training time of all epochs so far reaches the budget."""

    def __init__(self, seconds):
        self.seconds, self.used, self._start, self.batches = seconds, 0.0, None, 0

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self.batches = time.perf_counter(), 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if self.used + time.perf_counter() - self._start >= self.seconds:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self.used += time.perf_counter() - self._start

    @property
    def exhausted(self):
        return self.used >= self.seconds


def train_fastnn(model, vocab, train, val, args):
    budget = TimeBudget(args.minutes * 60.0)
    (x, y), history, epoch = train, [], 0
    while not budget.exhausted:
        order = epoch_order(args.seed, epoch, len(x))
        start = time.perf_counter()
        fit = model.fit(x[order], y[order], batch_size=args.batch_size, epochs=1, shuffle=False, verbose=0,
                        callbacks=[budget])
        seconds = time.perf_counter() - start
        epoch += 1
        seen = min(len(x), budget.batches * args.batch_size)
        val_loss = model.evaluate(*val, batch_size=256, verbose=0)
        history.append({"epoch": epoch, "windows": seen, "seconds": seconds,
                        "train_loss": fit.history["loss"][0], "val_loss": val_loss})
        print(f"fastnn epoch {epoch}: {seen} windows in {seconds:.1f} s ({seen / seconds:.1f} windows/s), "
              f"train loss {fit.history['loss'][0]:.4f}, val loss {val_loss:.4f} nats = "
              f"{val_loss / np.log(2):.4f} bits per char", flush=True)
        sample = text.generate(model, vocab, args.prime, args.sample_length, args.temperature, seed=epoch)
        print(f"--- sample (temperature {args.temperature}) ---\n{args.prime}{sample}\n---", flush=True)
    return history, budget.used


def recipe(args, vocab):
    return {"vocab_size": vocab.size, "embedding_dim": args.embedding, "units": args.units,
            "window": args.window, "batch_size": args.batch_size, "learning_rate": args.learning_rate,
            "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "global_clipnorm": args.clipnorm,
            "minutes": args.minutes, "seed": args.seed, "threads": fastnn.get_num_threads()}


def run_torch(spec_path, args):
    """Train the PyTorch twin in its own process; its per-epoch lines go straight to our stdout."""
    result_path = spec_path.with_suffix(".json")
    python = os.environ.get("PYTORCH_PYTHON", "/work/venv-peers/bin/python")
    subprocess.run([python, str(HERE / "char_lstm_torch.py"), str(spec_path), str(result_path)], check=True)
    return json.loads(result_path.read_text())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", nargs="?", default=None, help="the text file (default: tinyshakespeare)")
    parser.add_argument("--minutes", type=float, default=10.0, help="training wall-clock budget (each side)")
    parser.add_argument("--compare", action="store_true", help="also train the same recipe in PyTorch")
    parser.add_argument("--embedding", type=int, default=64)
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--clipnorm", type=float, default=5.0, help="global gradient-norm clip")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--sample-length", type=int, default=300)
    parser.add_argument("--prime", default="ROMEO:\n", help="the text samples start from")
    args = parser.parse_args(argv)

    corpus = find_text(args.path).read_text(encoding="utf-8")
    vocab = text.CharVocabulary(corpus)
    train, val = split_windows(corpus, vocab, args.window)
    fastnn.set_seed(args.seed)
    model = build_model(vocab.size, args.window, args.embedding, args.units)
    optimizer = fastnn.optimizers.Adam(args.learning_rate, epsilon=1e-7, global_clipnorm=args.clipnorm)
    model.compile(optimizer, "sparse_categorical_crossentropy")
    print(f"{len(corpus)} characters, vocabulary of {vocab.size}; {len(train[0])} training and {len(val[0])} "
          f"validation windows of {args.window}; {model.count_params()} parameters; fastnn {fastnn.__version__} "
          f"on {fastnn.cpu_info()['isa']}, {fastnn.get_num_threads()} threads; load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(tmp) / "char_lstm_spec.npz"
        if args.compare:  # the initial weights, before fastnn trains them
            np.savez(spec_path, x_train=train[0], y_train=train[1], x_val=val[0], y_val=val[1],
                     recipe=json.dumps(recipe(args, vocab)),
                     **{f"w{i}": w for i, w in enumerate(model.get_weights())})
        history, seconds = train_fastnn(model, vocab, train, val, args)
        print(f"fastnn: {seconds:.0f} s of training, validation loss {history[-1]['val_loss']:.4f} nats "
              f"({history[-1]['val_loss'] / np.log(2):.4f} bits) per character; load average "
              f"{os.getloadavg()[0]:.2f}", flush=True)
        if not args.compare:
            return
        peer = run_torch(spec_path, args)
    print(f"\nsame network, recipe, initial weights and data order; {args.minutes:g} min of training each "
          f"(load average now {os.getloadavg()[0]:.2f})")
    print(f"{'':8s} {'epochs':>7s} {'windows/s':>10s} {'val nats/char':>14s} {'val bits/char':>14s} "
          f"{'best epoch (nats)':>18s}")
    for name, hist in (("fastnn", history), ("pytorch", peer["history"])):
        last = hist[-1]["val_loss"]
        speed = sum(h["windows"] for h in hist) / sum(h["seconds"] for h in hist)
        best = min(hist, key=lambda h: h["val_loss"])
        print(f"{name:8s} {len(hist):7d} {speed:10.1f} {last:14.4f} {last / np.log(2):14.4f} "
              f"{best['val_loss']:11.4f} ({best['epoch']})")
    print(f"per epoch (val nats/char): fastnn {[round(h['val_loss'], 4) for h in history]}, "
          f"pytorch {[round(h['val_loss'], 4) for h in peer['history']]}")


if __name__ == "__main__":
    sys.exit(main())
