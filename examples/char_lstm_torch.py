"""The PyTorch side of ``char_lstm.py --compare`` (run by it with a Python that has torch; needs no fastnn).

    python examples/char_lstm_torch.py SPEC.npz RESULT.json

SPEC.npz (written by char_lstm.py) holds the data (x_train, y_train, x_val, y_val: windows of character ids and
their next characters), fastnn's initial weights in Keras layout (w0..w5: embeddings; LSTM kernel, recurrent
kernel, bias; Dense kernel, bias) and the recipe as JSON (`recipe`). This trains the same network from the same
weights with the same recipe and data order, for the same training wall-clock budget, and writes the
validation losses to RESULT.json.
"""
import json
import sys
import time

import numpy as np
import torch
from torch import nn


class CharLSTM(nn.Module):
    def __init__(self, vocab_size, embedding_dim, units):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, units, batch_first=True)
        self.head = nn.Linear(units, vocab_size)

    def forward(self, ids):
        return self.head(self.lstm(self.embedding(ids))[0])

    def load_keras_weights(self, w):
        """Keras layouts: kernels (in, out) are the transposes of PyTorch's; gates i, f, c, o in both."""
        with torch.no_grad():
            self.embedding.weight.copy_(torch.from_numpy(w[0]))
            self.lstm.weight_ih_l0.copy_(torch.from_numpy(w[1].T.copy()))
            self.lstm.weight_hh_l0.copy_(torch.from_numpy(w[2].T.copy()))
            self.lstm.bias_ih_l0.copy_(torch.from_numpy(w[3]))
            self.lstm.bias_hh_l0.zero_()
            self.head.weight.copy_(torch.from_numpy(w[4].T.copy()))
            self.head.bias.copy_(torch.from_numpy(w[5]))
        # Keras has one LSTM bias; PyTorch's second one, trained too, would double the bias's Adam steps
        self.lstm.bias_hh_l0.requires_grad_(False)


def validation_loss(model, x_val, y_val, batch_size):
    """Mean cross-entropy per character (nats) over the validation windows."""
    model.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(x_val), batch_size):
            logits = model(x_val[start:start + batch_size])
            total += nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 y_val[start:start + batch_size].reshape(-1),
                                                 reduction="sum").item()
    model.train()
    return total / y_val.numel()


def main(spec_path, result_path):
    spec = np.load(spec_path)
    recipe = json.loads(str(spec["recipe"]))
    torch.set_num_threads(recipe["threads"])
    torch.manual_seed(recipe["seed"])
    x_train, y_train = (torch.from_numpy(spec[k].astype(np.int64)) for k in ("x_train", "y_train"))
    x_val, y_val = (torch.from_numpy(spec[k].astype(np.int64)) for k in ("x_val", "y_val"))
    weights = [spec[f"w{i}"] for i in range(6)]
    model = CharLSTM(recipe["vocab_size"], recipe["embedding_dim"], recipe["units"])
    model.load_keras_weights(weights)
    beta_1, beta_2, epsilon = recipe["beta_1"], recipe["beta_2"], recipe["epsilon"]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=recipe["learning_rate"], betas=(beta_1, beta_2))
    budget = recipe["minutes"] * 60.0
    batch = recipe["batch_size"]
    n = len(x_train)
    trained, steps, epochs, history = 0.0, 0, 0, []
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    while trained < budget:
        order = torch.from_numpy(np.random.default_rng(recipe["seed"] + epochs).permutation(n))
        start = time.perf_counter()
        total, seen = 0.0, 0
        for first in range(0, n, batch):
            idx = order[first:first + batch]
            logits = model(x_train[idx])
            loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y_train[idx].reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, recipe["global_clipnorm"])
            steps += 1
            # fastnn (Keras) adds epsilon to sqrt(v) before bias correction; this eps takes the same steps
            optimizer.param_groups[0]["eps"] = epsilon / np.sqrt(1.0 - beta_2 ** steps)
            optimizer.step()
            total += loss.item() * len(idx)
            seen += len(idx)
            if trained + time.perf_counter() - start >= budget:
                break
        seconds = time.perf_counter() - start
        trained += seconds
        epochs += 1
        val = validation_loss(model, x_val, y_val, 256)
        history.append({"epoch": epochs, "windows": seen, "seconds": seconds, "train_loss": total / seen,
                        "val_loss": val})
        print(f"torch epoch {epochs}: {seen} windows in {seconds:.1f} s ({seen / seconds:.1f} windows/s), "
              f"train loss {total / seen:.4f}, val loss {val:.4f} nats = {val / np.log(2):.4f} bits per char",
              flush=True)
    with open(result_path, "w") as f:
        json.dump({"steps": steps, "train_seconds": trained, "history": history,
                   "val_loss": history[-1]["val_loss"]}, f)


if __name__ == "__main__":
    main(*sys.argv[1:3])
