"""The command line, ``python -m fastnn``: info, demo, help and usage errors (bench: test_bench_command.py)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastnn
from fastnn.__main__ import main

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args, timeout=300):
    """Run ``python -m fastnn ARGS`` from outside the repository, with this checkout importable."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "fastnn", *args], cwd=REPO_ROOT.parent, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_info_prints_versions_and_cpu_features(capsys):
    assert main(["info"]) == 0
    lines = capsys.readouterr().out.splitlines()
    cpu = fastnn.cpu_info()
    assert lines[0] == f"fastnn {fastnn.__version__}"
    assert f"instruction set in use: {cpu['isa']}" in lines
    assert f"instruction sets available: {', '.join(cpu['isa_available'])}" in lines
    assert f"numpy {np.__version__}" in lines
    assert any(line.startswith(f"threads: {cpu['threads']}") for line in lines)
    assert any(line.startswith(f"Python {sys.version_info.major}.{sys.version_info.minor}.") for line in lines)


def test_info_as_a_module():
    result = run_cli("info")
    assert result.returncode == 0, result.stderr
    assert f"fastnn {fastnn.__version__}" in result.stdout
    assert f"instruction set in use: {fastnn.cpu_info()['isa']}" in result.stdout


def test_help_lists_the_commands():
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    for command in ("info", "demo", "bench"):
        assert re.search(rf"^\s+{command}\s", result.stdout, re.MULTILINE), result.stdout


@pytest.mark.parametrize("args", [["bogus"], [], ["demo", "--epochs", "0"], ["demo", "--epochs", "many"]])
def test_usage_errors_exit_with_status_2(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    assert "usage: fastnn" in capsys.readouterr().err


def test_unknown_command_as_a_module_exits_2_with_usage():
    result = run_cli("bogus")
    assert result.returncode == 2
    assert "usage: fastnn" in result.stderr and "invalid choice: 'bogus'" in result.stderr


def test_demo_learns_the_digits():
    result = run_cli("demo")
    assert result.returncode == 0, result.stdout + result.stderr
    epoch_lines = [line for line in result.stdout.splitlines() if line.startswith("epoch")]
    assert len(epoch_lines) >= 1 and "loss" in epoch_lines[0] and "test accuracy" in epoch_lines[0]
    accuracy = float(re.search(r"^test accuracy: ([\d.]+)%", result.stdout, re.MULTILINE).group(1))
    assert accuracy >= 95.0, result.stdout
