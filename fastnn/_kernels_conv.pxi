# Convolution columns (src/im2col.c) and pooling (src/pool.c), NHWC. Geometry (kernel, strides, top/left
# padding, dilation, output grid) is computed and validated by the layers; these check only what would make C
# read or write out of bounds.


cdef inline tuple shape4(Py_ssize_t *s):
    return (s[0], s[1], s[2], s[3])


cdef inline bint is_shape(Py_ssize_t *s, Py_ssize_t n, Py_ssize_t h, Py_ssize_t w, Py_ssize_t c):
    return s[0] == n and s[1] == h and s[2] == w and s[3] == c


cdef inline int check_cols(Py_ssize_t batch, Py_ssize_t c, Py_ssize_t rows, Py_ssize_t width, int kh, int kw,
                           int oh, int ow, int64_t row0, str what) except -1:
    if width != <Py_ssize_t>kh * kw * c:
        raise ValueError(f"{what}: the column matrix must have kh * kw * channels = {kh * kw * c} columns, "
                         f"got {width}")
    if row0 < 0 or oh < 1 or ow < 1 or row0 + rows > <int64_t>batch * oh * ow:
        raise ValueError(f"{what}: rows [{row0}, {row0 + rows}) are outside the {batch * oh * ow} rows of a "
                         f"batch of {batch} on a {oh} x {ow} output grid")
    return 0


cdef inline int64_t cols_ld(Py_ssize_t rows, Py_ssize_t width, Py_ssize_t row_stride, Py_ssize_t col_stride,
                            str what) except -1:
    """Elements between rows of a column matrix whose rows are contiguous and do not overlap."""
    if width > 1 and col_stride != sizeof(float):
        raise ValueError(f"{what}: the rows of the column matrix must be contiguous, got a column stride of "
                         f"{col_stride} bytes")
    if rows <= 1:
        return width
    if row_stride < <Py_ssize_t>(width * sizeof(float)) or row_stride % sizeof(float):
        raise ValueError(f"{what}: rows of the column matrix must not overlap and must be a multiple of 4 bytes "
                         f"apart; got a row stride of {row_stride} bytes for rows of {width} floats")
    return row_stride // sizeof(float)


def im2col(const float[:, :, :, ::1] x, float[:, :] cols, int kh, int kw, int sh, int sw, int pt, int pl,
           int dh, int dw, int oh, int ow, int64_t row0=0, int n_threads=1):
    """Rows [row0, row0 + len(cols)) of x's (batch, h, w, c) column matrix into cols (see src/im2col.c)."""
    check_cols(x.shape[0], x.shape[3], cols.shape[0], cols.shape[1], kh, kw, oh, ow, row0, "im2col")
    if cols.shape[0] == 0:
        return
    cdef int64_t ldcols = cols_ld(cols.shape[0], cols.shape[1], cols.strides[0], cols.strides[1], "im2col")
    cdef int status
    with nogil:
        status = fnn_im2col_f32(x.shape[0], x.shape[1], x.shape[2], x.shape[3], kh, kw, sh, sw, pt, pl, dh, dw,
                                oh, ow, row0, cols.shape[0], &x[0, 0, 0, 0], &cols[0, 0],
                                ldcols, n_threads)
    if status != FNN_OK:  # the message is built only on failure
        check(status, f"im2col of x {shape4(x.shape)} with kernel {(kh, kw)}, strides {(sh, sw)}, "
                      f"padding {(pt, pl)}, dilation {(dh, dw)}, output {(oh, ow)}")


def col2im(const float[:, :] cols, float[:, :, :, ::1] dx, int kh, int kw, int sh, int sw, int pt, int pl,
           int dh, int dw, int oh, int ow, int64_t row0=0, int n_threads=1):
    """dx += the image-shaped sum of column rows [row0, row0 + len(cols)) (the adjoint of im2col)."""
    check_cols(dx.shape[0], dx.shape[3], cols.shape[0], cols.shape[1], kh, kw, oh, ow, row0, "col2im")
    if cols.shape[0] == 0:
        return
    cdef int64_t ldcols = cols_ld(cols.shape[0], cols.shape[1], cols.strides[0], cols.strides[1], "col2im")
    cdef int status
    with nogil:
        status = fnn_col2im_f32(dx.shape[0], dx.shape[1], dx.shape[2], dx.shape[3], kh, kw, sh, sw, pt, pl, dh,
                                dw, oh, ow, row0, cols.shape[0], &cols[0, 0], ldcols, &dx[0, 0, 0, 0],
                                n_threads)
    if status != FNN_OK:  # the message is built only on failure
        check(status, f"col2im into dx {shape4(dx.shape)} with kernel {(kh, kw)}, strides {(sh, sw)}, "
                      f"padding {(pt, pl)}, dilation {(dh, dw)}, output {(oh, ow)}")


