"""examples/char_lstm.py: it runs on any text without torch, and its PyTorch twin follows the same recipe."""
import importlib.util
import sys

import numpy as np
import pytest

import fastnn
from conftest import REPO_ROOT


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # (char_lstm_torch is imported by name next to it)
    spec.loader.exec_module(module)
    return module


def test_example_trains_and_samples_within_its_budget(tmp_path, capsys):
    char_lstm = load_example("char_lstm")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog.\n" * 80, encoding="utf-8")
    char_lstm.main([str(corpus), "--minutes", "0.02", "--embedding", "8", "--units", "16", "--window", "20",
                    "--sample-length", "30", "--prime", "the "])
    out = capsys.readouterr().out
    assert "fastnn epoch 1:" in out and "nats =" in out and "bits per char" in out
    assert "--- sample (temperature 0.8) ---\nthe " in out


def test_pytorch_twin_takes_the_same_steps():
    """Same initial weights, one batch after another, Adam with active global clipping: the losses and the
    weights of both stay together (float rounding apart)."""
    torch = pytest.importorskip("torch")
    char_lstm, twin = load_example("char_lstm"), load_example("char_lstm_torch")
    vocab, window, batch, clip = 11, 12, 4, 0.05
    fastnn.set_seed(0)
    model = char_lstm.build_model(vocab, window, 6, 10)
    model.compile(fastnn.optimizers.Adam(3e-3, epsilon=1e-7, global_clipnorm=clip), "sparse_categorical_crossentropy")
    peer = twin.CharLSTM(vocab, 6, 10)
    peer.load_keras_weights(model.get_weights())
    params = [p for p in peer.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=3e-3)
    rng = np.random.default_rng(0)
    for step in range(1, 5):
        x, y = rng.integers(0, vocab, (2, batch, window))
        ours = model.train_on_batch(x, y)
        logits = peer(torch.from_numpy(x))
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), torch.from_numpy(y).reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        assert torch.nn.utils.clip_grad_norm_(params, clip) > clip  # clipping is active
        optimizer.param_groups[0]["eps"] = 1e-7 / np.sqrt(1 - 0.999 ** step)
        optimizer.step()
        assert ours == pytest.approx(loss.item(), rel=1e-5)
    lstm = peer.lstm
    theirs = [peer.embedding.weight, lstm.weight_ih_l0.T, lstm.weight_hh_l0.T, lstm.bias_ih_l0 + lstm.bias_hh_l0,
              peer.head.weight.T, peer.head.bias]
    for mine, other in zip(model.get_weights(), theirs):
        np.testing.assert_allclose(mine, other.detach().numpy(), atol=2e-6)
