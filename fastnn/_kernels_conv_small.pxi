# Direct convolution for few channels (src/conv_small.c), NHWC, stride 1, no dilation; optionally with the
# 2 x 2 stride-2 max pool that follows fused in, and the backward passes. Geometry is computed and validated by the layer; this checks
# only what would make C read or write out of bounds.


def conv2d_small_forward(const float[:, :, :, ::1] x, const float[:, :, :, ::1] kernel, float[:, :, :, ::1] y,
                         int pt, int pl, int oh, int ow, const float[::1] bias=None, int act=0, float act_alpha=0.0,
                         float[:, :, :, ::1] pooled=None, int32_t[:, :, :, ::1] argmax=None, int n_threads=1):
    """y = act(conv(x, kernel) + bias) on the oh x ow output grid of top/left padding pt, pl (input pixel
    (oy + ky - pt, ox + kx - pl), zero outside): x (batch, h, w, cin), kernel (kh, kw, cin, cout), y (batch, oh,
    ow, cout) or None; pooled (batch, oh // 2, ow // 2, cout), when given, receives y after a 2 x 2 max pool at
    stride 2 and argmax (its shape, optional) the index of each max in its image of y, as maxpool2d_forward.
    act: linear, relu or leaky_relu (fnn_act codes)."""
    cdef Py_ssize_t n = x.shape[0], cout = kernel.shape[3]
    if kernel.shape[2] != x.shape[3] or (y is None and pooled is None) \
            or (y is not None and not is_shape(y.shape, n, oh, ow, cout)) \
            or (pooled is not None and not is_shape(pooled.shape, n, oh // 2, ow // 2, cout)) \
            or (argmax is not None and (pooled is None or not is_shape(argmax.shape, n, oh // 2, ow // 2, cout))):
        raise ValueError(f"conv2d_small_forward: x {shape4(x.shape)} and kernel {shape4(kernel.shape)} (kh, kw, "
                         f"{x.shape[3]}, filters) on a {(oh, ow)} output grid need y {(n, oh, ow, cout)} and/or "
                         f"pooled {(n, oh // 2, ow // 2, cout)} (argmax: pooled's shape, with pooled); got y "
                         f"{None if y is None else shape4(y.shape)}, pooled "
                         f"{None if pooled is None else shape4(pooled.shape)}, argmax "
                         f"{None if argmax is None else shape4(argmax.shape)}")
    if bias is not None and bias.shape[0] != cout:
        raise ValueError(f"conv2d_small_forward: bias must have length {cout}, got {bias.shape[0]}")
    if act not in (FNN_ACT_LINEAR, FNN_ACT_RELU, FNN_ACT_LEAKY_RELU):
        raise ValueError(f"conv2d_small_forward: act must be linear, relu or leaky_relu, got code {act}")
    if n == 0:
        return
    cdef const float *bias_ptr = &bias[0] if bias is not None else NULL
    cdef float *y_ptr = &y[0, 0, 0, 0] if y is not None else NULL
    cdef float *pooled_ptr = &pooled[0, 0, 0, 0] if pooled is not None else NULL
    cdef int32_t *argmax_ptr = &argmax[0, 0, 0, 0] if argmax is not None else NULL
    cdef int status
    with nogil:
        status = fnn_conv2d_small_forward_f32(n, x.shape[1], x.shape[2], x.shape[3], kernel.shape[0],
                                              kernel.shape[1], pt, pl, oh, ow, cout, &x[0, 0, 0, 0],
                                              &kernel[0, 0, 0, 0], bias_ptr, act, act_alpha, y_ptr, pooled_ptr,
                                              argmax_ptr, n_threads)
    if status != FNN_OK:  # the message is built only when needed: this runs once per layer and batch
        check(status, f"conv2d_small_forward of x {shape4(x.shape)} with kernel {shape4(kernel.shape)}, padding "
                      f"{(pt, pl)} on a {(oh, ow)} grid")


cdef inline int check_small_backward(Py_ssize_t *xs, Py_ssize_t *ks, Py_ssize_t *dzs, int pt, int pl,
                                     str what) except -1:
    if ks[2] != xs[3] or dzs[0] != xs[0] or dzs[3] != ks[3] or pt < 0 or pl < 0 or pt >= ks[0] or pl >= ks[1]:
        raise ValueError(f"{what}: x {shape4(xs)}, kernel {shape4(ks)}, dz {shape4(dzs)} and padding {(pt, pl)} "
                         f"do not fit (kernel (kh, kw, c_in, filters), dz (batch, oh, ow, filters), "
                         f"0 <= padding < kernel size)")
    return 0


def conv2d_small_backward_filter(const float[:, :, :, ::1] x, const float[:, :, :, ::1] dz,
                                 float[:, :, :, ::1] dkernel, int pt, int pl, bint accumulate=False,
                                 int n_threads=1, float[::1] dbias=None):
    """dkernel (+)= the kernel gradient of conv2d_small_forward for input x and pre-activation gradient dz
    (batch, oh, ow, filters); dbias, when given, (+)= the bias gradient (dz summed over batch and pixels)."""
    check_small_backward(x.shape, dkernel.shape, dz.shape, pt, pl, "conv2d_small_backward_filter")
    if dbias is not None and dbias.shape[0] != dkernel.shape[3]:
        raise ValueError(f"conv2d_small_backward_filter: dbias must have length {dkernel.shape[3]}, "
                         f"got {dbias.shape[0]}")
    cdef const float *xp = &x[0, 0, 0, 0] if x.shape[0] > 0 else NULL
    cdef const float *dzp = &dz[0, 0, 0, 0] if x.shape[0] > 0 else NULL
    cdef float *dbp = &dbias[0] if dbias is not None else NULL
    cdef int status
    with nogil:
        status = fnn_conv2d_small_backward_filter_f32(x.shape[0], x.shape[1], x.shape[2], x.shape[3],
                                                      dkernel.shape[0], dkernel.shape[1], pt, pl, dz.shape[1],
                                                      dz.shape[2], dz.shape[3], xp, dzp, &dkernel[0, 0, 0, 0], dbp,
                                                      accumulate, n_threads)
    if status != FNN_OK:
        check(status, f"conv2d_small_backward_filter of x {shape4(x.shape)} and dz {shape4(dz.shape)}")


def conv2d_small_backward_input(const float[:, :, :, ::1] dz, const float[:, :, :, ::1] kernel,
                                float[:, :, :, ::1] dx, int pt, int pl, int n_threads=1):
    """dx = the input gradient of conv2d_small_forward (overwritten) for pre-activation gradient dz."""
    check_small_backward(dx.shape, kernel.shape, dz.shape, pt, pl, "conv2d_small_backward_input")
    if dx.shape[0] == 0:
        return
    cdef int status
    with nogil:
        status = fnn_conv2d_small_backward_input_f32(dx.shape[0], dx.shape[1], dx.shape[2], dx.shape[3],
                                                     kernel.shape[0], kernel.shape[1], pt, pl, dz.shape[1],
                                                     dz.shape[2], dz.shape[3], &dz[0, 0, 0, 0], &kernel[0, 0, 0, 0],
                                                     &dx[0, 0, 0, 0], n_threads)
    if status != FNN_OK:
        check(status, f"conv2d_small_backward_input of dz {shape4(dz.shape)} into dx {shape4(dx.shape)}")
