"""``fastnn bench`` without a gate: the table, its Markdown and JSON copies, option errors; and the arithmetic
(GEMMs and FLOPs) the benchmarks derive from the workloads' layers."""
import json
import os
import subprocess
import sys

import pytest

from fastnn.__main__ import main
from fastnn.benchmarks import report, runner, workloads

TINY = ["--workload", "mlp", "--batch", "1,2", "--phase", "infer", "--rounds", "2", "--round-ms", "2",
        "--threads", "1"]


def test_bench_prints_a_table_and_writes_markdown_and_json(tmp_path, capsys):
    md, js = tmp_path / "table.md", tmp_path / "cells.json"
    assert main(["bench", *TINY, "--markdown", str(md), "--json", str(js)]) == 0
    out = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(out) if line.split()[:3] == ["workload", "batch", "phase"])
    assert [line.split()[:3] for line in out[header + 1:header + 3]] == [["mlp", "1", "infer"], ["mlp", "2", "infer"]]
    cells = json.loads(js.read_text())["cells"]
    assert [c["cell"] for c in cells] == ["mlp/infer/B1", "mlp/infer/B2"]
    for c in cells:
        assert c["ms"]["fastnn"] > 0 and c["yardstick_ratio"] > 0 and 0 < c["peak_fraction"] < 1.5
    assert "| mlp | 1 | infer |" in md.read_text()


def test_the_command_restarts_without_openblas_overrides(tmp_path):
    """OPENBLAS_CORETYPE would make the yardstick run another CPU's kernels; the command sheds it by restarting."""
    pytest.importorskip("threadpoolctl")
    js = tmp_path / "cells.json"
    environ = dict(os.environ, OPENBLAS_CORETYPE="Prescott")
    done = subprocess.run([sys.executable, "-m", "fastnn", "bench", *TINY, "--json", str(js)], env=environ,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "restarting without OPENBLAS_CORETYPE=Prescott" in done.stderr
    blas = json.loads(js.read_text())["environment"]["yardstick"]["blas"]
    assert blas and "Prescott" not in blas


def test_called_from_python_the_command_warns_of_overrides_and_keeps_its_process(monkeypatch, capsys):
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "512")
    assert main(["bench", *TINY]) == 0
    assert "warning: OPENBLAS_L2_SIZE=512 makes the NumPy yardstick" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--workload", "vgg"], ["--batch", "0"], ["--phase", "eval"],
                                  ["--tolerance", "x"], ["--rounds", "0"]])
def test_bad_bench_options_exit_2(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(["bench", *args])
    assert info.value.code == 2
    assert "usage: fastnn bench" in capsys.readouterr().err


def test_the_table_says_when_the_lstm_workload_cannot_run(monkeypatch):
    reason = "fastnn.layers.LSTM does not exist in this fastnn"
    monkeypatch.setattr(workloads, "unavailable_reason", lambda name: reason if name == "lstm" else None)
    rows, unavailable = runner.run(["lstm"], [1], ["infer"], runner.Options(rounds=2, round_seconds=0.001))
    assert rows == [] and unavailable == {"lstm": reason}
    assert f"lstm: not run ({reason})" in report.text_table(rows, unavailable)


def _model(name):
    if workloads.unavailable_reason(name):
        pytest.skip(workloads.unavailable_reason(name))
    return workloads.build_model(name)


def test_mlp_gemms_are_the_three_products_of_each_dense_layer():
    gemms = workloads.step_gemms(_model("mlp"), 32, "train")
    shapes = [(g.role, g.m, g.k, g.n) for g in gemms]
    assert shapes == [("forward", 32, 784, 256), ("grad_weights", 784, 32, 256),
                      ("forward", 32, 256, 128), ("grad_weights", 256, 32, 128), ("grad_input", 32, 128, 256),
                      ("forward", 32, 128, 10), ("grad_weights", 128, 32, 10), ("grad_input", 32, 10, 128)]
    forward = 2 * 32 * (784 * 256 + 256 * 128 + 128 * 10)
    assert workloads.step_flops(_model("mlp"), 32, "infer") == forward


def test_cnn32_flops_follow_the_layer_shapes():
    model = _model("cnn32")
    # conv rows = batch * output pixels, k = 3 * 3 * channels in; then the two Dense layers
    products = [(1024, 27, 32), (1024, 288, 32), (256, 288, 64)]
    forward = sum(2 * r * k * n for r, k, n in products) + 2 * (4096 * 256 + 256 * 10)
    assert workloads.step_flops(model, 1, "infer") == forward
    first_dx = 2 * 1024 * 32 * 27  # the first layer's input gradient is never computed
    assert workloads.step_flops(model, 256, "train") == 256 * (3 * forward - first_dx)


def test_lstm_gemms_count_one_recurrent_product_per_step():
    gemms = workloads.step_gemms(_model("lstm"), 4, "infer")
    assert [(g.m, g.k, g.n, g.count) for g in gemms] == [(128, 64, 512, 1), (4, 128, 512, 32), (4, 128, 10, 1)]
