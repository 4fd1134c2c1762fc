# Matrix multiplication (src/gemm*.c) and the FMA throughput probe (src/peak.c).

from time import perf_counter


from cpython.buffer cimport PyBUF_RECORDS_RO, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer


cdef inline int64_t leading_dim(Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t row_stride, str name) except -1:
    """Elements between row starts; a single row needs none, so any stride is fine there."""
    if rows <= 1:
        return cols if cols > 0 else 1
    if row_stride < <Py_ssize_t>(cols * sizeof(float)) or row_stride % sizeof(float):
        raise ValueError(f"gemm: rows of {name} must not overlap and must be a multiple of 4 bytes apart; "
                         f"got a row stride of {row_stride} bytes for rows of {cols} floats")
    return row_stride // sizeof(float)


cdef inline bint is_float32_format(const char *fmt) noexcept:
    if fmt == NULL:
        return False
    if fmt[0] == b'@' or fmt[0] == b'=' or fmt[0] == b'<':  # native, standard or little-endian (x86-64)
        fmt += 1
    return fmt[0] == b'f' and fmt[1] == 0


cdef int acquire_f32(object x, Py_buffer *view, int ndim, bint writable, str name) except -1:
    """Takes x's buffer: `ndim` dimensions of float32 (and writable when asked), else a clear error.

    A raw buffer costs a third of a typed memoryview's set-up, which dominates a small product (64^3: 0.3 of
    2.9 us)."""
    PyObject_GetBuffer(x, view, PyBUF_RECORDS_RO | (PyBUF_WRITABLE if writable else 0))
    if view.ndim != ndim or view.itemsize != sizeof(float) or not is_float32_format(view.format):
        got = f"{view.ndim} dimensions of format {view.format.decode() if view.format != NULL else '?'}"
        PyBuffer_Release(view)
        raise ValueError(f"gemm: {name} must be a {ndim}-D float32 array, got {got}")
    return 0


def gemm(a, b, c, bint trans_a=False, bint trans_b=False, bint accumulate=False, bias=None, int act=0,
         float act_alpha=0.0, int n_threads=1):
    """c = act(op(a) @ op(b) [+ c] [+ bias]) in place.

    a, b, c (2-D) and bias (1-D) are float32 buffers (NumPy arrays). op(a) is a.T when trans_a (a is then
    k x m), op(b) is b.T when trans_b (b is then n x k); c is m x n and writable. Rows of a, b and c may be
    further apart than their length (sub-blocks of larger arrays) but each row must be contiguous.
    accumulate adds into c (else c is overwritten and never read); bias (length n, contiguous) is added to
    every row; act (fnn_act: 0 linear, 1 relu, 2 leaky relu with slope act_alpha, 3 sigmoid, 4 tanh,
    5 gelu) is applied last. c must not overlap a or b.
    """
    cdef Py_buffer views[4]  # a, b, c, bias
    cdef int held = 0
    try:
        acquire_f32(a, &views[0], 2, False, "a")
        held = 1
        acquire_f32(b, &views[1], 2, False, "b")
        held = 2
        acquire_f32(c, &views[2], 2, True, "c")
        held = 3
        if bias is not None:
            acquire_f32(bias, &views[3], 1, False, "bias")
            held = 4
        gemm_buffers(&views[0], &views[1], &views[2], &views[3] if held == 4 else NULL, trans_a, trans_b,
                     accumulate, act, act_alpha, n_threads)
    finally:
        while held > 0:
            held -= 1
            PyBuffer_Release(&views[held])


