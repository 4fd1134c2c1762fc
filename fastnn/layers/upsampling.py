"""UpSampling2D: repeats (nearest) or interpolates (bilinear) the rows and columns of NHWC images."""
from .. import _kernels
from .._ops_image import INTERPOLATIONS
from .base import Layer
from .conv import _check_image_shape, _contiguous_input, _pair

_threads = _kernels.omp_max_threads


class UpSampling2D(Layer):
    """Enlarges NHWC images by integer factors, as Keras' UpSampling2D.

    Parameters
    ----------
    size : int or (int, int)
        The row and column factors.
    interpolation : {"nearest", "bilinear"}
        "nearest" repeats each pixel size[0] x size[1] times; "bilinear" interpolates with half-pixel centres
        (TensorFlow's ``image.resize``: edge pixels are clamped).

    Notes
    -----
    Input (batch, height, width, channels); output (batch, height * size[0], width * size[1], channels). No
    weights.

    Examples
    --------
    >>> from fastnn import Sequential, layers
    >>> model = Sequential([layers.Input((2, 3, 1)), layers.UpSampling2D((2, 2))])
    >>> model.predict(np.zeros((1, 2, 3, 1), np.float32)).shape
    (1, 4, 6, 1)
    """

    def __init__(self, size=(2, 2), interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        self.size = _pair(size, "size", "UpSampling2D")
        if not isinstance(interpolation, str) or interpolation.lower() not in INTERPOLATIONS:
            raise ValueError(f"UpSampling2D interpolation must be one of {', '.join(INTERPOLATIONS)}, "
                             f"got {interpolation!r}")
        self.interpolation = interpolation.lower()
        self._mode = INTERPOLATIONS[self.interpolation]

    def compute_output_shape(self, input_shape):
        _check_image_shape(self, input_shape)
        h, w, c = input_shape
        return h * self.size[0], w * self.size[1], c

    def forward(self, x, training=False):
        x = _contiguous_input(self, x)
        y = self._buffer("y", (x.shape[0],) + self.output_shape)
        _kernels.resize2d_forward(x, y, self._mode, _threads())
        return y

    def backward(self, grad_out, need_dx=True, accumulate=False):
        if not need_dx:
            return None
        dy = grad_out if grad_out.flags.c_contiguous else grad_out.copy()
        dx = self._buffer("dx", (dy.shape[0],) + self.input_shape)
        _kernels.resize2d_backward(dy, dx, self._mode, _threads())
        return dx

    def get_config(self):
        config = super().get_config()
        config.update(size=list(self.size), interpolation=self.interpolation)
        return config

    def _config_repr(self):
        return f"size={self.size}, interpolation={self.interpolation!r}"
