"""The image workloads (lenet, cnn32) side by side: inference against PyTorch eager and ONNX Runtime, training
steps against PyTorch eager and Keras (TensorFlow backend).

The PyTorch model of `workloads.make_cells` (same weights as fastnn's) is exported with ``torch.onnx.export``
and run by ONNX Runtime on `workloads.THREADS` intra-op threads; the Keras model is the same network in
Keras' own layout (fastnn's), given fastnn's weights, compiled with the same SGD and loss, trained by
``train_on_batch``. The engines are timed interleaved by `compare_mlp.measure_interleaved` (medians); ratios are
peer / fastnn (above 1: fastnn is faster). Needs torch, onnxruntime and, for --phase train, tensorflow (the
peers' venv)::

    python bench/compare_conv_inference.py [--workloads lenet,cnn32] [--batches 1,32,256] [--rounds 9]
                                           [--phase infer|train]
"""
import argparse
import io
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

import workloads  # noqa: E402
from compare_mlp import measure_interleaved  # noqa: E402


def ort_session(module, x):
    """An ONNX Runtime session running `module` (exported on the example input x, NCHW) on THREADS threads."""
    buf = io.BytesIO()
    torch.onnx.export(module.eval(), (torch.from_numpy(x),), buf, input_names=["x"], output_names=["y"],
                      dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = workloads.THREADS
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(buf.getvalue(), options, providers=["CPUExecutionProvider"])
    return lambda: session.run(None, {"x": x})


def compare(name, batch, rounds):
    cells = workloads.make_cells(name, batch)
    fastnn_cell, torch_cell = cells["fastnn"], cells["torch"]
    x, _ = workloads.make_batch(workloads.WORKLOADS[name], batch)
    tx = workloads.WORKLOADS[name].torch_layout(x)
    run_ort = ort_session(torch_cell.model, tx)
    expected = fastnn_cell.infer()
    np.testing.assert_allclose(run_ort()[0], torch_cell.infer().numpy(), rtol=1e-3, atol=1e-4)
    logits = torch_cell.infer().numpy()
    np.testing.assert_allclose(expected, np.exp(logits) / np.exp(logits).sum(1, keepdims=True), rtol=1e-3,
                               atol=1e-5)
    timed = measure_interleaved({"fastnn": fastnn_cell.infer, "torch": torch_cell.infer, "ort": run_ort}, rounds)
    ms = {k: v["median_s"] * 1e3 for k, v in timed.items()}
    print(f"{name:6} {batch:5d} {ms['fastnn']:10.4f} {ms['torch']:10.4f} {ms['ort']:10.4f} "
          f"{ms['torch'] / ms['fastnn']:9.2f}x {ms['ort'] / ms['fastnn']:9.2f}x", flush=True)


def keras_train_step(name, fastnn_model, x, y):
    """Keras' train_on_batch on the same network, weights, optimizer and loss as fastnn's."""
    import keras
    layers = {"Conv2D": lambda l: keras.layers.Conv2D(l.filters, l.kernel_size, padding=l.padding,
                                                        activation=l.activation),
              "MaxPool2D": lambda l: keras.layers.MaxPooling2D(l.pool_size),
              "Flatten": lambda l: keras.layers.Flatten(),
              "Dense": lambda l: keras.layers.Dense(l.units, activation=l.activation)}
    model = keras.Sequential([keras.Input(workloads.WORKLOADS[name].sample_shape)]
                             + [layers[type(l).__name__](l) for l in fastnn_model.layers])
    model.set_weights(fastnn_model.get_weights())
    model.compile(optimizer=keras.optimizers.SGD(workloads.LEARNING_RATE, momentum=workloads.MOMENTUM),
                  loss="sparse_categorical_crossentropy")
    return lambda: model.train_on_batch(x, y)


def compare_train(name, batch, rounds):
    cells = workloads.make_cells(name, batch)
    x, y = workloads.make_batch(workloads.WORKLOADS[name], batch)
    fns = {"fastnn": cells["fastnn"].train_step, "torch": cells["torch"].train_step,
           "keras": keras_train_step(name, cells["fastnn"].model, x, y)}
    ms = {k: v["median_s"] * 1e3 for k, v in measure_interleaved(fns, rounds).items()}
    print(f"{name:6} {batch:5d} {ms['fastnn']:10.4f} {ms['torch']:10.4f} {ms['keras']:10.4f} "
          f"{ms['torch'] / ms['fastnn']:9.2f}x {ms['keras'] / ms['fastnn']:9.2f}x", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="lenet,cnn32")
    parser.add_argument("--batches", default="1,32,256")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--phase", choices=("infer", "train"), default="infer")
    args = parser.parse_args()
    train = args.phase == "train"
    if train:
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(workloads.THREADS)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    peer = "keras" if train else "ort"
    print(f"torch={torch.__version__} onnxruntime={ort.__version__} threads={workloads.THREADS} phase={args.phase}")
    print(f"{'model':6} {'batch':>5} {'fastnn ms':>10} {'torch ms':>10} {peer + ' ms':>10} {'torch/fnn':>10} "
          f"{peer + '/fnn':>10}")
    for name in args.workloads.split(","):
        for batch in map(int, args.batches.split(",")):
            (compare_train if train else compare)(name, batch, args.rounds)


if __name__ == "__main__":
    main()
