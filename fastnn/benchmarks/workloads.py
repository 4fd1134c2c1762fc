"""The reference workloads of DESIGN.md ("Benchmarks") in fastnn, their batches, and the arithmetic of a step.

* **mlp** 784-256-128-10, ReLU;
* **lenet** 28x28x1 conv5(6)-pool-conv5(16)-pool-fc120-fc84-fc10 (valid padding, ReLU);
* **cnn32** 32x32x3 conv3(32,same)-conv3(32,same)-pool-conv3(64,same)-pool-fc256-fc10 (ReLU);
* **lstm** T=32 steps of 64 features, LSTM(128) whose last state feeds fc10; it needs ``fastnn.layers.LSTM``
  and is reported as unavailable without it.

Every model ends in a softmax trained with sparse categorical cross-entropy (fused into the loss) by SGD with
learning rate 0.01 and momentum 0.9. A cell is one workload at one batch size: a train step is
``model.train_on_batch(x, y)``, inference is ``model.predict_on_batch(x)``, on a fixed random batch.

`step_gemms` lists the matrix products a step performs, read off the built layers, from which `step_flops`
counts its floating-point operations (GEMMs only: the elementwise work is a few per cent at most).
"""
import os
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

import fastnn
from fastnn import layers as L

BATCHES = (1, 32, 256)
PHASES = ("train", "infer")
LEARNING_RATE = 0.01
MOMENTUM = 0.9
DEFAULT_THREADS = 2  # the thread count of DESIGN.md's "Peers to beat" table


def bench_threads():
    """The benchmarks' thread count: $FASTNN_BENCH_THREADS, else `DEFAULT_THREADS`."""
    value = os.environ.get("FASTNN_BENCH_THREADS", "")
    if not value:
        return DEFAULT_THREADS
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"FASTNN_BENCH_THREADS must be a positive integer, got {value!r}")
    return int(value)


class Cell(NamedTuple):
    """One engine's model for one batch size, with its two timed callables."""
    model: object
    train_step: Callable[[], object]
    infer: Callable[[], object]

    def phase(self, name):
        """The callable timed for a phase name in `PHASES`; None when the engine cannot run that phase."""
        return {"train": self.train_step, "infer": self.infer}[name]


@dataclass(frozen=True)
class Workload:
    """A reference network: fastnn's per-sample input shape, its class count and its fastnn layers.

    `layers()` returns fresh fastnn layers, or raises `WorkloadUnavailable` when this fastnn lacks one of them.
    """
    name: str
    sample_shape: tuple
    n_classes: int
    layers: Callable[[], list]


class WorkloadUnavailable(RuntimeError):
    """This fastnn cannot build the workload (a layer it needs is not implemented)."""


def _mlp():
    return [L.Dense(256, activation="relu"), L.Dense(128, activation="relu"), L.Dense(10, activation="softmax")]


def _lenet():
    return [L.Conv2D(6, 5, activation="relu"), L.MaxPool2D(2), L.Conv2D(16, 5, activation="relu"), L.MaxPool2D(2),
            L.Flatten(), L.Dense(120, activation="relu"), L.Dense(84, activation="relu"),
            L.Dense(10, activation="softmax")]


def _cnn32():
    return [L.Conv2D(32, 3, padding="same", activation="relu"), L.Conv2D(32, 3, padding="same", activation="relu"),
            L.MaxPool2D(2), L.Conv2D(64, 3, padding="same", activation="relu"), L.MaxPool2D(2), L.Flatten(),
            L.Dense(256, activation="relu"), L.Dense(10, activation="softmax")]


def _lstm():
    lstm = getattr(L, "LSTM", None)
    if lstm is None:
        raise WorkloadUnavailable("fastnn.layers.LSTM does not exist in this fastnn")
    return [lstm(128), L.Dense(10, activation="softmax")]


WORKLOADS = {
    "mlp": Workload("mlp", (784,), 10, _mlp),
    "lenet": Workload("lenet", (28, 28, 1), 10, _lenet),
    "cnn32": Workload("cnn32", (32, 32, 3), 10, _cnn32),
    "lstm": Workload("lstm", (32, 64), 10, _lstm),
}


def unavailable_reason(name):
    """Why this fastnn cannot build workload `name`, or None when it can."""
    try:
        WORKLOADS[name].layers()
    except WorkloadUnavailable as error:
        return str(error)
    return None


