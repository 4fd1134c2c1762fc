"""Layers, with Keras names, arguments and weight layouts."""
import importlib

from .base import Input, InputLayer, Layer
from .core import Activation, Dense, Dropout, Flatten, Reshape

# The other layers load with their module on first access (PEP 562), so `import fastnn` compiles only what an MLP
# needs: public name -> module of this package that defines it.
_LAZY = {"Bidirectional": "bidirectional", "Conv2D": "conv", "ZeroPadding2D": "conv",
         "Conv2DTranspose": "conv_transpose", "Embedding": "embedding", "BatchNormalization": "normalization",
         "GRU": "recurrent", "LSTM": "recurrent", "SimpleRNN": "recurrent", "UpSampling2D": "upsampling",
         **dict.fromkeys(["AveragePooling2D", "AvgPool2D", "GlobalAveragePooling2D", "GlobalAvgPool2D",
                          "GlobalMaxPool2D", "GlobalMaxPooling2D", "MaxPool2D", "MaxPooling2D"], "pooling")}

__all__ = ["Input", "InputLayer", "Layer", "Dense", "Activation", "Flatten", "Reshape", "Dropout",
           "Conv2D", "ZeroPadding2D", "MaxPool2D", "MaxPooling2D", "AveragePooling2D", "AvgPool2D",
           "GlobalAveragePooling2D", "GlobalAvgPool2D", "GlobalMaxPool2D", "GlobalMaxPooling2D",
           "BatchNormalization", "Conv2DTranspose", "UpSampling2D",
           "Embedding", "SimpleRNN", "LSTM", "GRU", "Bidirectional"]


def __getattr__(name):
    if name in _LAZY.values():  # a submodule, e.g. fastnn.layers.recurrent: the import binds it here
        return importlib.import_module(f"{__name__}.{name}")
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
