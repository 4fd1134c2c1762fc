# Stride-1 convolution as implicit GEMM (src/conv_implicit.c), NHWC, and the activation + bias gradient pass of
# a layer's backward (src/act_colsum.c). The geometry tuple is the layers' own (kh, kw, sh, sw, pt, pl, dh, dw,
# oh, ow), strides 1; these check only what would make C read or write out of bounds.


cdef inline int check_implicit(Py_ssize_t *xs, Py_ssize_t k_rows, Py_ssize_t filters, Py_ssize_t y_rows,
                               Py_ssize_t y_cols, int kh, int kw, int sh, int sw, int oh, int ow,
                               str what) except -1:
    if sh != 1 or sw != 1:
        raise ValueError(f"{what}: implicit convolution needs strides (1, 1), got {(sh, sw)}")
    if k_rows != <Py_ssize_t>kh * kw * xs[3] or y_cols != filters or y_rows != <Py_ssize_t>xs[0] * oh * ow:
        raise ValueError(f"{what}: x {shape4(xs)}, kernel {(k_rows, filters)} and output rows {(y_rows, y_cols)} "
                         f"do not fit a {(kh, kw)} kernel on a {(oh, ow)} output grid")
    return 0


def conv2d_implicit_forward(const float[:, :, :, ::1] x, const float[:, ::1] kernel, float[:, ::1] y, int kh,
                            int kw, int sh, int sw, int pt, int pl, int dh, int dw, int oh, int ow,
                            const float[::1] bias=None, int act=0, float act_alpha=0.0,
                            float[:, :, :, ::1] pooled=None, int32_t[:, :, :, ::1] argmax=None, int n_threads=1,
                            bint winograd=False):
    """y = act(conv(x, kernel) + bias): x (batch, h, w, c), kernel (kh * kw * c, filters), y (batch * oh * ow,
    filters) or None. Bitwise the same as im2col then gemm, unless winograd and `conv2d_winograd_applies`: then
    by Winograd F(2x2, 3x3) (other rounding). pooled (batch, oh // 2, ow // 2, filters; oh and ow even), when
    given, receives y after a 2 x 2 max pool at stride 2 and argmax (its shape, optional) the index of each max
    in its image of y, as maxpool2d_forward."""
    cdef Py_ssize_t n = x.shape[0], filters = kernel.shape[1]
    if y is None and pooled is None:
        raise ValueError("conv2d_implicit_forward: needs y, pooled or both")
    check_implicit(x.shape, kernel.shape[0], filters, n * oh * ow if y is None else y.shape[0],
                   filters if y is None else y.shape[1], kh, kw, sh, sw, oh, ow, "conv2d_implicit_forward")
    if (pooled is not None and (oh % 2 or ow % 2 or not is_shape(pooled.shape, n, oh // 2, ow // 2, filters))) \
            or (argmax is not None and (pooled is None or not is_shape(argmax.shape, n, oh // 2, ow // 2, filters))):
        raise ValueError(f"conv2d_implicit_forward: pooled needs an even output grid (got {(oh, ow)}) and shape "
                         f"{(n, oh // 2, ow // 2, filters)}, argmax pooled's shape, with pooled; got pooled "
                         f"{None if pooled is None else shape4(pooled.shape)}, argmax "
                         f"{None if argmax is None else shape4(argmax.shape)}")
    if bias is not None and bias.shape[0] != filters:
        raise ValueError(f"conv2d_implicit_forward: bias must have length {filters}, got {bias.shape[0]}")
    if n == 0:
        return
    cdef const float *bias_ptr = &bias[0] if bias is not None else NULL
    cdef float *y_ptr = &y[0, 0] if y is not None else NULL
    cdef float *pooled_ptr = &pooled[0, 0, 0, 0] if pooled is not None else NULL
    cdef int32_t *argmax_ptr = &argmax[0, 0, 0, 0] if argmax is not None else NULL
    cdef int status
    with nogil:
        status = fnn_conv2d_implicit_forward_f32(n, x.shape[1], x.shape[2], x.shape[3], kh, kw, pt, pl, dh, dw, oh,
                                                 ow, filters, &x[0, 0, 0, 0], &kernel[0, 0], bias_ptr, act,
                                                 act_alpha, y_ptr, pooled_ptr, argmax_ptr, winograd, n_threads)
    if status != FNN_OK:  # the message is built only when needed
        check(status, f"conv2d_implicit_forward of x {shape4(x.shape)} with kernel {(kh, kw)}, padding {(pt, pl)}, "
                      f"dilation {(dh, dw)}, output {(oh, ow)}")


def conv2d_implicit_backward_data(const float[:, ::1] dz, const float[:, ::1] kernel, float[:, :, :, ::1] dx,
                                  int kh, int kw, int sh, int sw, int pt, int pl, int dh, int dw, int oh, int ow,
                                  const float[:, :, :, ::1] relu_y=None, float[::1] dx_colsum=None,
                                  int n_threads=1, bint winograd=False):
    """dx = the input gradient of the convolution for dz (batch * oh * ow, filters); dx (batch, h, w, c) is
    overwritten; by Winograd F(2x2, 3x3) when winograd and `conv2d_winograd_applies(filters, kh, kw, dh, dw, h,
    w, c)`. relu_y (dx's shape), when given, is the output of a ReLU the input came from: dx is zeroed
    where relu_y <= 0, so it is that ReLU's input gradient. dx_colsum (c), when given, is overwritten with the
    sums of dx per channel (in double, image row by image row): that ReLU's layer's bias gradient."""
    check_implicit(dx.shape, kernel.shape[0], kernel.shape[1], dz.shape[0], dz.shape[1], kh, kw, sh, sw, oh, ow,
                   "conv2d_implicit_backward_data")
    if relu_y is not None and not is_shape(relu_y.shape, dx.shape[0], dx.shape[1], dx.shape[2], dx.shape[3]):
        raise ValueError(f"conv2d_implicit_backward_data: relu_y must have dx's shape {shape4(dx.shape)}, got "
                         f"{shape4(relu_y.shape)}")
    if dx_colsum is not None and dx_colsum.shape[0] != dx.shape[3]:
        raise ValueError(f"conv2d_implicit_backward_data: dx_colsum must have {dx.shape[3]} elements (dx's "
                         f"channels), got {dx_colsum.shape[0]}")
    if dz.shape[0] == 0:
        if dx_colsum is not None:
            dx_colsum[:] = 0
        return
    cdef const float *relu_ptr = &relu_y[0, 0, 0, 0] if relu_y is not None else NULL
    cdef float *colsum_ptr = &dx_colsum[0] if dx_colsum is not None else NULL
    cdef int status
    with nogil:
        status = fnn_conv2d_implicit_backward_data_f32(dx.shape[0], dx.shape[1], dx.shape[2], dx.shape[3], kh, kw,
                                                       pt, pl, dh, dw, oh, ow, kernel.shape[1], &dz[0, 0],
                                                       &kernel[0, 0], relu_ptr, &dx[0, 0, 0, 0], colsum_ptr,
                                                       winograd, n_threads)
    if status != FNN_OK:
        check(status, f"conv2d_implicit_backward_data into dx {shape4(dx.shape)} with kernel {(kh, kw)}, "
                      f"padding {(pt, pl)}, dilation {(dh, dw)}, output {(oh, ow)}")


def conv2d_implicit_backward(const float[:, :, :, ::1] x, const float[:, ::1] dz, const float[:, ::1] kernel,
                             float[:, ::1] dkernel, float[:, :, :, ::1] dx, int kh, int kw, int sh, int sw, int pt,
                             int pl, int dh, int dw, int oh, int ow, const float[:, :, :, ::1] relu_y=None,
                             float[::1] dx_colsum=None, bint accumulate=False, int n_threads=1,
                             bint winograd=False):
    """conv2d_implicit_backward_kernel into dkernel (or None) and conv2d_implicit_backward_data into dx (or None;
    relu_y and dx_colsum as there) in one call; with both, in chunks of images whose maps stay in cache from one
    pass to the other: the same bits as the two calls."""
    check_implicit(x.shape, kernel.shape[0], kernel.shape[1], dz.shape[0], dz.shape[1], kh, kw, sh, sw, oh, ow,
                   "conv2d_implicit_backward")
    if (dx is not None and not is_shape(dx.shape, x.shape[0], x.shape[1], x.shape[2], x.shape[3])) \
            or (dkernel is not None and (dkernel.shape[0] != kernel.shape[0] or dkernel.shape[1] != kernel.shape[1])):
        raise ValueError(f"conv2d_implicit_backward: dx must have x's shape {shape4(x.shape)} and dkernel the "
                         f"kernel's {(kernel.shape[0], kernel.shape[1])}; got dx "
                         f"{None if dx is None else shape4(dx.shape)}, dkernel "
                         f"{None if dkernel is None else (dkernel.shape[0], dkernel.shape[1])}")
    if relu_y is not None and not is_shape(relu_y.shape, x.shape[0], x.shape[1], x.shape[2], x.shape[3]):
        raise ValueError(f"conv2d_implicit_backward: relu_y must have dx's shape {shape4(x.shape)}, got "
                         f"{shape4(relu_y.shape)}")
    if dx_colsum is not None and (dx is None or dx_colsum.shape[0] != x.shape[3]):
        raise ValueError(f"conv2d_implicit_backward: dx_colsum needs dx and {x.shape[3]} elements (dx's "
                         f"channels), got {dx_colsum.shape[0]}")
    if x.shape[0] == 0:
        if dkernel is not None:
            conv2d_implicit_backward_kernel(x, dz, dkernel, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow, accumulate)
        if dx_colsum is not None:
            dx_colsum[:] = 0
        return
    cdef const float *relu_ptr = &relu_y[0, 0, 0, 0] if relu_y is not None else NULL
    cdef float *colsum_ptr = &dx_colsum[0] if dx_colsum is not None else NULL
    cdef float *dkernel_ptr = &dkernel[0, 0] if dkernel is not None else NULL
    cdef float *dx_ptr = &dx[0, 0, 0, 0] if dx is not None else NULL
    cdef int status
    with nogil:
        status = fnn_conv2d_implicit_backward_f32(x.shape[0], x.shape[1], x.shape[2], x.shape[3], kh, kw, pt, pl,
                                                  dh, dw, oh, ow, kernel.shape[1], &x[0, 0, 0, 0], &dz[0, 0],
                                                  &kernel[0, 0], dkernel_ptr, accumulate, relu_ptr, dx_ptr,
                                                  colsum_ptr, winograd, n_threads)
    if status != FNN_OK:  # the message is built only on failure
        check(status, f"conv2d_implicit_backward of x {shape4(x.shape)} with kernel {(kh, kw)}, padding {(pt, pl)}, "
                      f"dilation {(dh, dw)}, output {(oh, ow)}")


def conv2d_winograd_applies(Py_ssize_t c, int kh, int kw, int dh, int dw, Py_ssize_t oh, Py_ssize_t ow,
                            Py_ssize_t filters):
    """Whether a stride-1 convolution of c input channels to `filters` on an oh x ow output grid runs as Winograd
    F(2x2, 3x3) when asked to on this CPU (3x3, undilated, even grid, channels multiples of 16, AVX-512)."""
    return fnn_conv2d_winograd_applies(c, kh, kw, dh, dw, oh, ow, filters) != 0


def conv2d_implicit_backward_kernel(const float[:, :, :, ::1] x, const float[:, ::1] dz, float[:, ::1] dkernel,
                                    int kh, int kw, int sh, int sw, int pt, int pl, int dh, int dw, int oh, int ow,
                                    bint accumulate=False, int n_threads=1):
    """dkernel (kh * kw * c, filters) (+)= the kernel gradient for x (batch, h, w, c) and dz
    (batch * oh * ow, filters)."""
    check_implicit(x.shape, dkernel.shape[0], dkernel.shape[1], dz.shape[0], dz.shape[1], kh, kw, sh, sw, oh, ow,
                   "conv2d_implicit_backward_kernel")
    cdef const float *x_ptr = &x[0, 0, 0, 0] if x.shape[0] > 0 else NULL
    cdef const float *dz_ptr = &dz[0, 0] if dz.shape[0] > 0 else NULL
    cdef int status
    with nogil:
        status = fnn_conv2d_implicit_backward_kernel_f32(x.shape[0], x.shape[1], x.shape[2], x.shape[3], kh, kw,
                                                         pt, pl, dh, dw, oh, ow, dkernel.shape[1], x_ptr, dz_ptr,
                                                         &dkernel[0, 0], accumulate, n_threads)
    if status != FNN_OK:  # the message is built only on failure
        check(status, f"conv2d_implicit_backward_kernel of x {shape4(x.shape)} with kernel {(kh, kw)}, padding "
                      f"{(pt, pl)}, dilation {(dh, dw)}, output {(oh, ow)}")


cdef inline int check_same_shape(Py_ssize_t *shape, Py_ssize_t rows, Py_ssize_t cols, str name) except -1:
    if shape[0] != rows or shape[1] != cols:
        raise ValueError(f"act_backward_colsum: {name} must have dy's shape {(rows, cols)}, "
                         f"got {(shape[0], shape[1])}")
    return 0


def act_backward_colsum(const float[:, ::1] x, const float[:, ::1] y, const float[:, ::1] dy not None,
                        float[:, ::1] dz not None, float[::1] dbias not None, int act, float act_alpha=0.0,
                        bint accumulate=False, int n_threads=1):
    """dz = dy * act'(.) as act_backward (x the pre-activation, y the output, each None when not needed) and
    dbias (+)= dz's column sums, in one pass (src/act_colsum.c)."""
    cdef Py_ssize_t rows = dy.shape[0], cols = dy.shape[1]
    if x is not None:
        check_same_shape(x.shape, rows, cols, "x")
    if y is not None:
        check_same_shape(y.shape, rows, cols, "y")
    check_same_shape(dz.shape, rows, cols, "dz")
    if dbias.shape[0] != cols:
        raise ValueError(f"act_backward_colsum: dbias must have length {cols}, got {dbias.shape[0]}")
    cdef const float *x_ptr = &x[0, 0] if x is not None and rows > 0 else NULL
    cdef const float *y_ptr = &y[0, 0] if y is not None and rows > 0 else NULL
    cdef const float *dy_ptr = &dy[0, 0] if rows > 0 else NULL
    cdef float *dz_ptr = &dz[0, 0] if rows > 0 else NULL
    cdef int status
    with nogil:
        status = fnn_act_backward_colsum_f32(rows, cols, x_ptr, y_ptr, dy_ptr, dz_ptr, act, act_alpha, &dbias[0],
                                             accumulate, n_threads)
    if status != FNN_OK:  # the message is built only on failure
        check(status, f"act_backward_colsum of dy {(rows, cols)} with activation {act}")