cdef int gemm_buffers(Py_buffer *a, Py_buffer *b, Py_buffer *c, Py_buffer *bias, bint trans_a, bint trans_b,
                      bint accumulate, int act, float act_alpha, int n_threads) except -1:
    cdef Py_ssize_t m = a.shape[1] if trans_a else a.shape[0]
    cdef Py_ssize_t k = a.shape[0] if trans_a else a.shape[1]
    cdef Py_ssize_t kb = b.shape[1] if trans_b else b.shape[0]
    cdef Py_ssize_t n = b.shape[0] if trans_b else b.shape[1]
    if kb != k or c.shape[0] != m or c.shape[1] != n:
        raise ValueError(f"gemm: shapes do not match: a {(a.shape[0], a.shape[1])}{'.T' if trans_a else ''} @ "
                         f"b {(b.shape[0], b.shape[1])}{'.T' if trans_b else ''} -> c {(c.shape[0], c.shape[1])}")
    if (a.strides[1] != sizeof(float) and a.shape[1] > 1) or (b.strides[1] != sizeof(float) and b.shape[1] > 1) \
            or (c.strides[1] != sizeof(float) and c.shape[1] > 1):
        raise ValueError(f"gemm: the last dimension of a, b and c must be contiguous, got strides "
                         f"{(a.strides[0], a.strides[1])}, {(b.strides[0], b.strides[1])}, "
                         f"{(c.strides[0], c.strides[1])}")
    if bias is not NULL and bias.shape[0] != n:
        raise ValueError(f"gemm: bias must have length {n} (columns of c), got {bias.shape[0]}")
    if bias is not NULL and bias.strides[0] != sizeof(float) and n > 1:
        raise ValueError(f"gemm: bias must be contiguous, got a stride of {bias.strides[0]} bytes")
    cdef int64_t lda = leading_dim(a.shape[0], a.shape[1], a.strides[0], "a")
    cdef int64_t ldb = leading_dim(b.shape[0], b.shape[1], b.strides[0], "b")
    cdef int64_t ldc = leading_dim(c.shape[0], c.shape[1], c.strides[0], "c")
    cdef const float *bias_ptr = <const float *>bias.buf if bias is not NULL and n > 0 else NULL
    cdef int status
    with nogil:
        status = fnn_gemm_f32(m, n, k, <const float *>a.buf, lda, trans_a, <const float *>b.buf, ldb, trans_b,
                              <float *>c.buf, ldc, accumulate, bias_ptr, act, act_alpha, n_threads)
    if status != FNN_OK:
        check(status, f"gemm of a {(a.shape[0], a.shape[1])} and b {(b.shape[0], b.shape[1])} into c "
                      f"{(c.shape[0], c.shape[1])}")
    return 0


def gemv_in_halves(int64_t m, int64_t k):
    """Whether gemm sums a product of m rows (not transposed) over k in two fixed halves on this CPU: a single
    row against 512 or more rows, which two threads can then split by rows."""
    return fnn_gemv_in_halves(m, k) != 0


def fma_peak_gflops(double seconds=0.2, int n_threads=1):
    """Measured float32 FMA throughput of this machine in GFLOP/s, on n_threads threads with the current ISA.

    Independent FMA chains run for about `seconds`; the best of a few timed runs is returned.
    """
    if not seconds > 0 or n_threads < 1:
        raise ValueError(f"fma_peak_gflops: seconds must be > 0 and n_threads >= 1, got {seconds}, {n_threads}")
    cdef double flops = 0.0
    cdef int64_t iterations = 1 << 16
    cdef int status
    while True:  # calibrate: grow the run until it takes a measurable time
        t0 = perf_counter()
        with nogil:
            status = fnn_fma_peak_f32(iterations, n_threads, &flops)
        check(status, "fma_peak_gflops")
        elapsed = perf_counter() - t0
        if elapsed > 0.01 or iterations > (1 << 40):
            break
        iterations *= 4
    iterations = max(1, <int64_t>(iterations * (seconds / 3) / elapsed))
    best = 0.0
    for _ in range(3):
        t0 = perf_counter()
        with nogil:
            status = fnn_fma_peak_f32(iterations, n_threads, &flops)
        check(status, "fma_peak_gflops")
        best = max(best, flops / (perf_counter() - t0) / 1e9)
    return best
