"""Conv2DTranspose and UpSampling2D against Keras itself (run with a Python that has keras/tensorflow, e.g.
/work/venv-peers/bin/python -m pytest ...; skipped otherwise): output shapes and values for the same weights
over kernel sizes, strides, paddings, output_padding and dilation, including the shapes Keras rejects."""
import itertools
import os

import numpy as np
import pytest

import fastnn
from fastnn import layers as L

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")

CASES = [(hw, k, s, pad, op, d) for hw, k, s, pad, op, d in itertools.product(
    [(1, 1), (3, 5), (4, 4)], [1, 2, 3, 4], [1, 2, 3], ["valid", "same"], [None, 0, 1], [1, 2])
    if (op is None or op < s) and not (d > 1 and s > 1)]  # TensorFlow has no CPU kernel for dilation with strides


@pytest.mark.parametrize("hw,k,s,pad,op,d", CASES)
def test_conv2d_transpose_matches_keras(hw, k, s, pad, op, d):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2,) + hw + (3,)).astype(np.float32)
    theirs = keras.layers.Conv2DTranspose(4, k, strides=s, padding=pad, output_padding=op, dilation_rate=d)
    try:
        expected = np.asarray(theirs(x))
    except Exception:  # a shape TensorFlow cannot produce: fastnn must refuse it too
        with pytest.raises(ValueError):
            fastnn.Sequential([L.Input(hw + (3,)), L.Conv2DTranspose(4, k, strides=s, padding=pad,
                                                                     output_padding=op, dilation_rate=d)])
        return
    if 0 in expected.shape:
        with pytest.raises(ValueError, match="output size"):
            fastnn.Sequential([L.Input(hw + (3,)), L.Conv2DTranspose(4, k, strides=s, padding=pad,
                                                                     output_padding=op, dilation_rate=d)])
        return
    weights = theirs.get_weights()
    weights[1] = rng.standard_normal(4).astype(np.float32)
    theirs.set_weights(weights)
    model = fastnn.Sequential([L.Input(hw + (3,)), L.Conv2DTranspose(4, k, strides=s, padding=pad,
                                                                     output_padding=op, dilation_rate=d)])
    model.set_weights(weights)
    np.testing.assert_allclose(model.predict(x), np.asarray(theirs(x)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("size", [(2, 2), (2, 3), (1, 4)])
def test_upsampling2d_matches_keras(interpolation, size):
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 2)).astype(np.float32)
    expected = np.asarray(keras.layers.UpSampling2D(size, interpolation=interpolation)(x))
    model = fastnn.Sequential([L.Input((3, 5, 2)), L.UpSampling2D(size, interpolation=interpolation)])
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5, atol=1e-6)
