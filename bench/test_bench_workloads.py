"""pytest-benchmark suite for the reference workloads (DESIGN.md "Benchmarks"): fastnn and, when installed,
PyTorch, for every batch size and phase.

Each fastnn benchmark also times fastnn and PyTorch side by side in the same test (conftest's alternating-block
timer) and stores both medians and the speed-up (torch / fastnn) in ``extra_info``; nothing asserts a wall time. Run with::

    python -m pytest bench/test_bench_workloads.py --benchmark-enable -q
"""
import numpy as np
import pytest

import workloads

CELLS = [(name, batch, phase) for name in workloads.WORKLOADS for batch in workloads.BATCHES
         for phase in workloads.PHASES]
CELL_IDS = [f"{name}-{phase}-B{batch}" for name, batch, phase in CELLS]
needs_torch = pytest.mark.skipif(not workloads.TORCH_AVAILABLE, reason="torch is not installed")


def _group(benchmark, name, batch, phase):
    benchmark.group = f"{name} {phase} B={batch}"


@pytest.mark.parametrize("name, batch, phase", CELLS, ids=CELL_IDS)
def test_fastnn(benchmark, side_by_side, name, batch, phase):
    cells = workloads.make_cells(name, batch)
    _group(benchmark, name, batch, phase)
    benchmark(cells["fastnn"].phase(phase))
    if "torch" in cells and not benchmark.disabled:
        fastnn_s, torch_s = side_by_side(cells["fastnn"].phase(phase), cells["torch"].phase(phase))
        benchmark.extra_info.update(fastnn_ms=fastnn_s * 1e3, torch_ms=torch_s * 1e3,
                                    speedup_vs_torch=torch_s / fastnn_s)


@needs_torch
@pytest.mark.parametrize("name, batch, phase", CELLS, ids=CELL_IDS)
def test_torch(benchmark, name, batch, phase):
    cells = workloads.make_cells(name, batch)
    _group(benchmark, name, batch, phase)
    benchmark(cells["torch"].phase(phase))


@needs_torch
@pytest.mark.parametrize("name", sorted(workloads.WORKLOADS))
def test_engines_do_the_same_work(name):
    """Same weights and batch give the same outputs and the same losses over a few training steps."""
    cells = workloads.make_cells(name, 32)
    fast, peer = cells["fastnn"], cells["torch"]
    probs = fast.infer()
    logits = peer.infer().numpy()
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(probs, expected / expected.sum(axis=1, keepdims=True), atol=1e-5)
    for _ in range(3):
        np.testing.assert_allclose(fast.train_step(), peer.train_step().item(), rtol=1e-4)
