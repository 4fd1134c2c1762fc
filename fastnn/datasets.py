"""Datasets: any IDX file, MNIST from a local folder, and the small UCI digits shipped inside the package.

Nothing here downloads: MNIST is read from files you already have, and the 8x8 UCI digits come with fastnn,
so examples and the demo run offline.
"""
import gzip
import importlib.resources
import io
import os
import zlib
from pathlib import Path

import numpy as np

__all__ = ["IDXFormatError", "load_idx", "load_mnist", "load_digits"]

# IDX type byte -> element type; every multi-byte value in an IDX file is big-endian.
_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"

_MNIST_IMAGES_MAGIC = 0x00000803  # 2051: unsigned bytes, 3 dimensions
_MNIST_LABELS_MAGIC = 0x00000801  # 2049: unsigned bytes, 1 dimension
_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


class IDXFormatError(ValueError):
    """A data file is unreadable or inconsistent; ``path`` names the file and the message says why."""

    def __init__(self, path, reason):
        self.path = str(path)
        super().__init__(f"{self.path}: {reason}")


def _read_bytes(path):
    """The file's content, gunzipped when it starts with the gzip signature (an IDX file starts with 0x00 0x00)."""
    raw = Path(path).read_bytes()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise IDXFormatError(path, f"the gzip data is corrupt or truncated ({exc})") from None


