"""Peak memory of a cnn32 batch-256 training step, fastnn and PyTorch, each in a fresh process
(`fastnn.benchmarks.memory` explains the method: growth of the resident set over what the imports and the data
take, sampled every millisecond and from the kernel's high-water mark). Run::

    python -m pytest bench/test_bench_memory.py --benchmark-enable -q -s
"""
import importlib.util

import pytest

from fastnn.benchmarks import memory

ENGINES = ["fastnn", "torch"]


@pytest.mark.parametrize("engine", ENGINES)
def test_cnn32_batch256_training_memory(benchmark, report_row, engine):
    if engine == "torch" and importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    if benchmark.disabled:
        pytest.skip("a measurement, not a test: run with --benchmark-enable")
    result = benchmark.pedantic(memory.measure, kwargs={"engine": engine}, rounds=1, iterations=1)
    assert result["peak_growth_mb"] > 0
    benchmark.extra_info.update(result)
    report_row({k: round(v, 1) if isinstance(v, float) else v for k, v in result.items()},
               table="peak memory of cnn32 batch-256 training (3 steps, fresh process each)")
