"""The reference workloads of DESIGN.md ("Benchmarks"), built for fastnn and for PyTorch as a peer.

Each workload is registered in `WORKLOADS` under its name. For one workload and one batch size, `make_cells`
builds a fastnn model and, when PyTorch is installed, the same network in PyTorch starting from the very same
weights (copied from the fastnn model), fed the very same batch. Each engine gets a `Cell` with two callables:

* ``train_step()``: fastnn ``model.train_on_batch(x, y)``; PyTorch ``zero_grad``, forward, ``CrossEntropyLoss``,
  ``backward``, ``optimizer.step()``;
* ``infer()``: fastnn ``model.predict_on_batch(x)``; PyTorch forward under ``torch.inference_mode()``.

Both engines run SGD (learning rate 0.01, momentum 0.9) on `THREADS` threads. Image workloads feed fastnn
channels-last (NHWC) batches and PyTorch the same values in its native NCHW layout (converted once, untimed);
the PyTorch models permute their last feature map to NHWC before flattening, so fastnn's Dense kernels apply
unchanged. The PyTorch networks end in logits
and leave the softmax to ``CrossEntropyLoss``, the usual PyTorch idiom (and what the peer anchors in
``shared/peers`` time); fastnn's final softmax is fused into its loss during training.

Adding a workload (lstm) means writing its two builders and registering a `Workload`.
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
    ``torch.nn.Module`` holding `weights` (fastnn's ``get_weights()`` list, in Keras layouts). `torch_layout`
    turns fastnn's input batch into the array PyTorch is fed (default: the same array).
    """
    name: str
    sample_shape: tuple
    n_classes: int
    build_fastnn: Callable[[], object]
    build_torch: Callable[[list], object]
    torch_layout: Callable[[np.ndarray], np.ndarray] = np.asarray


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


# ---- image workloads: shared helpers -------------------------------------------------------------------------

def _compiled(layer_list):
    """A fastnn Sequential of `layer_list`, compiled as every workload is (SGD with momentum, softmax CE)."""
    model = fastnn.Sequential(layer_list)
    model.compile(optimizer=fastnn.optimizers.SGD(LEARNING_RATE, momentum=MOMENTUM),
                  loss="sparse_categorical_crossentropy")
    return model


def _nchw(x):
    """A channels-last batch (n, h, w, c) as a contiguous channels-first one (n, c, h, w), PyTorch's layout."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _conv_from_keras(kernel, bias, padding):
    """A torch Conv2d holding a Keras-layout kernel (kh, kw, in, out): torch keeps weight as (out, in, kh, kw)."""
    kh, kw, c_in, c_out = kernel.shape
    conv = torch.nn.Conv2d(c_in, c_out, (kh, kw), padding=padding)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))))
        conv.bias.copy_(torch.from_numpy(bias))
    return conv


if TORCH_AVAILABLE:
    class FlattenNHWC(torch.nn.Module):
        """Flatten an NCHW feature map in channels-last order (h, w, c), the order fastnn's Flatten sees."""

        def forward(self, x):
            return x.permute(0, 2, 3, 1).flatten(1)


# ---- lenet: 28x28x1 conv5(6)-pool-conv5(16)-pool-fc120-fc84-fc10, valid padding, ReLU ----------------------

def _lenet_fastnn():
    return _compiled([L.Input((28, 28, 1)), L.Conv2D(6, 5, activation="relu"), L.MaxPool2D(2),
                      L.Conv2D(16, 5, activation="relu"), L.MaxPool2D(2), L.Flatten(),
                      L.Dense(120, activation="relu"), L.Dense(84, activation="relu"),
                      L.Dense(10, activation="softmax")])


def _lenet_torch(weights):
    k1, c1, k2, c2, w1, b1, w2, b2, w3, b3 = weights
    relu, pool = torch.nn.ReLU, torch.nn.MaxPool2d
    return torch.nn.Sequential(_conv_from_keras(k1, c1, 0), relu(), pool(2), _conv_from_keras(k2, c2, 0), relu(),
                               pool(2), FlattenNHWC(), _linear_from_dense(w1, b1), relu(),
                               _linear_from_dense(w2, b2), relu(), _linear_from_dense(w3, b3))


# ---- cnn32: 32x32x3 conv3(32,same)-conv3(32,same)-pool-conv3(64,same)-pool-fc256-fc10, ReLU -----------------

def _cnn32_fastnn():
    return _compiled([L.Input((32, 32, 3)), L.Conv2D(32, 3, padding="same", activation="relu"),
                      L.Conv2D(32, 3, padding="same", activation="relu"), L.MaxPool2D(2),
                      L.Conv2D(64, 3, padding="same", activation="relu"), L.MaxPool2D(2), L.Flatten(),
                      L.Dense(256, activation="relu"), L.Dense(10, activation="softmax")])


def _cnn32_torch(weights):
    k1, c1, k2, c2, k3, c3, w1, b1, w2, b2 = weights
    relu, pool = torch.nn.ReLU, torch.nn.MaxPool2d
    return torch.nn.Sequential(_conv_from_keras(k1, c1, 1), relu(), _conv_from_keras(k2, c2, 1), relu(), pool(2),
                               _conv_from_keras(k3, c3, 1), relu(), pool(2), FlattenNHWC(),
                               _linear_from_dense(w1, b1), relu(), _linear_from_dense(w2, b2))


WORKLOADS = {
    "mlp": Workload("mlp", (784,), 10, _mlp_fastnn, _mlp_torch),
    "lenet": Workload("lenet", (28, 28, 1), 10, _lenet_fastnn, _lenet_torch, _nchw),
    "cnn32": Workload("cnn32", (32, 32, 3), 10, _cnn32_fastnn, _cnn32_torch, _nchw),
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
        cells["torch"] = _torch_cell(workload.build_torch(model.get_weights()), workload.torch_layout(x), y)
    return cells