def _parse_idx(path, content):
    """Return (magic number, native-endian array) from the bytes of an IDX file."""
    if len(content) < 4:
        raise IDXFormatError(path, f"too short for an IDX header: {len(content)} bytes, at least 4 expected")
    zero0, zero1, type_code, ndim = content[:4]
    magic = int.from_bytes(content[:4], "big")
    if zero0 or zero1:
        raise IDXFormatError(path, f"not an IDX file: magic number 0x{magic:08X} should start with two zero bytes")
    if type_code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise IDXFormatError(path, f"unknown IDX data type 0x{type_code:02X} in magic number 0x{magic:08X}; "
                                   f"known types: {known}")
    if ndim == 0:
        raise IDXFormatError(path, f"magic number 0x{magic:08X} declares 0 dimensions; at least 1 expected")
    header_len = 4 + 4 * ndim
    if len(content) < header_len:
        raise IDXFormatError(path, f"header truncated: {ndim} dimensions need a {header_len}-byte header, "
                                   f"the file has {len(content)} bytes")
    shape = tuple(int(d) for d in np.frombuffer(content, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[type_code]
    expected = dtype.itemsize * int(np.prod(shape, dtype=object))
    found = len(content) - header_len
    if found < expected:
        raise IDXFormatError(path, f"data truncated: the header {shape} of {dtype.name} promises {expected} bytes "
                                   f"after the header, the file has {found}")
    if found > expected:
        raise IDXFormatError(path, f"{found - expected} unexpected bytes after the data: the header {shape} "
                                   f"of {dtype.name} promises {expected} bytes, the file has {found}")
    array = np.frombuffer(content, dtype=dtype, count=expected // dtype.itemsize, offset=header_len)
    return magic, array.reshape(shape).astype(dtype.newbyteorder("="))


def load_idx(path):
    """Read one IDX file (plain or gzipped) into a NumPy array.

    IDX is the format of MNIST and Fashion-MNIST: a 4-byte big-endian magic number (two zero bytes, a type byte,
    the number of dimensions), one big-endian uint32 per dimension, then the values, big-endian, row-major.

    Parameters
    ----------
    path : str or os.PathLike
        The file. It is decompressed when its content is gzip, whatever its name.

    Returns
    -------
    numpy.ndarray
        A writable, native-byte-order array with the shape of the header and the dtype of the type byte:
        0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64.

    Raises
    ------
    FileNotFoundError
        When `path` does not exist.
    IDXFormatError
        (a ValueError) when the content is not a well-formed IDX file: bad magic number, unknown type, corrupt
        gzip, or a data length that differs from what the header declares (truncated or trailing bytes).
        The message starts with the path.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a-idx2-ubyte")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6)))
    >>> load_idx(path)
    array([[0, 1, 2],
           [3, 4, 5]], dtype=uint8)
    """
    return _parse_idx(path, _read_bytes(path))[1]


def _find_idx(folder, name):
    """`folder/name` or `folder/name.gz` (the plain file first), or None."""
    for candidate in (folder / name, folder / (name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _mnist_candidates():
    data_root = os.environ.get("FASTNN_DATA")
    folders = []
    if data_root:
        folders += [Path(data_root) / "mnist", Path(data_root)]
    folders.append(Path.cwd().parent / "shared" / "data" / "mnist")
    return folders


def _locate_mnist(path):
    """The four MNIST file paths, keyed like _MNIST_FILES, or a FileNotFoundError saying where it looked."""
    folders = [Path(path)] if path is not None else _mnist_candidates()
    for folder in folders:
        found = {key: _find_idx(folder, name) for key, name in _MNIST_FILES.items()}
        if all(found.values()):
            return found
    names = ", ".join(f"{n}[.gz]" for n in _MNIST_FILES.values())
    looked = "; ".join(str(f.resolve()) for f in folders)
    hint = ("pass load_mnist(path=FOLDER)" if path is not None
            else "pass load_mnist(path=FOLDER) or set the environment variable FASTNN_DATA to a folder holding them "
                 "(directly or in a 'mnist' subfolder)")
    raise FileNotFoundError(f"MNIST files not found. Looked for {names} in: {looked}. fastnn never downloads "
                            f"data: get the four files, then {hint}.")


def _load_mnist_part(images_path, labels_path):
    images_magic, images = _parse_idx(images_path, _read_bytes(images_path))
    if images_magic != _MNIST_IMAGES_MAGIC:
        raise IDXFormatError(images_path, f"magic number {images_magic} (0x{images_magic:08X}); MNIST images "
                                          f"need {_MNIST_IMAGES_MAGIC} (unsigned bytes, 3 dimensions)")
    if images.shape[1:] != (28, 28):
        raise IDXFormatError(images_path, f"images of {images.shape[1]}x{images.shape[2]} pixels; "
                                          f"MNIST images are 28x28")
    labels_magic, labels = _parse_idx(labels_path, _read_bytes(labels_path))
    if labels_magic != _MNIST_LABELS_MAGIC:
        raise IDXFormatError(labels_path, f"magic number {labels_magic} (0x{labels_magic:08X}); MNIST labels "
                                          f"need {_MNIST_LABELS_MAGIC} (unsigned bytes, 1 dimension)")
    if len(labels) != len(images):
        raise IDXFormatError(labels_path, f"{len(labels)} labels, but {images_path} holds {len(images)} images")
    if labels.size and labels.max() > 9:
        index = int(np.argmax(labels > 9))
        raise IDXFormatError(labels_path, f"label {labels[index]} at index {index}; digit labels must be in 0..9")
    return images, labels


def load_mnist(path=None):
    """Load MNIST from the four standard IDX files in a local folder (never downloads).

    Parameters
    ----------
    path : str or os.PathLike, optional
        Folder holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
        ``t10k-labels-idx1-ubyte``, each plain or gzipped (name ending in ``.gz``). By default the first of these
        that holds all four: ``$FASTNN_DATA/mnist``, ``$FASTNN_DATA``, ``../shared/data/mnist`` (relative to the
        current directory).

    Returns
    -------
    (x_train, y_train), (x_test, y_test) : tuple of tuples of numpy.ndarray
        Images uint8 of shape (60000, 28, 28) and (10000, 28, 28), 0 = background, 255 = ink; labels uint8 of
        shape (60000,) and (10000,), digits 0..9. The same layout as ``keras.datasets.mnist.load_data()``.

    Raises
    ------
    FileNotFoundError
        When no folder holds the four files; the message lists the folders searched.
    IDXFormatError
        (a ValueError) naming the faulty file: wrong magic number, image size other than 28x28, truncated or
        trailing data, corrupt gzip, image and label counts that differ, or a label outside 0..9.

    Examples
    --------
    >>> (x_train, y_train), (x_test, y_test) = load_mnist()  # doctest: +SKIP
    >>> x_train.shape, y_train.dtype  # doctest: +SKIP
    ((60000, 28, 28), dtype('uint8'))
    """
    files = _locate_mnist(path)
    train = _load_mnist_part(files["train_images"], files["train_labels"])
    test = _load_mnist_part(files["test_images"], files["test_labels"])
    return train, test


def _read_digits_resource(name):
    """Parse one shipped UCI digits file into (x float32 (n, 8, 8), y uint8 (n,))."""
    resource = importlib.resources.files("fastnn.data").joinpath(name)
    text = gzip.decompress(resource.read_bytes()).decode("ascii")
    table = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.int64, ndmin=2)
    pixels_ok = table.shape[1] == 65 and table[:, :64].min() >= 0 and table[:, :64].max() <= 16
    if not (pixels_ok and table[:, 64].min() >= 0 and table[:, 64].max() <= 9):
        raise ValueError(f"fastnn/data/{name} is damaged: expected rows of 64 values in 0..16 and a class in 0..9; "
                         f"reinstall fastnn")
    return table[:, :64].reshape(-1, 8, 8).astype(np.float32), table[:, 64].astype(np.uint8)


def load_digits(return_split=True):
    """Load the UCI optical handwritten digits (8x8 images), shipped with fastnn.

    E. Alpaydin, C. Kaynak, "Optical Recognition of Handwritten Digits", UCI Machine Learning Repository, 1998,
    doi:10.24432/C50P49, CC BY 4.0 (see ``fastnn/data/DIGITS_LICENSE.txt``). The UCI split is kept: the 3823
    training images and the 1797 test images come from different writers.

    Parameters
    ----------
    return_split : bool, default True
        True returns the UCI training and test sets separately; False returns all 5620 samples together
        (training set first).

    Returns
    -------
    (x_train, y_train), (x_test, y_test) : tuple of tuples of numpy.ndarray
        When `return_split` is True. Images float32 of shape (n, 8, 8) holding the raw values 0..16 (the number
        of ink pixels in each 4x4 block of a 32x32 bitmap; divide by 16 to scale to [0, 1]); labels uint8 of
        shape (n,), digits 0..9. n is 3823 for training and 1797 for test.
    (x, y) : tuple of numpy.ndarray
        When `return_split` is False: the same arrays concatenated, n = 5620.

    Examples
    --------
    >>> (x_train, y_train), (x_test, y_test) = load_digits()
    >>> x_train.shape, x_test.shape, y_train.dtype
    ((3823, 8, 8), (1797, 8, 8), dtype('uint8'))
    >>> float(x_train.max())
    16.0
    """
    if not isinstance(return_split, (bool, np.bool_)):
        raise TypeError(f"return_split must be True or False, got {return_split!r}")
    train = _read_digits_resource("optdigits_train.csv.gz")
    test = _read_digits_resource("optdigits_test.csv.gz")
    if return_split:
        return train, test
    return np.concatenate([train[0], test[0]]), np.concatenate([train[1], test[1]])
