# NHWC image resizing (src/resize.c): nearest and bilinear, half-pixel centres. Sizes and modes are validated
# by the callers (fastnn/ops.py, the UpSampling2D layer); these check what would make C go out of bounds.

RESIZE_NEAREST = FNN_RESIZE_NEAREST
RESIZE_BILINEAR = FNN_RESIZE_BILINEAR


cdef inline int check_resize(Py_ssize_t *small, Py_ssize_t *big, str what) except -1:
    if small[0] != big[0] or small[3] != big[3]:
        raise ValueError(f"{what}: input {shape4(small)} and output {shape4(big)} must have the same batch size "
                         f"and channels")
    return 0


def resize2d_forward(const float[:, :, :, ::1] x, float[:, :, :, ::1] y, int mode, int n_threads=1):
    """y = x resized to y's height and width."""
    check_resize(x.shape, y.shape, "resize2d_forward")
    if x.shape[0] == 0:
        return
    cdef int status
    with nogil:
        status = fnn_resize2d_forward_f32(x.shape[0], x.shape[1], x.shape[2], x.shape[3], y.shape[1], y.shape[2],
                                          mode, &x[0, 0, 0, 0], &y[0, 0, 0, 0], n_threads)
    if status != FNN_OK:  # the message is built only on failure
        check(status, f"resize2d_forward of x {shape4(x.shape)} into y {shape4(y.shape)} (mode {mode})")


def resize2d_backward(const float[:, :, :, ::1] dy, float[:, :, :, ::1] dx, int mode, int n_threads=1):
    """dx = the gradient of resize2d_forward (dx's shape is the input's)."""
    check_resize(dx.shape, dy.shape, "resize2d_backward")
    if dx.shape[0] == 0:
        return
    cdef int status
    with nogil:
        status = fnn_resize2d_backward_f32(dx.shape[0], dx.shape[1], dx.shape[2], dx.shape[3], dy.shape[1],
                                           dy.shape[2], mode, &dy[0, 0, 0, 0], &dx[0, 0, 0, 0], n_threads)
    if status != FNN_OK:  # the message is built only on failure
        check(status, f"resize2d_backward of dy {shape4(dy.shape)} into dx {shape4(dx.shape)} (mode {mode})")
