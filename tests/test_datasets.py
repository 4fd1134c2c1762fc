"""fastnn.datasets: IDX reading, MNIST loading and its error reports, the shipped UCI digits, data fixtures."""
import gzip
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastnn import datasets
from fastnn.datasets import IDXFormatError, load_digits, load_idx, load_mnist

TYPE_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}
NAMES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
         "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def idx_bytes(array, type_code=None, header_shape=None):
    """An IDX file's bytes for `array` (written independently of the loader, to test it)."""
    array = np.asarray(array)
    code = TYPE_CODES[array.dtype.type] if type_code is None else type_code
    shape = array.shape if header_shape is None else header_shape
    header = bytes([0, 0, code, len(shape)]) + b"".join(int(d).to_bytes(4, "big") for d in shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path, content, compress):
    path = Path(str(path) + ".gz") if compress else Path(path)
    path.write_bytes(gzip.compress(content) if compress else content)
    return path


def write_small_mnist(folder, n_train=5, n_test=3, compress=True):
    """Four valid MNIST-format files with random content; returns the arrays written."""
    rng = np.random.default_rng(0)
    arrays = {"train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
              "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8)}
    folder.mkdir(parents=True, exist_ok=True)
    for key, array in arrays.items():
        write(folder / NAMES[key], idx_bytes(array), compress)
    return arrays


# ---- the real MNIST ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_mnist(mnist_dir):
    return load_mnist(mnist_dir)


def test_real_mnist_shapes_dtypes_and_statistics(real_mnist):
    (x_train, y_train), (x_test, y_test) = real_mnist
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert np.bincount(y_train).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(y_test).tolist() == MNIST_TEST_COUNTS
    assert x_train.mean() == pytest.approx(33.3184, abs=1e-4)
    assert x_test.mean() == pytest.approx(33.7912, abs=1e-4)
    assert x_train.flags.writeable and x_train.flags.c_contiguous


def test_plain_copies_load_the_same(real_mnist, mnist_dir, tmp_path):
    for name in NAMES.values():
        source = mnist_dir / (name + ".gz")
        content = gzip.decompress(source.read_bytes()) if source.is_file() else (mnist_dir / name).read_bytes()
        (tmp_path / name).write_bytes(content)
    (x_train, y_train), (x_test, y_test) = load_mnist(tmp_path)
    (ref_x_train, ref_y_train), (ref_x_test, ref_y_test) = real_mnist
    np.testing.assert_array_equal(x_train, ref_x_train)
    np.testing.assert_array_equal(y_train, ref_y_train)
    np.testing.assert_array_equal(x_test, ref_x_test)
    np.testing.assert_array_equal(y_test, ref_y_test)


# ---- finding the files -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("compress", [True, False])
def test_small_mnist_round_trip(tmp_path, compress):
    arrays = write_small_mnist(tmp_path, compress=compress)
    (x_train, y_train), (x_test, y_test) = load_mnist(str(tmp_path))
    np.testing.assert_array_equal(x_train, arrays["train_images"])
    np.testing.assert_array_equal(y_train, arrays["train_labels"])
    np.testing.assert_array_equal(x_test, arrays["test_images"])
    np.testing.assert_array_equal(y_test, arrays["test_labels"])


def test_fastnn_data_variable_finds_subfolder_or_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    arrays = write_small_mnist(tmp_path / "root" / "mnist", n_train=4)
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "root"))
    assert load_mnist()[0][0].shape == (4, 28, 28)
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "root" / "mnist"))
    np.testing.assert_array_equal(load_mnist()[0][1], arrays["train_labels"])


def test_default_is_shared_data_next_to_the_working_directory(tmp_path, monkeypatch):
    write_small_mnist(tmp_path / "shared" / "data" / "mnist", n_train=6)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.delenv("FASTNN_DATA", raising=False)
    assert load_mnist()[0][0].shape == (6, 28, 28)


