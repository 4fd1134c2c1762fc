# Activations, softmax, column sums and dropout (src/act.c). Hot path: cheap shape checks only; the values
# were validated at the public boundary (fastnn/ops.py).

ACT_LINEAR = FNN_ACT_LINEAR
ACT_RELU = FNN_ACT_RELU
ACT_LEAKY_RELU = FNN_ACT_LEAKY_RELU
ACT_SIGMOID = FNN_ACT_SIGMOID
ACT_TANH = FNN_ACT_TANH
ACT_GELU = FNN_ACT_GELU


cdef inline int64_t _ew_row_stride(Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t row_bytes, Py_ssize_t col_bytes,
                                   str what) except -1:
    """Leading dimension (floats) of a 2-D view whose rows are contiguous; one row needs none."""
    if cols > 1 and col_bytes != sizeof(float):
        raise ValueError(f"{what}: rows must be contiguous (last stride {sizeof(float)} bytes), got a last "
                         f"stride of {col_bytes} bytes")
    if rows <= 1:
        return cols
    if row_bytes < <Py_ssize_t>(cols * sizeof(float)) or row_bytes % sizeof(float):
        raise ValueError(f"{what}: rows must not overlap and must start a multiple of 4 bytes apart; got a "
                         f"row stride of {row_bytes} bytes for rows of {cols} floats")
    return row_bytes // sizeof(float)


cdef inline str _ew_shape(Py_ssize_t rows, Py_ssize_t cols):
    return f"({rows}, {cols})"


def act_forward(const float[:, :] x not None, const float[::1] bias, float[:, :] y not None, int act,
                float alpha, int n_threads):
    """y = act(x + bias) for 2-D x and y of the same shape (rows contiguous; y may be x). bias: None or (cols,).

    act is one of the ACT_* constants; alpha is leaky_relu's negative slope.
    """
    cdef Py_ssize_t rows = x.shape[0], cols = x.shape[1]
    if y.shape[0] != rows or y.shape[1] != cols:
        raise ValueError(f"act_forward: y has shape {_ew_shape(y.shape[0], y.shape[1])}, x has shape "
                         f"{_ew_shape(rows, cols)}; they must match")
    if bias is not None and bias.shape[0] != cols:
        raise ValueError(f"act_forward: bias has length {bias.shape[0]}, x has {cols} columns")
    cdef int64_t ldx = _ew_row_stride(rows, cols, x.strides[0], x.strides[1], "act_forward x")
    cdef int64_t ldy = _ew_row_stride(rows, cols, y.strides[0], y.strides[1], "act_forward y")
    if rows == 0 or cols == 0:
        return
    cdef const float *b = &bias[0] if bias is not None else NULL
    cdef int status
    with nogil:
        status = fnn_act_forward_f32(rows, cols, &x[0, 0], ldx, b, &y[0, 0], ldy, act, alpha, n_threads)
    if status != FNN_OK:
        check(status, f"act_forward (act={act}) on shape {_ew_shape(rows, cols)}")


def act_backward(const float[::1] x, const float[::1] y, const float[::1] dy not None, float[::1] dx not None,
                 int act, float alpha, int n_threads):
    """dx = dy * act'(.) on flat arrays; x (pre-activation) is needed for gelu, y (output) for sigmoid and
    tanh, either for relu and leaky_relu; the other may be None. dx may be dy."""
    cdef Py_ssize_t n = dy.shape[0]
    if dx.shape[0] != n or (x is not None and x.shape[0] != n) or (y is not None and y.shape[0] != n):
        raise ValueError(f"act_backward: lengths differ: dy {n}, dx {dx.shape[0]}, "
                         f"x {None if x is None else x.shape[0]}, y {None if y is None else y.shape[0]}")
    if n == 0:
        return
    cdef const float *xp = &x[0] if x is not None else NULL
    cdef const float *yp = &y[0] if y is not None else NULL
    cdef int status
    with nogil:
        status = fnn_act_backward_f32(n, xp, yp, &dy[0], &dx[0], act, alpha, n_threads)
    if status != FNN_OK:
        check(status, f"act_backward (act={act}; x given: {x is not None}, y given: {y is not None})")


