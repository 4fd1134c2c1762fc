# Batch normalization (src/norm.c) over the rows of (rows, c) matrices, channels last. These check only what
# would make C read or write out of bounds; the layer validates its arguments.


cdef inline int check_channels(Py_ssize_t have, Py_ssize_t c, str name, str what) except -1:
    if have != c:
        raise ValueError(f"{what}: {name} must have one value per channel ({c}), got {have}")
    return 0


cdef inline int check_same(const float[:, ::1] a, const float[:, ::1] b, str name, str what) except -1:
    if a.shape[0] != b.shape[0] or a.shape[1] != b.shape[1]:
        raise ValueError(f"{what}: {name} must have the shape of x ({a.shape[0]}, {a.shape[1]}), got "
                         f"({b.shape[0]}, {b.shape[1]})")
    return 0


def batchnorm_stats(const float[:, ::1] x, float[::1] mean, float[::1] var, double momentum=0.0,
                    float[::1] moving_mean=None, float[::1] moving_var=None, int n_threads=1):
    """Per-channel mean and biased variance of x's rows; updates moving statistics when given (both or neither)."""
    cdef Py_ssize_t rows = x.shape[0], c = x.shape[1]
    if rows < 1 or c < 1:
        raise ValueError(f"batchnorm_stats: x must have at least one row and one channel, got ({rows}, {c})")
    check_channels(mean.shape[0], c, "mean", "batchnorm_stats")
    check_channels(var.shape[0], c, "var", "batchnorm_stats")
    if (moving_mean is None) != (moving_var is None):
        raise ValueError("batchnorm_stats: give both moving_mean and moving_var, or neither")
    cdef float *mm = NULL
    cdef float *mv = NULL
    if moving_mean is not None:
        check_channels(moving_mean.shape[0], c, "moving_mean", "batchnorm_stats")
        check_channels(moving_var.shape[0], c, "moving_var", "batchnorm_stats")
        mm, mv = &moving_mean[0], &moving_var[0]
    cdef int status
    with nogil:
        status = fnn_batchnorm_stats_f32(rows, c, &x[0, 0], momentum, &mean[0], &var[0], mm, mv, n_threads)
    check(status, "batchnorm_stats")


def batchnorm_forward(const float[:, ::1] x, const float[::1] mean, const float[::1] var, const float[::1] gamma,
                      const float[::1] beta, double epsilon, float[:, ::1] y, int n_threads=1):
    """y = (x - mean) * gamma / sqrt(var + epsilon) + beta per channel (gamma, beta may be None)."""
    cdef Py_ssize_t rows = x.shape[0], c = x.shape[1]
    check_same(x, y, "y", "batchnorm_forward")
    for name, arr in (("mean", mean), ("var", var), ("gamma", gamma), ("beta", beta)):
        if arr is not None:
            check_channels(arr.shape[0], c, name, "batchnorm_forward")
    if c < 1 or rows == 0:
        return
    cdef const float *g = &gamma[0] if gamma is not None else NULL
    cdef const float *b = &beta[0] if beta is not None else NULL
    cdef int status
    with nogil:
        status = fnn_batchnorm_forward_f32(rows, c, &x[0, 0], &mean[0], &var[0], g, b, epsilon, &y[0, 0],
                                           n_threads)
    check(status, "batchnorm_forward")


def batchnorm_backward(const float[:, ::1] x, const float[:, ::1] dy, const float[::1] mean,
                       const float[::1] var, const float[::1] gamma, double epsilon, bint training,
                       float[:, ::1] dx=None, float[::1] dgamma=None, float[::1] dbeta=None,
                       bint accumulate=False, int n_threads=1):
    """dx (batch statistics when training, else the affine map's gradient), dgamma, dbeta; any may be None."""
    cdef Py_ssize_t rows = x.shape[0], c = x.shape[1]
    if rows < 1 or c < 1:
        raise ValueError(f"batchnorm_backward: x must have at least one row and one channel, got ({rows}, {c})")
    check_same(x, dy, "dy", "batchnorm_backward")
    if dx is not None:
        check_same(x, dx, "dx", "batchnorm_backward")
    for name, arr in (("mean", mean), ("var", var), ("gamma", gamma), ("dgamma", dgamma), ("dbeta", dbeta)):
        if arr is not None:
            check_channels(arr.shape[0], c, name, "batchnorm_backward")
    cdef const float *g = &gamma[0] if gamma is not None else NULL
    cdef float *dxp = &dx[0, 0] if dx is not None else NULL
    cdef float *dg = &dgamma[0] if dgamma is not None else NULL
    cdef float *db = &dbeta[0] if dbeta is not None else NULL
    cdef int status
    with nogil:
        status = fnn_batchnorm_backward_f32(rows, c, &x[0, 0], &dy[0, 0], &mean[0], &var[0], g, epsilon,
                                            training, accumulate, dxp, dg, db, n_threads)
    check(status, "batchnorm_backward")