def test_missing_files_say_where_they_were_looked_for(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="FASTNN_DATA") as info:
        load_mnist()
    assert str(tmp_path / "nowhere" / "mnist") in str(info.value)
    assert "train-images-idx3-ubyte" in str(info.value)
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "empty"))):
        load_mnist(tmp_path / "empty")


def test_one_missing_file_is_not_found(tmp_path):
    write_small_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path)


# ---- damaged files: each error names the faulty file -------------------------------------------------------------

def _raw(path):
    return gzip.decompress(path.read_bytes())


def _images_with_labels_magic(folder):
    return write(folder / "train-images-idx3-ubyte", idx_bytes(np.zeros(5 * 28 * 28, np.uint8)), True)


def _labels_with_int32_type(folder):
    return write(folder / "train-labels-idx1-ubyte", idx_bytes(np.zeros(5, np.int32)), True)


def _not_idx_at_all(folder):
    path = folder / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(b"\x12\x34\x08\x03" + _raw(path)[4:]))
    return path


def _truncated_payload(folder):
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_raw(path)[:-1]))
    return path


def _extra_bytes(folder):
    path = folder / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(_raw(path) + b"\x00\x00"))
    return path


def _corrupt_gzip(folder):
    path = folder / "train-images-idx3-ubyte.gz"
    content = bytearray(path.read_bytes())
    content[20:40] = bytes(b ^ 0xFF for b in content[20:40])
    path.write_bytes(bytes(content))
    return path


def _truncated_gzip(folder):
    path = folder / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-12])
    return path


def _count_mismatch(folder):
    return write(folder / "t10k-labels-idx1-ubyte", idx_bytes(np.zeros(2, np.uint8)), True)


def _label_ten(folder):
    return write(folder / "train-labels-idx1-ubyte", idx_bytes(np.array([1, 2, 10, 3, 4], np.uint8)), True)


def _wrong_image_size(folder):
    return write(folder / "t10k-images-idx3-ubyte", idx_bytes(np.zeros((3, 27, 28), np.uint8)), True)


@pytest.mark.parametrize("damage, reason", [
    (_images_with_labels_magic, "magic number 2049"),
    (_labels_with_int32_type, "magic number 3073"),
    (_not_idx_at_all, "not an IDX file"),
    (_truncated_payload, "truncated"),
    (_extra_bytes, "2 unexpected bytes"),
    (_corrupt_gzip, "gzip data is corrupt"),
    (_truncated_gzip, "gzip data is corrupt or truncated"),
    (_count_mismatch, "2 labels, but .* holds 3 images"),
    (_label_ten, "label 10 at index 2"),
    (_wrong_image_size, "27x28"),
])
def test_damaged_file_is_named_in_the_error(tmp_path, damage, reason):
    write_small_mnist(tmp_path)
    path = damage(tmp_path)
    with pytest.raises(ValueError, match=reason) as info:
        load_mnist(tmp_path)
    assert isinstance(info.value, IDXFormatError)
    assert info.value.path == str(path)
    assert str(info.value).startswith(str(path))


# ---- load_idx ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", list(TYPE_CODES))
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4), (2, 1, 3, 2), (0, 4)])
@pytest.mark.parametrize("compress", [True, False])
def test_load_idx_round_trips(tmp_path, dtype, shape, compress):
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else np.finfo(dtype)
    array = np.random.default_rng(1).uniform(0, 100, shape).astype(dtype)
    if array.size >= 2:
        array.flat[0], array.flat[-1] = info.min, info.max
    path = write(tmp_path / "data-idx", idx_bytes(array), compress)
    loaded = load_idx(path)
    assert loaded.dtype == np.dtype(dtype) and loaded.dtype.isnative
    assert loaded.shape == shape
    np.testing.assert_array_equal(loaded, array)
    loaded[...] = 0  # writable, and a copy of its own


def test_load_idx_reads_gzip_by_content_not_by_name(tmp_path):
    array = np.arange(12, dtype=np.int16).reshape(3, 4) - 6
    path = tmp_path / "no-extension"
    path.write_bytes(gzip.compress(idx_bytes(array)))
    np.testing.assert_array_equal(load_idx(path), array)


