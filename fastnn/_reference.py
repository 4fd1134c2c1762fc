"""Plain NumPy twins of the verbs in fastnn.ops, with the same signatures.

They are the specification: tests compare every kernel against them, and they make bugs easy to bisect.
They compute in float64 where that makes them a better reference, and return float32 like the kernels.
"""
import numpy as np

# ---- matrix multiplication ------------------------------------------------------------------------------

# ---- activations, softmax, reductions, dropout ----------------------------------------------------------

# ---- losses ---------------------------------------------------------------------------------------------

# ---- optimizer updates ----------------------------------------------------------------------------------
