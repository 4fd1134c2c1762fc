"""The reference workloads in other engines, from the very weights and batch of the fastnn model.

* **torch**: PyTorch eager. Images in PyTorch's NCHW layout (the same values, converted once, untimed); the last
  feature map is permuted to channels-last before flattening, so the fastnn Dense kernels apply unchanged. A
  train step is ``zero_grad``, forward, ``CrossEntropyLoss``, ``backward``, ``optimizer.step()``; inference is
  the forward pass under ``torch.inference_mode()``.
* **keras**: Keras 3 on TensorFlow, channels-last like fastnn, weights set with ``set_weights`` (the layouts are
  Keras'); ``train_on_batch`` and ``predict_on_batch``, as in fastnn.
* **ort**: ONNX Runtime running the PyTorch model exported to ONNX (dynamic batch); inference only.

The peers end in logits and leave the softmax to their loss (their usual idiom); fastnn fuses its final softmax
into the loss when training and applies it when predicting. Every engine is set to the same thread count and
SGD (learning rate 0.01, momentum 0.9). A peer is used only when it can be imported: none is a dependency.
"""
import importlib
import os
import tempfile
import warnings

import numpy as np

from . import workloads

PEERS = ("torch", "keras", "ort")
LABELS = {"fastnn": "fastnn", "torch": "PyTorch", "keras": "Keras/TF", "ort": "ONNX Runtime"}
_MODULES = {"torch": ("torch",), "keras": ("tensorflow", "keras"), "ort": ("torch", "onnx", "onnxruntime")}


def _import(name):
    if name in ("tensorflow", "keras"):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    return importlib.import_module(name)


def availability():
    """{peer: (True, "versions") or (False, "why not")} for every peer in `PEERS` (imports them)."""
    found = {}
    for peer, modules in _MODULES.items():
        try:
            found[peer] = (True, " ".join(f"{m} {_import(m).__version__}" for m in modules))
        except Exception as error:  # an optional engine that fails to import is just absent
            found[peer] = (False, f"{type(error).__name__}: {error}")
    return found


# ---- PyTorch ---------------------------------------------------------------------------------------------------

def _linear(torch, kernel, bias):
    """A torch Linear holding a Keras-layout Dense kernel (in, out): torch keeps its weight as (out, in)."""
    linear = torch.nn.Linear(*kernel.shape)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.T)))
        linear.bias.copy_(torch.from_numpy(bias))
    return linear


def _conv(torch, kernel, bias, padding):
    """A torch Conv2d holding a Keras-layout kernel (kh, kw, in, out): torch keeps (out, in, kh, kw)."""
    kh, kw, c_in, c_out = kernel.shape
    conv = torch.nn.Conv2d(c_in, c_out, (kh, kw), padding=padding)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))))
        conv.bias.copy_(torch.from_numpy(bias))
    return conv


def _torch_modules(torch):
    nn = torch.nn

    class FlattenNHWC(nn.Module):
        """Flattens an NCHW feature map in channels-last order (h, w, c), the order fastnn's Flatten sees."""

        def forward(self, x):
            return x.permute(0, 2, 3, 1).flatten(1)

    class LastStateLSTM(nn.Module):
        """LSTM over (batch, steps, features) whose last hidden state feeds a Linear layer."""

        def __init__(self, kernel, recurrent, bias, dense_kernel, dense_bias):
            super().__init__()
            self.lstm = nn.LSTM(kernel.shape[0], recurrent.shape[0], batch_first=True)
            with torch.no_grad():  # Keras gates i, f, c, o are torch's i, f, g, o
                self.lstm.weight_ih_l0.copy_(torch.from_numpy(np.ascontiguousarray(kernel.T)))
                self.lstm.weight_hh_l0.copy_(torch.from_numpy(np.ascontiguousarray(recurrent.T)))
                self.lstm.bias_ih_l0.copy_(torch.from_numpy(bias))
                self.lstm.bias_hh_l0.zero_()
            # torch adds two biases: training both would move their sum twice as fast as Keras' single bias
            self.lstm.bias_hh_l0.requires_grad_(False)
            self.fc = _linear(torch, dense_kernel, dense_bias)

        def forward(self, x):
            return self.fc(self.lstm(x)[0][:, -1])

    return FlattenNHWC, LastStateLSTM