@pytest.mark.parametrize("content, reason", [
    (b"", "too short"),
    (b"\x00\x00\x08", "too short"),
    (bytes([0, 0, 0x0A, 1, 0, 0, 0, 1, 5]), "unknown IDX data type 0x0A"),
    (bytes([0, 0, 0x08, 0]), "0 dimensions"),
    (bytes([0, 0, 0x08, 2, 0, 0, 0, 1]), "header truncated"),
    (idx_bytes(np.zeros(3, np.float32))[:-2], "data truncated"),
])
def test_load_idx_rejects_malformed_files(tmp_path, content, reason):
    path = tmp_path / "bad-idx"
    path.write_bytes(content)
    with pytest.raises(IDXFormatError, match=reason) as info:
        load_idx(path)
    assert str(info.value).startswith(str(path))


def test_load_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_idx(tmp_path / "absent")


# ---- the shipped UCI digits --------------------------------------------------------------------------------------

def test_load_digits_split_matches_uci():
    (x_train, y_train), (x_test, y_test) = load_digits()
    assert x_train.shape == (3823, 8, 8) and x_test.shape == (1797, 8, 8)
    assert x_train.dtype == np.float32 and y_train.dtype == np.uint8
    assert np.bincount(y_train).tolist() == [376, 389, 380, 389, 387, 376, 377, 387, 380, 382]
    assert np.bincount(y_test).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    for x in (x_train, x_test):
        assert x.min() == 0 and x.max() == 16
        np.testing.assert_array_equal(x, np.round(x))
    # the first UCI training row, as written in optdigits.tra
    assert x_train[0, 0].tolist() == [0, 1, 6, 15, 12, 1, 0, 0] and y_train[0] == 0


def test_load_digits_matches_the_shared_copies(shared_data_file):
    (x_train, y_train), (x_test, y_test) = load_digits()
    train = np.loadtxt(shared_data_file("uci-digits/optdigits.tra"), delimiter=",")
    test = np.loadtxt(shared_data_file("uci-digits/digits.csv.gz"), delimiter=",")
    np.testing.assert_array_equal(x_train.reshape(-1, 64), train[:, :64])
    np.testing.assert_array_equal(y_train, train[:, 64])
    np.testing.assert_array_equal(x_test.reshape(-1, 64), test[:, :64])
    np.testing.assert_array_equal(y_test, test[:, 64])


def test_load_digits_unsplit_concatenates_train_then_test():
    (x_train, y_train), (x_test, y_test) = load_digits()
    x, y = load_digits(return_split=False)
    assert x.shape == (5620, 8, 8) and y.shape == (5620,)
    np.testing.assert_array_equal(x, np.concatenate([x_train, x_test]))
    np.testing.assert_array_equal(y, np.concatenate([y_train, y_test]))


def test_load_digits_rejects_non_bool():
    with pytest.raises(TypeError, match="return_split must be True or False, got 'no'"):
        load_digits(return_split="no")


def test_shipped_digits_have_an_attribution_file():
    text = (Path(datasets.__file__).parent / "data" / "DIGITS_LICENSE.txt").read_text()
    assert "10.24432/C50P49" in text and "CC BY 4.0" in text


# ---- the data fixtures in conftest.py ----------------------------------------------------------------------------

@pytest.mark.parametrize("require, outcome, returncode", [(None, "1 skipped", 0), ("1", "1 error", 1)])
def test_missing_data_skips_or_fails_on_request(tmp_path, require, outcome, returncode):
    shutil.copy(Path(__file__).parent / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_needs_data.py").write_text("def test_it(mnist_dir):\n    pass\n")
    env = dict(os.environ, FASTNN_DATA=str(tmp_path / "no-data-here"))
    env.pop("FASTNN_REQUIRE_DATA", None)
    if require:
        env["FASTNN_REQUIRE_DATA"] = require
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rsE", "-p", "no:cacheprovider", str(tmp_path)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == returncode, result.stdout + result.stderr
    assert outcome in result.stdout
    assert "no-data-here" in result.stdout