cdef inline int check_pool(Py_ssize_t *xs, Py_ssize_t *ys, str what) except -1:
    if xs[0] != ys[0] or xs[3] != ys[3]:
        raise ValueError(f"{what}: input {shape4(xs)} and output {shape4(ys)} must have the same batch "
                         f"size and channels")
    return 0


def maxpool2d_forward(const float[:, :, :, ::1] x, float[:, :, :, ::1] y, int32_t[:, :, :, ::1] argmax, int ph,
                      int pw, int sh, int sw, int pt, int pl, int n_threads=1):
    """y = max over each window's valid elements; argmax (None: not wanted) receives each max's index within
    its image."""
    check_pool(x.shape, y.shape, "maxpool2d_forward")
    if argmax is not None and shape4(argmax.shape) != shape4(y.shape):
        raise ValueError(f"maxpool2d_forward: argmax must have y's shape {shape4(y.shape)}, "
                         f"got {shape4(argmax.shape)}")
    if x.shape[0] == 0:
        return
    cdef int status
    with nogil:
        status = fnn_maxpool2d_forward_f32(x.shape[0], x.shape[1], x.shape[2], x.shape[3], ph, pw, sh, sw, pt, pl,
                                           y.shape[1], y.shape[2], &x[0, 0, 0, 0], &y[0, 0, 0, 0],
                                           &argmax[0, 0, 0, 0] if argmax is not None else NULL, n_threads)
    if status != FNN_OK:  # build the message only on failure: it costs about a microsecond
        check(status, f"maxpool2d_forward of x {shape4(x.shape)} into y {shape4(y.shape)} with pool "
                      f"{(ph, pw)}, strides {(sh, sw)}, padding {(pt, pl)}")


def maxpool2d_backward(const float[:, :, :, ::1] dy, const int32_t[:, :, :, ::1] argmax, float[:, :, :, ::1] dx,
                       int n_threads=1):
    """dx = 0, then each dy element added at its argmax."""
    check_pool(dx.shape, dy.shape, "maxpool2d_backward")
    if shape4(argmax.shape) != shape4(dy.shape):
        raise ValueError(f"maxpool2d_backward: argmax must have dy's shape {shape4(dy.shape)}, "
                         f"got {shape4(argmax.shape)}")
    if dx.shape[0] == 0:
        return
    cdef int status
    with nogil:
        status = fnn_maxpool2d_backward_f32(dx.shape[0], dx.shape[1], dx.shape[2], dx.shape[3], dy.shape[1],
                                            dy.shape[2], &dy[0, 0, 0, 0], &argmax[0, 0, 0, 0], &dx[0, 0, 0, 0],
                                            n_threads)
    if status != FNN_OK:  # build the message only on failure: it costs about a microsecond
        check(status, f"maxpool2d_backward of dy {shape4(dy.shape)} into dx {shape4(dx.shape)} "
                      f"(an argmax index out of range?)")


def maxpool2d_backward_relu(const float[:, :, :, ::1] dy, const int32_t[:, :, :, ::1] argmax,
                            const float[:, :, :, ::1] pooled, float[:, :, :, ::1] dz, float[::1] dbias,
                            int n_threads=1):
    """dz = 0, then each dy element whose pooled value is > 0 added at its argmax (the gradient through the
    pool and the ReLU before it); dbias = dz's sum per channel."""
    check_pool(dz.shape, dy.shape, "maxpool2d_backward_relu")
    if shape4(argmax.shape) != shape4(dy.shape) or shape4(pooled.shape) != shape4(dy.shape):
        raise ValueError(f"maxpool2d_backward_relu: argmax and pooled must have dy's shape {shape4(dy.shape)}, "
                         f"got {shape4(argmax.shape)} and {shape4(pooled.shape)}")
    if dbias.shape[0] != dz.shape[3]:
        raise ValueError(f"maxpool2d_backward_relu: dbias must have {dz.shape[3]} elements, got {dbias.shape[0]}")
    cdef int status
    with nogil:
        status = fnn_maxpool2d_backward_relu_f32(dz.shape[0], dz.shape[1], dz.shape[2], dz.shape[3], dy.shape[1],
                                                 dy.shape[2], &dy[0, 0, 0, 0] if dy.shape[0] else NULL,
                                                 &argmax[0, 0, 0, 0] if dy.shape[0] else NULL,
                                                 &pooled[0, 0, 0, 0] if dy.shape[0] else NULL,
                                                 &dz[0, 0, 0, 0] if dz.shape[0] else NULL, &dbias[0], n_threads)
    if status != FNN_OK:
        check(status, f"maxpool2d_backward_relu of dy {shape4(dy.shape)} into dz {shape4(dz.shape)} "
                      f"(an argmax index out of range?)")


