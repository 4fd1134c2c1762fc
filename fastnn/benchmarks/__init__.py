"""Benchmarks of fastnn that run from an installed wheel: ``python -m fastnn bench``.

* `workloads`: the four reference networks of DESIGN.md (mlp, lenet, cnn32, lstm) built in fastnn, their fixed
  batches, and the GEMMs and FLOPs of their steps derived from the built layers;
* `peers`: the same networks, weights and batches in PyTorch eager, Keras on TensorFlow and ONNX Runtime, each
  only when it is importable;
* `runner`: interleaved timing (A B, B A, ...), medians, per-cell speed-ups;
* `yardstick`: what a time is divided by so it means the same on another or a busier machine (a fixed NumPy
  matmul) and the machine's float32 FMA peak;
* `gate`: the regression gate against a committed baseline of yardstick ratios;
* `report`: the table, Markdown and JSON of a run; `memory`: peak resident memory of a training step.

None of the peers is a dependency of fastnn.
"""
