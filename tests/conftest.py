"""Shared fixtures: where the real datasets are.

The data lives outside the repository: ``$FASTNN_DATA`` when set, else ``<repo>/../shared/data``. Tests that need
it are skipped when it is missing, unless ``FASTNN_REQUIRE_DATA=1``, where a missing dataset is a failure (so CI
cannot pass by skipping the accuracy tests).
"""
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte")


def _missing_data(reason):
    """Skip the test, or fail it when the environment sets FASTNN_REQUIRE_DATA=1."""
    if os.environ.get("FASTNN_REQUIRE_DATA") == "1":
        pytest.fail(f"{reason} (FASTNN_REQUIRE_DATA=1, so missing data is an error)", pytrace=False)
    pytest.skip(f"{reason}; set FASTNN_DATA to the shared data folder to run this test")


@pytest.fixture(scope="session")
def shared_data_dir():
    """The folder of real datasets (mnist/, uci-digits/, iris/, tinyshakespeare/, ...), as a Path."""
    configured = os.environ.get("FASTNN_DATA")
    folder = Path(configured) if configured else REPO_ROOT.parent / "shared" / "data"
    if not folder.is_dir():
        source = "$FASTNN_DATA" if configured else "the default <repo>/../shared/data"
        _missing_data(f"shared data folder {folder} ({source}) does not exist")
    return folder


@pytest.fixture(scope="session")
def mnist_dir(shared_data_dir):
    """The folder holding the four MNIST IDX files (plain or .gz), as a Path."""
    folder = shared_data_dir / "mnist"
    missing = [name for name in MNIST_FILES
               if not (folder / name).is_file() and not (folder / (name + ".gz")).is_file()]
    if missing:
        _missing_data(f"MNIST files missing in {folder}: {', '.join(missing)}")
    return folder


@pytest.fixture(scope="session")
def shared_data_file(shared_data_dir):
    """A function: ``shared_data_file("tinyshakespeare/input.txt")`` gives that file's Path, or skips/fails."""
    def find(relative_path):
        path = shared_data_dir / relative_path
        if not path.is_file():
            _missing_data(f"data file {path} does not exist")
        return path
    return find
