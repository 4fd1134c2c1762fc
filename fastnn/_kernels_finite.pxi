# The finiteness check of input arrays (src/finite.c), for fastnn._validation.

from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBUF_FORMAT, PyBuffer_Release, PyObject_GetBuffer

# Below this many bytes the scan takes less than releasing and taking back the GIL.
cdef Py_ssize_t _FINITE_NOGIL_BYTES = 1 << 18


def all_finite_f32(x):
    """Whether every value of x, a C-contiguous float32 array of any shape, is finite (neither NaN nor infinite)."""
    cdef Py_buffer view
    cdef int ok
    PyObject_GetBuffer(x, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
    try:
        if view.itemsize != 4 or not is_float32_format(view.format):  # (_kernels_gemm.pxi)
            raise TypeError(f"all_finite_f32: a C-contiguous float32 array is expected, got buffer format "
                            f"{view.format.decode() if view.format != NULL else None!r}")
        if view.len < _FINITE_NOGIL_BYTES:
            ok = fnn_all_finite_f32(view.len // 4, <const float *>view.buf)
        else:
            with nogil:
                ok = fnn_all_finite_f32(view.len // 4, <const float *>view.buf)
    finally:
        PyBuffer_Release(&view)
    return ok != 0
