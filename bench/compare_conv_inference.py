"""Inference of the image workloads (lenet, cnn32) side by side: fastnn, PyTorch eager and ONNX Runtime.

The PyTorch model of `workloads.make_cells` (same weights as fastnn's) is exported with ``torch.onnx.export``
and run by ONNX Runtime on `workloads.THREADS` intra-op threads. The three engines are timed interleaved by
`compare_mlp.measure_interleaved` (medians); ratios are PyTorch / fastnn and ONNX Runtime / fastnn (above 1:
fastnn is faster). Needs torch and onnxruntime (the peers' venv)::

    python bench/compare_conv_inference.py [--workloads lenet,cnn32] [--batches 1,32,256] [--rounds 9]
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="lenet,cnn32")
    parser.add_argument("--batches", default="1,32,256")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    print(f"torch={torch.__version__} onnxruntime={ort.__version__} threads={workloads.THREADS}")
    print(f"{'model':6} {'batch':>5} {'fastnn ms':>10} {'torch ms':>10} {'ort ms':>10} {'torch/fnn':>10} "
          f"{'ort/fnn':>10}")
    for name in args.workloads.split(","):
        for batch in map(int, args.batches.split(",")):
            compare(name, batch, args.rounds)


if __name__ == "__main__":
    main()
