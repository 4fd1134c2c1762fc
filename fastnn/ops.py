"""One validated Python verb per C kernel.

Each verb checks its arguments once (dtype, rank, shape, contiguity, finiteness where it matters), allocates
its output when none is given and calls the kernel through fastnn._kernels. `fastnn._reference` holds a plain
NumPy twin of every verb with the same signature; the tests compare the two.
Model internals call fastnn._kernels directly with buffers they planned themselves, so the hot path pays for
validation once, at the public boundary.
"""
import numpy as np

from . import _kernels
from ._threads import effective_threads
from ._validation import as_float32_array

# ---- matrix multiplication (src/gemm*.c) --------------------------------------------------------------

# ---- activations, softmax, reductions, dropout (src/act.c) --------------------------------------------

# ---- losses (src/loss.c) ------------------------------------------------------------------------------

# ---- optimizer updates (src/optim.c) ------------------------------------------------------------------
