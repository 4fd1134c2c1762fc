"""Checks at the public boundary: dtype, shape, contiguity, finiteness and label ranges.

Everything behind the boundary (layers' kernels, fastnn._kernels) trusts what it is given, so every public
function passes its arrays through here once. Messages say what was given and what was expected.
"""
import numbers

import numpy as np

from . import _kernels

_F32_MAX = float(np.finfo(np.float32).max)
_INT64 = np.dtype(np.int64)
_EXACT_INT_LIMIT = 2**24  # integers up to this magnitude are exact in float32


def _describe(x):
    return f"array of shape {x.shape} and dtype {x.dtype}"


def as_float32_array(x, name, ndim=None, finite=True):
    """Return `x` as a C-contiguous float32 ndarray, copying only when needed.

    float32 passes through (a non-contiguous array is copied into a contiguous one); bool, small integer and
    float16/float64 arrays are cast when the values survive (float64 must stay within float32's range; integers
    within +-2**24, where float32 is exact). Anything else is a TypeError. `ndim` (an int or a tuple of ints)
    checks the rank; `finite` rejects NaN and Inf.
    """
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"{name} must be convertible to a float32 array: {exc}") from None
    kind = arr.dtype.kind
    if arr.dtype != np.float32:
        if kind == "b" or (kind == "f" and arr.dtype.itemsize <= 4):
            arr = arr.astype(np.float32)
        elif kind == "f":
            if arr.size and np.isfinite(arr).all() and np.abs(arr).max() > _F32_MAX:
                raise ValueError(f"{name} has values beyond float32's range (max {_F32_MAX:.3g}); "
                                 f"got {_describe(arr)} with max |x| = {np.abs(arr).max():.3g}")
            arr = arr.astype(np.float32)
        elif kind in "iu":
            if arr.dtype.itemsize > 2 and arr.size and np.abs(arr).max() > _EXACT_INT_LIMIT:
                raise TypeError(f"{name} has integers too large to be exact in float32 (|x| > 2**24); "
                                f"got {_describe(arr)}: cast it to float32 yourself if that is intended")
            arr = arr.astype(np.float32)
        else:
            raise TypeError(f"{name} must hold numbers (float32 expected), got {_describe(arr)}")
    if not arr.flags.c_contiguous:  # (np.ascontiguousarray would also turn a 0-d array into 1-d)
        arr = np.ascontiguousarray(arr)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(str(d) for d in allowed)
            raise ValueError(f"{name} must be {want}-dimensional, got {_describe(arr)}")
    if finite and arr.size and not all_finite(arr):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN or Inf value(s); finite values expected")
    return arr


def all_finite(arr):
    """Whether every value of a C-contiguous float32 array is finite (one vectorised pass in C)."""
    return _kernels.all_finite_f32(arr)


def check_output(out, shape, name="out"):
    """Check a caller-provided output array: float32, C-contiguous, writable, of the given shape."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(out).__name__}")
    if out.dtype != np.float32:
        raise TypeError(f"{name} must have dtype float32, got {out.dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only; a writable array is expected")
    return out


def check_nonempty(x, name):
    if len(x) == 0:
        raise ValueError(f"{name} is empty (0 samples); at least one sample is expected")


def as_class_labels(y, n_samples, n_classes, name="y", positions=()):
    """Sparse class labels: integers (or integral floats) in [0, n_classes), as int64.

    One label per sample (shape (n,) or (n, 1)), or, for outputs with more axes than (batch, classes), one per
    position: shape (n, *positions) (or with a trailing axis of 1), e.g. (batch, T) for per-timestep outputs
    (batch, T, classes). An out-of-range label is named with its sample (and position).
    """
    if type(y) is np.ndarray and y.dtype is _INT64 and not positions and y.shape == (n_samples,) \
            and y.flags.c_contiguous and _out_of_range(y, n_classes) is None:
        return y  # the usual labels, as the checks below would return them
    arr = np.asarray(y)
    want = (n_samples,) + tuple(positions)
    if arr.ndim == len(want) + 1 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != len(want):
        if not positions:
            raise ValueError(f"{name} must be a 1-D array of class indices (or shape (n, 1)), got shape {arr.shape}")
        raise ValueError(f"{name} must hold one class index per output position, shape {want} (or "
                         f"{want + (1,)}), got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise ValueError(f"{name} has {arr.shape[0]} labels but x has {n_samples} samples")
    if arr.shape != want:
        raise ValueError(f"{name} has shape {arr.shape}, but the model's output needs one class index per "
                         f"position: shape {want}")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or (arr != np.round(arr)).any():
            raise ValueError(f"{name} must hold whole-number class indices, got non-integral or NaN values")
    elif arr.dtype.kind not in "iub":
        raise TypeError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
    labels = np.ascontiguousarray(arr, dtype=np.int64)
    bad = _out_of_range(labels, n_classes)
    if bad is not None:
        where = ""
        if positions:
            first = tuple(int(i) for i in np.argwhere(labels == bad)[0])
            where = f" at sample {first[0]}, position {first[1:] if len(first) > 2 else first[1]}"
        raise ValueError(f"{name} has class index {bad} out of range{where}: the model has {n_classes} classes, "
                         f"so indices must be in [0, {n_classes - 1}]")
    return labels


def _out_of_range(indices, n):
    """An entry of the int64 array `indices` outside [0, n) (the lowest or the highest), or None."""
    if not indices.size:
        return None
    # (two NumPy reductions cost more than the list for the few labels of a small batch)
    vals = indices.ravel().tolist() if indices.size <= 64 else None
    lo, hi = (min(vals), max(vals)) if vals else (int(indices.min()), int(indices.max()))
    return lo if lo < 0 else hi if hi >= n else None


def as_token_ids(x, input_dim, name="ids"):
    """Token ids as a C-contiguous int64 array of x's shape, each a whole number in [0, input_dim). Integer
    arrays and float arrays holding whole numbers (what a model passes, having cast its input) are accepted."""
    arr = np.asarray(x)
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        whole = finite & (arr == np.floor(np.where(finite, arr, 0)))
        if not whole.all():
            raise ValueError(f"{name} must be whole numbers (token indices), got {arr[~whole].flat[0]!r}")
    elif arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer or float array of token indices, got dtype {arr.dtype}")
    ids = np.ascontiguousarray(arr, dtype=np.int64)
    bad = _out_of_range(ids, input_dim)
    if bad is not None:
        raise ValueError(f"{name} got id {bad}, outside the vocabulary: ids must lie in [0, {input_dim}) "
                         f"(input_dim={input_dim})")
    return ids


def as_positive_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def as_finite_float(value, name, positive=False, low=None, high=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if positive and v <= 0:
        raise ValueError(f"{name} must be > 0, got {v}")
    if low is not None and v < low:
        raise ValueError(f"{name} must be >= {low}, got {v}")
    if high is not None and v > high:
        raise ValueError(f"{name} must be <= {high}, got {v}")
    return v
