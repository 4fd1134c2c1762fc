"""pytest-benchmark suite for the reference workloads (DESIGN.md "Benchmarks"): every workload x batch x phase in
fastnn, with its GFLOP/s and fraction of the FMA peak, and PyTorch eager side by side when it is installed.

The models, batches and peers are `fastnn.benchmarks` (what ``python -m fastnn bench --peers`` runs, with Keras/TF
and ONNX Runtime too). Each fastnn benchmark also times fastnn and PyTorch interleaved in the same test and stores
both medians and the speed-up (torch / fastnn) in ``extra_info``; nothing asserts a wall time. The parity tests
check that every installed peer computes what fastnn computes from the same weights and batch. Run with::

    python -m pytest bench/test_bench_workloads.py --benchmark-enable -q
"""
import numpy as np
import pytest

import fastnn
from fastnn.benchmarks import peers, runner, workloads

AVAILABLE = {peer: ok for peer, (ok, _) in peers.availability().items()}
THREADS = workloads.bench_threads()
NAMES = [name for name in workloads.WORKLOADS if not workloads.unavailable_reason(name)]
CELLS = [(name, batch, phase) for name in NAMES for batch in workloads.BATCHES for phase in workloads.PHASES]


def _needs(peer):
    return pytest.mark.skipif(not AVAILABLE[peer], reason=f"{peers.LABELS[peer]} is not installed")


def test_every_workload_is_available():
    missing = {name: workloads.unavailable_reason(name) for name in workloads.WORKLOADS if name not in NAMES}
    if missing:
        pytest.skip(f"not benchmarked: {missing}")


@pytest.mark.parametrize("name, batch, phase", CELLS, ids=[f"{n}-{p}-B{b}" for n, b, p in CELLS])
def test_fastnn(benchmark, fma_peak, side_by_side, report_row, name, batch, phase):
    cells, _ = runner.build_cells(name, batch, ["torch"] if AVAILABLE["torch"] else [], THREADS)
    fast = cells["fastnn"].phase(phase)
    benchmark.group = f"{name} {phase} B={batch}"
    benchmark(fast)
    if benchmark.disabled:
        return
    seconds = benchmark.stats.stats.median
    flops = workloads.step_flops(cells["fastnn"].model, batch, phase)
    peak = fma_peak(THREADS)
    info = {"cell": runner.cell_key(name, phase, batch), "fastnn_ms": round(seconds * 1e3, 4),
            "gflops": round(flops / seconds / 1e9, 2), "peak_fraction": round(flops / seconds / 1e9 / peak, 4)}
    if "torch" in cells:
        fastnn_s, torch_s, ratio = side_by_side(fast, cells["torch"].phase(phase), settle=0.1)
        info.update(fastnn_side_by_side_ms=round(fastnn_s * 1e3, 4), torch_ms=round(torch_s * 1e3, 4),
                    speedup_vs_torch=round(ratio, 3))
    benchmark.extra_info.update(info)
    report_row(info, table=f"workloads, {THREADS} threads (FMA peak {peak:.0f} GFLOP/s)")


def _softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("peer", peers.PEERS)
@pytest.mark.parametrize("name", NAMES)
def test_peers_compute_what_fastnn_computes(peer, name):
    """Same weights and batch give the same outputs and, over a few training steps, the same losses."""
    if not AVAILABLE[peer]:
        pytest.skip(f"{peers.LABELS[peer]} is not installed")
    fastnn.set_num_threads(THREADS)
    model = workloads.build_model(name)
    x, y = workloads.make_batch(name, 8)
    peer_cell = peers.make_cell(peer, name, model.get_weights(), x, y, THREADS)
    fast = workloads.fastnn_cell(model, x, y)
    logits = np.asarray(peer_cell.infer())
    np.testing.assert_allclose(fast.infer(), _softmax(logits), atol=2e-5)
    if peer_cell.train_step is not None:
        for _ in range(3):
            np.testing.assert_allclose(fast.train_step(), float(peer_cell.train_step()), rtol=2e-4)
