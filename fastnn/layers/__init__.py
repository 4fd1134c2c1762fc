"""Layers, with Keras names, arguments and weight layouts."""
from .base import Input, InputLayer, Layer
from .bidirectional import Bidirectional
from .conv import Conv2D, ZeroPadding2D
from .embedding import Embedding
from .core import Activation, Dense, Dropout, Flatten, Reshape
from .normalization import BatchNormalization
from .recurrent import GRU, LSTM, SimpleRNN
from .pooling import (AveragePooling2D, AvgPool2D, GlobalAveragePooling2D, GlobalAvgPool2D, GlobalMaxPool2D,
                      GlobalMaxPooling2D, MaxPool2D, MaxPooling2D)

__all__ = ["Input", "InputLayer", "Layer", "Dense", "Activation", "Flatten", "Reshape", "Dropout",
           "Conv2D", "ZeroPadding2D", "MaxPool2D", "MaxPooling2D", "AveragePooling2D", "AvgPool2D",
           "GlobalAveragePooling2D", "GlobalAvgPool2D", "GlobalMaxPool2D", "GlobalMaxPooling2D",
           "BatchNormalization",
           "Embedding", "SimpleRNN", "LSTM", "GRU", "Bidirectional"]