def softmax_forward(const float[:, ::1] x not None, float[:, ::1] y not None, int n_threads):
    """Row-wise softmax of C-contiguous x into y (same shape; y may be x)."""
    cdef Py_ssize_t rows = x.shape[0], cols = x.shape[1]
    if y.shape[0] != rows or y.shape[1] != cols:
        raise ValueError(f"softmax_forward: y has shape {_ew_shape(y.shape[0], y.shape[1])}, x has shape "
                         f"{_ew_shape(rows, cols)}; they must match")
    if rows == 0 or cols == 0:
        return
    cdef int status
    with nogil:
        status = fnn_softmax_forward_f32(rows, cols, &x[0, 0], &y[0, 0], n_threads)
    check(status, "softmax_forward")


def softmax_backward(const float[:, ::1] y not None, const float[:, ::1] dy not None, float[:, ::1] dx not None,
                     int n_threads):
    """dx = y * (dy - rowsum(dy * y)), all of one shape (dx may be dy)."""
    cdef Py_ssize_t rows = y.shape[0], cols = y.shape[1]
    if dy.shape[0] != rows or dy.shape[1] != cols or dx.shape[0] != rows or dx.shape[1] != cols:
        raise ValueError(f"softmax_backward: shapes differ: y {_ew_shape(rows, cols)}, dy "
                         f"{_ew_shape(dy.shape[0], dy.shape[1])}, dx {_ew_shape(dx.shape[0], dx.shape[1])}")
    if rows == 0 or cols == 0:
        return
    cdef int status
    with nogil:
        status = fnn_softmax_backward_f32(rows, cols, &y[0, 0], &dy[0, 0], &dx[0, 0], n_threads)
    check(status, "softmax_backward")


def colsum(const float[:, :] x not None, float[::1] out not None, bint accumulate, int n_threads):
    """out[j] (+)= sum_i x[i, j], summed in double (rows of x contiguous)."""
    cdef Py_ssize_t rows = x.shape[0], cols = x.shape[1]
    if out.shape[0] != cols:
        raise ValueError(f"colsum: out has length {out.shape[0]}, x has shape {_ew_shape(rows, cols)}")
    cdef int64_t ldx = _ew_row_stride(rows, cols, x.strides[0], x.strides[1], "colsum x")
    if cols == 0:
        return
    cdef const float *xp = &x[0, 0] if rows > 0 else NULL
    cdef int status
    with nogil:
        status = fnn_colsum_f32(rows, cols, xp, ldx, &out[0], accumulate, n_threads)
    check(status, "colsum")


def dropout_forward(const float[::1] x not None, float[::1] y not None, unsigned char[::1] mask not None,
                    float rate, unsigned long long seed, int n_threads):
    """Inverted dropout on flat arrays: mask[i] = 1 (kept) or 0, y = x * mask / (1 - rate); 0 <= rate < 1."""
    cdef Py_ssize_t n = x.shape[0]
    if y.shape[0] != n or mask.shape[0] != n:
        raise ValueError(f"dropout_forward: lengths differ: x {n}, y {y.shape[0]}, mask {mask.shape[0]}")
    if not (0.0 <= rate < 1.0):
        raise ValueError(f"dropout_forward: rate must be in [0, 1), got {rate}")
    if n == 0:
        return
    cdef int status
    with nogil:
        status = fnn_dropout_forward_f32(n, &x[0], &y[0], &mask[0], rate, seed, n_threads)
    check(status, "dropout_forward")


def dropout_backward(const float[::1] dy not None, const unsigned char[::1] mask not None, float[::1] dx not None,
                     float rate, int n_threads):
    """dx = dy * mask / (1 - rate) (dx may be dy)."""
    cdef Py_ssize_t n = dy.shape[0]
    if dx.shape[0] != n or mask.shape[0] != n:
        raise ValueError(f"dropout_backward: lengths differ: dy {n}, dx {dx.shape[0]}, mask {mask.shape[0]}")
    if not (0.0 <= rate < 1.0):
        raise ValueError(f"dropout_backward: rate must be in [0, 1), got {rate}")
    if n == 0:
        return
    cdef int status
    with nogil:
        status = fnn_dropout_backward_f32(n, &dy[0], &mask[0], &dx[0], rate, n_threads)
    check(status, "dropout_backward")