def torch_module(name, weights):
    """Workload `name` as a ``torch.nn.Module`` holding fastnn's `weights` (Keras layouts, get_weights order)."""
    torch = _import("torch")
    nn = torch.nn
    flatten, lstm = _torch_modules(torch)
    if name == "mlp":
        w1, b1, w2, b2, w3, b3 = weights
        return nn.Sequential(_linear(torch, w1, b1), nn.ReLU(), _linear(torch, w2, b2), nn.ReLU(),
                             _linear(torch, w3, b3))
    if name == "lenet":
        k1, c1, k2, c2, w1, b1, w2, b2, w3, b3 = weights
        return nn.Sequential(_conv(torch, k1, c1, 0), nn.ReLU(), nn.MaxPool2d(2), _conv(torch, k2, c2, 0), nn.ReLU(),
                             nn.MaxPool2d(2), flatten(), _linear(torch, w1, b1), nn.ReLU(), _linear(torch, w2, b2),
                             nn.ReLU(), _linear(torch, w3, b3))
    if name == "cnn32":
        k1, c1, k2, c2, k3, c3, w1, b1, w2, b2 = weights
        return nn.Sequential(_conv(torch, k1, c1, 1), nn.ReLU(), _conv(torch, k2, c2, 1), nn.ReLU(), nn.MaxPool2d(2),
                             _conv(torch, k3, c3, 1), nn.ReLU(), nn.MaxPool2d(2), flatten(),
                             _linear(torch, w1, b1), nn.ReLU(), _linear(torch, w2, b2))
    if name == "lstm":
        return lstm(*weights)
    raise KeyError(name)


def torch_layout(x):
    """fastnn's batch as PyTorch is fed it: images channels-first (NCHW), anything else unchanged."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if x.ndim == 4 else x


def torch_cell(name, weights, x, y, threads):
    torch = _import("torch")
    torch.set_num_threads(threads)
    module = torch_module(name, weights)
    tx, ty = torch.from_numpy(torch_layout(x)), torch.from_numpy(y)
    optimizer = torch.optim.SGD(module.parameters(), lr=workloads.LEARNING_RATE, momentum=workloads.MOMENTUM)
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

    return workloads.Cell(module, train_step, infer)


# ---- Keras on TensorFlow ---------------------------------------------------------------------------------------

def _keras_layers(keras, name):
    L = keras.layers
    if name == "mlp":
        return [L.Dense(256, "relu"), L.Dense(128, "relu"), L.Dense(10)]
    if name == "lenet":
        return [L.Conv2D(6, 5, activation="relu"), L.MaxPooling2D(2), L.Conv2D(16, 5, activation="relu"),
                L.MaxPooling2D(2), L.Flatten(), L.Dense(120, "relu"), L.Dense(84, "relu"), L.Dense(10)]
    if name == "cnn32":
        return [L.Conv2D(32, 3, padding="same", activation="relu"), L.Conv2D(32, 3, padding="same", activation="relu"),
                L.MaxPooling2D(2), L.Conv2D(64, 3, padding="same", activation="relu"), L.MaxPooling2D(2),
                L.Flatten(), L.Dense(256, "relu"), L.Dense(10)]
    if name == "lstm":
        return [L.LSTM(128), L.Dense(10)]
    raise KeyError(name)


def _set_tensorflow_threads(tf, threads):
    try:  # possible only before TensorFlow runs its first operation
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass
    if tf.config.threading.get_intra_op_parallelism_threads() != threads:
        raise RuntimeError(f"TensorFlow already runs on {tf.config.threading.get_intra_op_parallelism_threads()} "
                           f"threads in this process; {threads} were asked for")


def keras_cell(name, weights, x, y, threads):
    tf, keras = _import("tensorflow"), _import("keras")
    _set_tensorflow_threads(tf, threads)
    model = keras.Sequential([keras.Input(x.shape[1:])] + _keras_layers(keras, name))
    model.set_weights(weights)
    model.compile(optimizer=keras.optimizers.SGD(workloads.LEARNING_RATE, momentum=workloads.MOMENTUM),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return workloads.Cell(model, lambda: model.train_on_batch(x, y), lambda: model.predict_on_batch(x))


# ---- ONNX Runtime ----------------------------------------------------------------------------------------------

def ort_cell(name, weights, x, y, threads):
    torch, ort = _import("torch"), _import("onnxruntime")
    module = torch_module(name, weights).eval()
    tx = torch_layout(x)
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter needs no onnxscript
        path = os.path.join(folder, f"{name}.onnx")
        torch.onnx.export(module, (torch.from_numpy(tx),), path, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, dynamo=False)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return workloads.Cell(session, None, lambda: session.run(None, {"x": tx})[0])


BUILDERS = {"torch": torch_cell, "keras": keras_cell, "ort": ort_cell}


def make_cell(peer, name, weights, x, y, threads):
    """Peer `peer`'s `Cell` for workload `name` holding `weights`, fed the batch (x, y) in fastnn's layout."""
    return BUILDERS[peer](name, weights, x, y, threads)