def build_model(name, seed=0):
    """A compiled fastnn model of workload `name` (seeded), built for its input shape."""
    workload = WORKLOADS[name]
    fastnn.set_seed(seed)
    model = fastnn.Sequential([L.Input(workload.sample_shape)] + workload.layers())
    model.compile(optimizer=fastnn.optimizers.SGD(LEARNING_RATE, momentum=MOMENTUM),
                  loss="sparse_categorical_crossentropy")
    return model


def make_batch(name, batch, seed=0):
    """The fixed batch of one cell: x float32 (batch, *sample_shape) channels-last, y int64 labels."""
    workload = WORKLOADS[name]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch,) + workload.sample_shape, dtype=np.float32)
    y = rng.integers(0, workload.n_classes, batch, dtype=np.int64)
    return x, y


def fastnn_cell(model, x, y):
    """The timed callables of a fastnn model on a fixed batch."""
    return Cell(model, lambda: model.train_on_batch(x, y), lambda: model.predict_on_batch(x))


# ---- the arithmetic of a step ----------------------------------------------------------------------------------

class Gemm(NamedTuple):
    """One matrix product op(A) (m x k) @ op(B) (k x n), done `count` times in a step.

    `role` is "forward", "grad_weights" (A transposed: inputs^T @ output gradients) or "grad_input" (B
    transposed: output gradients @ weights^T).
    """
    layer: str
    role: str
    m: int
    k: int
    n: int
    trans_a: bool
    trans_b: bool
    count: int = 1

    @property
    def flops(self):
        return 2 * self.m * self.k * self.n * self.count


def layer_gemms(layer, batch):
    """(forward, grad_weights, grad_input) lists of `Gemm` for one built layer at a batch size."""
    kind = type(layer).__name__
    name = layer.name
    if kind == "Dense":
        fan_in, units = layer.weights[0].shape
        rows = batch * int(np.prod(layer.input_shape[:-1], dtype=np.int64))
        return ([Gemm(name, "forward", rows, fan_in, units, False, False)],
                [Gemm(name, "grad_weights", fan_in, rows, units, True, False)],
                [Gemm(name, "grad_input", rows, units, fan_in, False, True)])
    if kind == "Conv2D":
        kh, kw, c_in, filters = layer.weights[0].shape
        rows, k = batch * layer.output_shape[0] * layer.output_shape[1], kh * kw * c_in
        return ([Gemm(name, "forward", rows, k, filters, False, False)],
                [Gemm(name, "grad_weights", k, rows, filters, True, False)],
                [Gemm(name, "grad_input", rows, filters, k, False, True)])
    if kind in ("LSTM", "GRU", "SimpleRNN"):
        # One projection of all time steps' inputs, then one recurrent product per step; backward mirrors it
        # with the weight gradients merged over the steps.
        (fan_in, gates), (units, _) = layer.weights[0].shape, layer.weights[1].shape
        steps = layer.input_shape[0]
        rows = batch * steps
        return ([Gemm(name, "forward", rows, fan_in, gates, False, False),
                 Gemm(name, "forward", batch, units, gates, False, False, steps)],
                [Gemm(name, "grad_weights", fan_in, rows, gates, True, False),
                 Gemm(name, "grad_weights", units, rows, gates, True, False)],
                [Gemm(name, "grad_input", rows, gates, fan_in, False, True),
                 Gemm(name, "grad_input", batch, gates, units, False, True, steps)])
    return [], [], []


def step_gemms(model, batch, phase):
    """The GEMMs of one step of a built model: `phase` "infer" is the forward pass; "train" adds the weight
    gradients of every layer and the input gradients of all layers but the first (nothing needs those)."""
    gemms = []
    for index, layer in enumerate(model.layers):
        forward, grad_weights, grad_input = layer_gemms(layer, batch)
        gemms += forward
        if phase == "train":
            gemms += grad_weights
            if index > 0:
                gemms += grad_input
            elif type(layer).__name__ in ("LSTM", "GRU", "SimpleRNN"):
                gemms += grad_input[1:]  # the recurrent state's gradient is needed even in the first layer
    return gemms


def step_flops(model, batch, phase):
    """Floating-point operations of the GEMMs of one step (see `step_gemms`)."""
    return sum(g.flops for g in step_gemms(model, batch, phase))
