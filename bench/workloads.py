"""The reference workloads of DESIGN.md ("Benchmarks"), built for fastnn and for PyTorch as a peer.

Each workload is registered in `WORKLOADS` under its name. For one workload and one batch size, `make_cells`
builds a fastnn model and, when PyTorch is installed, the same network in PyTorch starting from the very same
weights (copied from the fastnn model), fed the very same batch. Each engine gets a `Cell` with two callables:

* ``train_step()``: fastnn ``model.train_on_batch(x, y)``; PyTorch ``zero_grad``, forward, ``CrossEntropyLoss``,
  ``backward``, ``optimizer.step()``;
* ``infer()``: fastnn ``model.predict_on_batch(x)``; PyTorch forward under ``torch.inference_mode()``.

Both engines run SGD (learning rate 0.01, momentum 0.9) on `THREADS` threads. The PyTorch networks end in logits
and leave the softmax to ``CrossEntropyLoss``, the usual PyTorch idiom (and what the peer anchors in
``shared/peers`` time); fastnn's final softmax is fused into its loss during training.

Adding a workload (lenet, cnn32, lstm) means writing its two builders and registering a `Workload`.
"""
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

import fastnn
from fastnn import layers as L

try:
    import torch
except ImportError:  # the peer is optional
    torch = None

TORCH_AVAILABLE = torch is not None
BATCHES = (1, 32, 256)
PHASES = ("train", "infer")
THREADS = 2
LEARNING_RATE = 0.01
MOMENTUM = 0.9


class Cell(NamedTuple):
    """One engine's model for one batch size, with its two timed callables."""
    model: object
    train_step: Callable[[], object]
    infer: Callable[[], object]

    def phase(self, name):
        """The callable timed for a phase name in `PHASES`."""
        return {"train": self.train_step, "infer": self.infer}[name]


@dataclass(frozen=True)
class Workload:
    """A reference network: fastnn's per-sample input shape, its class count and its two builders.

    `build_fastnn()` returns a compiled fastnn model; `build_torch(weights)` returns the same network as a
    ``torch.nn.Module`` holding `weights` (fastnn's ``get_weights()`` list, in Keras layouts).
    """
    name: str
    sample_shape: tuple
    n_classes: int
    build_fastnn: Callable[[], object]
    build_torch: Callable[[list], object]


# ---- mlp: 784-256-128-10, ReLU --------------------------------------------------------------------------

def _mlp_fastnn():
    model = fastnn.Sequential([L.Input((784,)), L.Dense(256, activation="relu"), L.Dense(128, activation="relu"),
                               L.Dense(10, activation="softmax")])
    model.compile(optimizer=fastnn.optimizers.SGD(LEARNING_RATE, momentum=MOMENTUM),
                  loss="sparse_categorical_crossentropy")
    return model


def _linear_from_dense(kernel, bias):
    """A torch Linear holding a Keras-layout Dense kernel (in, out) and bias: torch keeps weight as (out, in)."""
    linear = torch.nn.Linear(*kernel.shape)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.T)))
        linear.bias.copy_(torch.from_numpy(bias))
    return linear


def _mlp_torch(weights):
    w1, b1, w2, b2, w3, b3 = weights
    return torch.nn.Sequential(_linear_from_dense(w1, b1), torch.nn.ReLU(), _linear_from_dense(w2, b2),
                               torch.nn.ReLU(), _linear_from_dense(w3, b3))


WORKLOADS = {
    "mlp": Workload("mlp", (784,), 10, _mlp_fastnn, _mlp_torch),
}


# ---- cells ---------------------------------------------------------------------------------------------------

def make_batch(workload, batch, seed=0):
    """A fixed batch (x float32 in fastnn's layout, y int64 class labels) for one workload and batch size."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch,) + workload.sample_shape, dtype=np.float32)
    y = rng.integers(0, workload.n_classes, batch, dtype=np.int64)
    return x, y


def _fastnn_cell(model, x, y):
    return Cell(model, lambda: model.train_on_batch(x, y), lambda: model.predict_on_batch(x))


def _torch_cell(module, x, y):
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    optimizer = torch.optim.SGD(module.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
    loss_fn = torch.nn.CrossEntropyLoss()

    def train_step():
        optimizer.zero_grad()
        loss = loss_fn(module(tx), ty)
        loss.backward()
        optimizer.step()
        return loss

    def infer():
        with torch.inference_mode():
            return module(tx)

    return Cell(module, train_step, infer)


def make_cells(name, batch, seed=0):
    """Fresh models for workload `name` at one batch size: {"fastnn": Cell, "torch": Cell}.

    The "torch" entry is missing when PyTorch is not installed. Both models start from the same weights and
    see the same batch; the thread counts of both engines are set to `THREADS`.
    """
    workload = WORKLOADS[name]
    fastnn.set_num_threads(THREADS)
    fastnn.set_seed(seed)
    model = workload.build_fastnn()
    x, y = make_batch(workload, batch, seed)
    cells = {"fastnn": _fastnn_cell(model, x, y)}
    if TORCH_AVAILABLE:
        torch.set_num_threads(THREADS)
        cells["torch"] = _torch_cell(workload.build_torch(model.get_weights()), x, y)
    return cells
