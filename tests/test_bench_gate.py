"""The regression gate of ``fastnn bench --gate``: the comparison on synthetic ratios, the retry of failing cells,
baseline file checks, and end to end on a tiny cell with and without an injected slowdown (no wall-time asserts:
the slowdown is ~100x, the tolerance used for the passing run 100%)."""
import json
import time
from pathlib import Path

import pytest

from fastnn.__main__ import main
from fastnn.benchmarks import gate, runner, workloads

REPO_ROOT = Path(__file__).resolve().parent.parent
BASELINE = {"mlp/train/B1": 0.25, "mlp/infer/B32": 0.3, "lenet/train/B32": 3.8}


def test_ratios_equal_to_the_baseline_pass():
    verdicts = gate.compare(BASELINE, dict(BASELINE), 0.25)
    assert [v.cell for v in verdicts] == list(BASELINE)
    assert all(v.passed and v.change == 0 for v in verdicts)
    assert gate.format_verdicts(verdicts, 0.25).splitlines()[-1].startswith("regression gate passed: 3 cells")


def test_a_cell_over_the_tolerance_fails_and_is_named():
    measured = dict(BASELINE, **{"mlp/infer/B32": 0.3 * 1.26, "lenet/train/B32": 3.8 * 1.24})
    verdicts = {v.cell: v for v in gate.compare(BASELINE, measured, 0.25)}
    assert not verdicts["mlp/infer/B32"].passed and verdicts["mlp/infer/B32"].change == pytest.approx(0.26)
    assert verdicts["lenet/train/B32"].passed and verdicts["mlp/train/B1"].passed
    last = gate.format_verdicts(list(verdicts.values()), 0.25).splitlines()[-1]
    assert last == "regression gate FAILED (tolerance 25%): mlp/infer/B32"


def test_faster_cells_pass_and_unmeasured_cells_fail():
    measured = {"mlp/train/B1": 0.01, "mlp/infer/B32": 0.3}
    verdicts = {v.cell: v for v in gate.compare(BASELINE, measured, 0.25)}
    assert verdicts["mlp/train/B1"].passed
    assert not verdicts["lenet/train/B32"].passed
    assert "NOT RUN" in gate.format_verdicts(list(verdicts.values()), 0.25)


def _scripted_measurements(monkeypatch, *answers):
    """Make gate.measure_ratios return `answers` in turn (restricted to the cells asked for)."""
    calls = []

    def fake(cells, options, make_fastnn=None):
        calls.append(sorted(cells))
        return {c: r for c, r in answers[len(calls) - 1].items() if c in cells}

    monkeypatch.setattr(gate, "measure_ratios", fake)
    return calls


def test_a_failing_cell_is_measured_again_and_keeps_its_lower_ratio(monkeypatch):
    slow_once = dict(BASELINE, **{"mlp/train/B1": 0.25 * 2})
    calls = _scripted_measurements(monkeypatch, slow_once, dict(BASELINE))
    verdicts = gate.check({"cells": BASELINE}, runner.Options(threads=1), 0.25)
    assert calls == [sorted(BASELINE), ["mlp/train/B1"]]
    assert all(v.passed for v in verdicts)


def test_a_cell_slow_every_time_fails(monkeypatch):
    slow = dict(BASELINE, **{"mlp/train/B1": 0.25 * 2})
    calls = _scripted_measurements(monkeypatch, slow, {"mlp/train/B1": 0.25 * 1.9}, {"mlp/train/B1": 0.25 * 2.1})
    verdicts = {v.cell: v for v in gate.check({"cells": BASELINE}, runner.Options(threads=1), 0.25)}
    assert len(calls) == gate.MEASUREMENTS == 3
    assert not verdicts["mlp/train/B1"].passed and verdicts["mlp/train/B1"].measured == pytest.approx(0.475)
    assert verdicts["mlp/infer/B32"].passed


def test_a_cell_slow_twice_then_within_the_tolerance_passes(monkeypatch):
    slow = dict(BASELINE, **{"mlp/train/B1": 0.25 * 2})
    calls = _scripted_measurements(monkeypatch, slow, {"mlp/train/B1": 0.25 * 1.9}, {"mlp/train/B1": 0.25 * 1.1})
    verdicts = gate.check({"cells": BASELINE}, runner.Options(threads=1), 0.25)
    assert calls[1:] == [["mlp/train/B1"], ["mlp/train/B1"]] and all(v.passed for v in verdicts)


@pytest.mark.parametrize("content, message", [
    ("not json", "is not JSON"),
    ('{"cells": {"mlp/train/B1": 1}}', "not a fastnn bench baseline"),
    ('{"format": 1, "threads": 1, "cells": {}}', "'cells' must map"),
    ('{"format": 1, "threads": 1, "cells": {"mlp/train/B1": -1}}', "'cells' must map"),
    ('{"format": 1, "threads": 1, "cells": {"mlp-train": 1.0}}', "bad cell name 'mlp-train'"),
    ('{"format": 1, "threads": 0, "cells": {"mlp/train/B1": 1.0}}', "'threads' must be a positive integer"),
])
def test_bad_baselines_are_rejected_with_the_reason(tmp_path, content, message):
    path = tmp_path / "baseline.json"
    path.write_text(content)
    with pytest.raises(gate.BaselineError, match=message):
        gate.load_baseline(path)


def test_a_missing_baseline_is_a_usage_error(tmp_path, capsys):
    assert main(["bench", "--gate", str(tmp_path / "none.json")]) == 2
    assert "cannot read the baseline" in capsys.readouterr().err


def test_update_baseline_needs_a_file(capsys):
    assert main(["bench", "--update-baseline"]) == 2
    assert "--update-baseline needs --gate" in capsys.readouterr().err


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "bench" / "baseline").glob("*.json")), ids=lambda p: p.name)
def test_committed_baselines_load_and_name_known_cells(path):
    baseline = gate.load_baseline(path)
    for cell in baseline["cells"]:
        name, phase, batch = runner.parse_cell_key(cell)
        assert name in workloads.WORKLOADS and phase in workloads.PHASES and batch >= 1


TINY = ["--workload", "mlp", "--batch", "1", "--phase", "infer", "--rounds", "3", "--round-ms", "5"]


def test_end_to_end_gate_passes_unchanged_and_fails_on_an_injected_slowdown(tmp_path, monkeypatch, capsys):
    path = tmp_path / "baseline.json"
    assert main(["bench", "--gate", str(path), "--update-baseline", "--threads", "1", *TINY]) == 0
    written = json.loads(path.read_text())
    assert written["threads"] == 1 and list(written["cells"]) == ["mlp/infer/B1"]
    capsys.readouterr()

    assert main(["bench", "--gate", str(path), "--tolerance", "1.0", "--round-ms", "5"]) == 0
    assert "regression gate passed" in capsys.readouterr().out

    def slowed_cell(model, x, y):
        cell = workloads.Cell(model, lambda: model.train_on_batch(x, y), lambda: model.predict_on_batch(x))

        def slow_infer():
            time.sleep(0.003)  # ~100x the cell's own time
            return cell.infer()

        return cell._replace(infer=slow_infer)

    monkeypatch.setattr(workloads, "fastnn_cell", slowed_cell)
    assert main(["bench", "--gate", str(path), "--tolerance", "1.0", "--round-ms", "5"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "regression gate FAILED (tolerance 100%): mlp/infer/B1"
