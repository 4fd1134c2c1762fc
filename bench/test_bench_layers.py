"""Convolution layers of the lenet and cnn32 workloads on their own: forward and backward at batches 1, 32 and
256, on the workloads' thread count ($FASTNN_BENCH_THREADS, default 2).

Each layer is taken from the built workload model (same weights, shapes and activation), fed a random input of its
shape; backward is timed after one forward and computes the weight gradients and, except in a model's first
layer (whose input gradient nothing needs), the input gradient. Each case reports the time, the GFLOP/s of its
GEMMs (`fastnn.benchmarks.workloads.layer_gemms`) and their fraction of the FMA peak measured at the start of the
session. Run::

    python -m pytest bench/test_bench_layers.py --benchmark-enable -q
"""
import numpy as np
import pytest

import fastnn
from fastnn.benchmarks import workloads

CASES = [(name, index, batch, phase) for name in ("lenet", "cnn32")
         for index, layer in enumerate(workloads.build_model(name).layers) if type(layer).__name__ == "Conv2D"
         for batch in workloads.BATCHES for phase in ("forward", "backward")]


@pytest.mark.parametrize("name, index, batch, phase", CASES,
                         ids=[f"{n}-conv{i}-B{b}-{p}" for n, i, b, p in CASES])
def test_conv_layer(benchmark, fma_peak, report_row, name, index, batch, phase):
    threads = workloads.bench_threads()
    fastnn.set_num_threads(threads)
    layer = workloads.build_model(name).layers[index]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch,) + layer.input_shape, dtype=np.float32)
    dy = rng.standard_normal((batch,) + layer.output_shape, dtype=np.float32)
    need_dx = index > 0
    y = layer.forward(x, training=True)
    assert y.shape == dy.shape
    if phase == "forward":
        def run():
            layer.forward(x, training=True)
    else:
        def run():
            layer.backward(dy, need_dx, False)
    for _ in range(3):
        run()
    benchmark.group = f"conv layers {phase}"
    benchmark(run)
    forward, grad_weights, grad_input = workloads.layer_gemms(layer, batch)
    gemms = forward if phase == "forward" else grad_weights + (grad_input if need_dx else [])
    flops = sum(g.flops for g in gemms)
    seconds = benchmark.stats.stats.median if not benchmark.disabled else float("nan")
    peak = fma_peak(threads)
    kh, kw, _, filters = layer.weights[0].shape
    info = {"layer": f"{name} [{index}] conv{kh}x{kw}({filters})", "batch": batch, "phase": phase,
            "gemm": " + ".join(f"{g.m}x{g.k}x{g.n}" for g in gemms), "ms": round(seconds * 1e3, 4),
            "gflops": round(flops / seconds / 1e9, 1), "peak_fraction": round(flops / seconds / 1e9 / peak, 3)}
    benchmark.extra_info.update(info)
    report_row(info, table=f"conv layers, {threads} threads (FMA peak {peak:.0f} GFLOP/s)")
