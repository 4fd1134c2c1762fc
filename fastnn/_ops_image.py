"""Image resizing (src/resize.c): the validated verbs of fastnn.ops (see its docstring)."""
import numpy as np

from . import _kernels
from ._threads import effective_threads
from ._validation import as_float32_array, as_positive_int

INTERPOLATIONS = {"nearest": _kernels.RESIZE_NEAREST, "bilinear": _kernels.RESIZE_BILINEAR}


def _mode(interpolation):
    if not isinstance(interpolation, str) or interpolation.lower() not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}")
    return INTERPOLATIONS[interpolation.lower()]


def _size(size, name):
    try:
        h, w = size
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (height, width) of positive ints, got {size!r}") from None
    return as_positive_int(h, f"{name}[0]"), as_positive_int(w, f"{name}[1]")


def _images(x, name):
    x = as_float32_array(x, name, ndim=4, finite=False)
    if 0 in x.shape[1:]:
        raise ValueError(f"{name} must have positive height, width and channels (NHWC), got shape {x.shape}")
    return x


def resize2d(x, size, interpolation="bilinear"):
    """Resize NHWC images to `size`, with half-pixel centres as TensorFlow's ``image.resize`` (no antialiasing).

    Parameters
    ----------
    x : array_like of shape (batch, height, width, channels)
    size : (int, int)
        The output height and width.
    interpolation : {"bilinear", "nearest"}

    Returns
    -------
    y : ndarray of float32, shape (batch, size[0], size[1], channels)

    Examples
    --------
    >>> from fastnn import ops
    >>> ops.resize2d(np.array([0.0, 1.0]).reshape(1, 1, 2, 1), (1, 4))[0, 0, :, 0]
    array([0.  , 0.25, 0.75, 1.  ], dtype=float32)
    """
    mode = _mode(interpolation)
    x = _images(x, "x")
    oh, ow = _size(size, "size")
    y = np.empty((x.shape[0], oh, ow, x.shape[3]), np.float32)
    _kernels.resize2d_forward(x, y, mode, effective_threads())
    return y


def resize2d_backward(dy, input_size, interpolation="bilinear"):
    """The gradient of `resize2d` with respect to its input, for the output gradient `dy`.

    Parameters
    ----------
    dy : array_like of shape (batch, out_height, out_width, channels)
    input_size : (int, int)
        The height and width of the resized input.
    interpolation : {"bilinear", "nearest"}

    Returns
    -------
    dx : ndarray of float32, shape (batch, input_size[0], input_size[1], channels)
    """
    mode = _mode(interpolation)
    dy = _images(dy, "dy")
    h, w = _size(input_size, "input_size")
    dx = np.empty((dy.shape[0], h, w, dy.shape[3]), np.float32)
    _kernels.resize2d_backward(dy, dx, mode, effective_threads())
    return dx
