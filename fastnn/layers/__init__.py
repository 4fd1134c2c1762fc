"""Layers, with Keras names, arguments and weight layouts."""
from .base import Input, InputLayer, Layer
from .core import Activation, Dense, Dropout, Flatten, Reshape

__all__ = ["Input", "InputLayer", "Layer", "Dense", "Activation", "Flatten", "Reshape", "Dropout"]