def avgpool2d_forward(const float[:, :, :, ::1] x, float[:, :, :, ::1] y, int ph, int pw, int sh, int sw, int pt,
                      int pl, int n_threads=1):
    """y = mean over each window's valid elements (padding not counted)."""
    check_pool(x.shape, y.shape, "avgpool2d_forward")
    if x.shape[0] == 0:
        return
    cdef int status
    with nogil:
        status = fnn_avgpool2d_forward_f32(x.shape[0], x.shape[1], x.shape[2], x.shape[3], ph, pw, sh, sw, pt, pl,
                                           y.shape[1], y.shape[2], &x[0, 0, 0, 0], &y[0, 0, 0, 0], n_threads)
    if status != FNN_OK:  # build the message only on failure: it costs about a microsecond
        check(status, f"avgpool2d_forward of x {shape4(x.shape)} into y {shape4(y.shape)} with pool "
                      f"{(ph, pw)}, strides {(sh, sw)}, padding {(pt, pl)}")


def avgpool2d_backward(const float[:, :, :, ::1] dy, float[:, :, :, ::1] dx, int ph, int pw, int sh, int sw,
                       int pt, int pl, int n_threads=1):
    """dx = each dy element spread evenly over its window's valid elements."""
    check_pool(dx.shape, dy.shape, "avgpool2d_backward")
    if dx.shape[0] == 0:
        return
    cdef int status
    with nogil:
        status = fnn_avgpool2d_backward_f32(dx.shape[0], dx.shape[1], dx.shape[2], dx.shape[3], ph, pw, sh, sw,
                                            pt, pl, dy.shape[1], dy.shape[2], &dy[0, 0, 0, 0], &dx[0, 0, 0, 0],
                                            n_threads)
    if status != FNN_OK:  # build the message only on failure: it costs about a microsecond
        check(status, f"avgpool2d_backward of dy {shape4(dy.shape)} into dx {shape4(dx.shape)} with pool "
                      f"{(ph, pw)}, strides {(sh, sw)}, padding {(pt, pl)}")


def conv2d_forward(const float[:, :, :, ::1] x, const float[:, ::1] kernel, float[:, ::1] y, float[:, :, ::1] cols,
                   int kh, int kw, int sh, int sw, int pt, int pl, int dh, int dw, int oh, int ow,
                   const float[::1] bias=None, int act=0, float act_alpha=0.0, int n_threads=1):
    """y = act(im2col(x) @ kernel + bias) (see src/conv.c): x (batch, h, w, c), kernel (kh * kw * c, filters),
    y (batch * oh * ow, filters); cols (blocks, chunk, kh * kw * c) is the workspace, one block per thread
    (at most `blocks` threads). Bitwise the same as im2col then gemm."""
    cdef Py_ssize_t filters = kernel.shape[1]
    if kernel.shape[0] != <Py_ssize_t>kh * kw * x.shape[3] or y.shape[1] != filters \
            or y.shape[0] != <Py_ssize_t>x.shape[0] * oh * ow or cols.shape[2] != kernel.shape[0]:
        raise ValueError(f"conv2d_forward: x {shape4(x.shape)}, kernel {(kernel.shape[0], kernel.shape[1])}, y "
                         f"{(y.shape[0], y.shape[1])} and cols {(cols.shape[0], cols.shape[1], cols.shape[2])} do "
                         f"not fit a {(kh, kw)} kernel on a {(oh, ow)} output grid")
    if bias is not None and bias.shape[0] != filters:
        raise ValueError(f"conv2d_forward: bias must have length {filters}, got {bias.shape[0]}")
    if cols.shape[0] < 1 or cols.shape[1] < 1:
        raise ValueError(f"conv2d_forward: the workspace cols must hold at least one row, got shape "
                         f"{(cols.shape[0], cols.shape[1], cols.shape[2])}")
    if y.shape[0] == 0:
        return
    cdef const float *bias_ptr = &bias[0] if bias is not None else NULL
    cdef int status
    with nogil:
        status = fnn_conv2d_forward_f32(x.shape[0], x.shape[1], x.shape[2], x.shape[3], kh, kw, sh, sw, pt, pl, dh,
                                        dw, oh, ow, filters, &x[0, 0, 0, 0], &kernel[0, 0], bias_ptr, act,
                                        act_alpha, &y[0, 0], &cols[0, 0, 0], cols.shape[1], cols.shape[0],
                                        n_threads)
    if status != FNN_OK:  # the message is built only on failure
        check(status, f"conv2d_forward of x {shape4(x.shape)} with kernel {(kh, kw)}, strides {(sh, sw)}, "
                      f"padding {(pt, pl)}, dilation {(dh, dw)}, output {(oh, ow)}")
