"""The fused optimizer step on the cnn32 workload's parameters (~1.08 M floats in five layers) against PyTorch's
``optimizer.step()`` with ``foreach=True`` on tensors of the same shapes, for SGD with momentum and for Adam.

The fastnn step is ``optimizer.apply(params, grads, segments)`` on a flat arena laid out as a model's (every tensor
64-byte aligned), so it includes the Python call. Both engines run on `THREADS` threads, measured
interleaved in the same test (medians); the times and the speed-up (torch / fastnn) go to ``extra_info``, and the
same on one thread (keys ending in ``_1thread``). Run::

    python -m pytest bench/test_bench_optimizers.py --benchmark-enable -q
"""
import numpy as np
import pytest

import fastnn
from fastnn._arena import _aligned_empty
from fastnn.benchmarks.runner import measure_interleaved
from fastnn.benchmarks.workloads import bench_threads

THREADS = bench_threads()

try:
    import torch
except ImportError:  # the peer is optional
    torch = None

# cnn32: conv3(32) on 3 channels, conv3(32), conv3(64), fc256 on the 8 x 8 x 64 = 4096 features, fc10.
CNN32_SHAPES = [(3, 3, 3, 32), (32,), (3, 3, 32, 32), (32,), (3, 3, 32, 64), (64,), (4096, 256), (256,),
                (256, 10), (10,)]
LEARNING_RATE = 1e-3
OPTIMIZERS = {
    "sgd_momentum": (lambda: fastnn.optimizers.SGD(LEARNING_RATE, momentum=0.9),
                     lambda torch, p: torch.optim.SGD(p, lr=LEARNING_RATE, momentum=0.9, foreach=True)),
    "adam": (lambda: fastnn.optimizers.Adam(LEARNING_RATE),
             lambda torch, p: torch.optim.Adam(p, lr=LEARNING_RATE, eps=1e-7, foreach=True)),
}
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")


def fastnn_step(name):
    """A callable doing one fastnn optimizer step on a cnn32-shaped arena with random gradients."""
    fastnn.set_num_threads(THREADS)
    rng = np.random.default_rng(0)
    segments, n = [], 0
    for shape in CNN32_SHAPES:
        segments.append((n, int(np.prod(shape))))
        n += -(-segments[-1][1] // 16) * 16
    params, grads = _aligned_empty(n), _aligned_empty(n)
    params[:] = rng.standard_normal(n) * 0.05
    grads[:] = rng.standard_normal(n) * 0.01
    optimizer = OPTIMIZERS[name][0]()
    return lambda: optimizer.apply(params, grads, segments)


def torch_step(name):
    """A callable doing one PyTorch ``optimizer.step()`` on tensors of the cnn32 shapes, gradients set."""
    torch.set_num_threads(THREADS)
    generator = torch.Generator().manual_seed(0)
    tensors = [torch.nn.Parameter(torch.randn(shape, generator=generator) * 0.05) for shape in CNN32_SHAPES]
    for t in tensors:
        t.grad = torch.randn(t.shape, generator=generator) * 0.01
    optimizer = OPTIMIZERS[name][1](torch, tensors)
    return optimizer.step


def _compare(step, peer, threads):
    fastnn.set_num_threads(threads)
    torch.set_num_threads(threads)
    timed = measure_interleaved({"fastnn": step, "torch": peer}, rounds=15, round_seconds=0.03)
    fastnn_ms, torch_ms = (timed[e]["median_s"] * 1e3 for e in ("fastnn", "torch"))
    return {"fastnn_ms": fastnn_ms, "torch_ms": torch_ms, "speedup_vs_torch": torch_ms / fastnn_ms}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_fastnn_optimizer_step(benchmark, name):
    step = fastnn_step(name)
    for _ in range(20):  # state arrays touched, thread pool awake
        step()
    benchmark.group = f"optimizer step cnn32 {name}"
    benchmark(step)
    if torch is not None and not benchmark.disabled:
        peer = torch_step(name)
        benchmark.extra_info.update(_compare(step, peer, THREADS))
        # One thread too: on a shared machine a busy core delays every parallel region by a scheduler tick,
        # which distorts the many-region PyTorch step far more than the fused one.
        benchmark.extra_info.update({f"{key}_1thread": value for key, value in _compare(step, peer, 1).items()})
        fastnn.set_num_threads(THREADS)
        torch.set_num_threads(THREADS)


@needs_torch
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_torch_optimizer_step(benchmark, name):
    step = torch_step(name)
    for _ in range(20):
        step()
    benchmark.group = f"optimizer step cnn32 {name}"
    benchmark(step)
