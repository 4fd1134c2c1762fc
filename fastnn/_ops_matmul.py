"""Matrix multiplication (src/gemm*.c): the validated verbs of fastnn.ops (see its docstring)."""
import numpy as np

from . import _kernels
from ._threads import effective_threads
from ._validation import as_float32_array, check_output


def matmul(a, b, trans_a=False, trans_b=False, out=None):
    """Matrix product op(a) @ op(b) in float32, where op(x) is x.T when its trans flag is set.

    Parameters
    ----------
    a : array_like, shape (m, k), or (k, m) when trans_a
    b : array_like, shape (k, n), or (n, k) when trans_b
        Cast to float32 when that is exact enough (see fastnn._validation); NaN and Inf propagate as in NumPy.
    trans_a, trans_b : bool
        Use the transpose of a / b without copying it.
    out : ndarray of float32, shape (m, n), optional
        C-contiguous and writable; overwritten. It may be a or b themselves.

    Returns
    -------
    out : ndarray of float32, shape (m, n)

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn import ops
    >>> ops.matmul(np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((2, 3), np.float32), trans_b=True)
    array([[ 3.,  3.],
           [12., 12.]], dtype=float32)
    """
    a = as_float32_array(a, "a", ndim=2, finite=False)
    b = as_float32_array(b, "b", ndim=2, finite=False)
    trans_a, trans_b = bool(trans_a), bool(trans_b)
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    kb, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if k != kb:
        raise ValueError(f"matmul: inner dimensions differ: a {a.shape}{'.T' if trans_a else ''} @ "
                         f"b {b.shape}{'.T' if trans_b else ''} needs op(a) columns ({k}) == op(b) rows ({kb})")
    if out is None:
        out = np.empty((m, n), dtype=np.float32)
    else:
        check_output(out, (m, n))
    # The kernel reads a and b while writing out: an output that overlaps an input gets a temporary.
    target = out
    if out.size and (np.may_share_memory(out, a) or np.may_share_memory(out, b)):
        target = np.empty_like(out)
    _kernels.gemm(a, b, target, trans_a, trans_b, False, None, 0, 0.0, effective_threads())
    if target is not out:
        out[...] = target
    return out
