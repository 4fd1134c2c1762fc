# Losses (src/loss.c): each returns the mean loss as a Python float and, when grad is given, fills it with the
# gradient of that mean. w (per-sample weights, length n) and grad may be None. Hot path: shape checks only.


cdef inline int _loss_check(str what, Py_ssize_t n, Py_ssize_t c, const float[:, ::1] t, const float[::1] w,
                            const float[:, ::1] grad) except -1:
    if t is not None and (t.shape[0] != n or t.shape[1] != c):
        raise ValueError(f"{what}: targets have shape ({t.shape[0]}, {t.shape[1]}), the input has shape ({n}, {c})")
    if w is not None and w.shape[0] != n:
        raise ValueError(f"{what}: sample weights have length {w.shape[0]}, expected {n} (one per sample)")
    if grad is not None and (grad.shape[0] != n or grad.shape[1] != c):
        raise ValueError(f"{what}: grad has shape ({grad.shape[0]}, {grad.shape[1]}), expected ({n}, {c})")
    if n == 0 or c == 0:
        raise ValueError(f"{what}: empty input of shape ({n}, {c}); at least one sample and one column expected")
    return 0


def softmax_xent_sparse(const float[:, ::1] z not None, const int64_t[::1] labels not None, const float[::1] w,
                        float[:, ::1] grad, int n_threads):
    """Softmax cross-entropy of logits z (n, c) against class indices labels (n,) in [0, c)."""
    cdef Py_ssize_t n = z.shape[0], c = z.shape[1]
    if labels.shape[0] != n:
        raise ValueError(f"softmax_xent_sparse: {labels.shape[0]} labels for logits of shape ({n}, {c}); "
                         f"one label per row expected")
    _loss_check("softmax_xent_sparse", n, c, None, w, grad)
    cdef const float *wp = &w[0] if w is not None else NULL
    cdef float *gp = &grad[0, 0] if grad is not None else NULL
    cdef double loss = 0.0
    cdef int status
    with nogil:
        status = fnn_softmax_xent_sparse_f32(n, c, &z[0, 0], &labels[0], wp, gp, &loss, n_threads)
    if status == FNN_EBADARG:
        for i in range(n):
            if labels[i] < 0 or labels[i] >= c:
                raise ValueError(f"softmax_xent_sparse: label {labels[i]} of sample {i} is out of range: "
                                 f"labels must be in [0, {c - 1}] for {c} classes")
    check(status, "softmax_xent_sparse")
    return loss


def softmax_xent_dense(const float[:, ::1] z not None, const float[:, ::1] t not None, const float[::1] w,
                       float[:, ::1] grad, int n_threads):
    """Softmax cross-entropy of logits z (n, c) against target distributions t (n, c)."""
    cdef Py_ssize_t n = z.shape[0], c = z.shape[1]
    _loss_check("softmax_xent_dense", n, c, t, w, grad)
    cdef const float *wp = &w[0] if w is not None else NULL
    cdef float *gp = &grad[0, 0] if grad is not None else NULL
    cdef double loss = 0.0
    cdef int status
    with nogil:
        status = fnn_softmax_xent_dense_f32(n, c, &z[0, 0], &t[0, 0], wp, gp, &loss, n_threads)
    check(status, "softmax_xent_dense")
    return loss


def mse(const float[:, ::1] p not None, const float[:, ::1] t not None, const float[::1] w, float[:, ::1] grad,
        int n_threads):
    """Mean squared error of predictions p (n, c) against targets t (n, c)."""
    cdef Py_ssize_t n = p.shape[0], c = p.shape[1]
    _loss_check("mse", n, c, t, w, grad)
    cdef const float *wp = &w[0] if w is not None else NULL
    cdef float *gp = &grad[0, 0] if grad is not None else NULL
    cdef double loss = 0.0
    cdef int status
    with nogil:
        status = fnn_mse_f32(n, c, &p[0, 0], &t[0, 0], wp, gp, &loss, n_threads)
    check(status, "mse")
    return loss


def sigmoid_bce(const float[:, ::1] z not None, const float[:, ::1] t not None, const float[::1] w,
                float[:, ::1] grad, int n_threads):
    """Binary cross-entropy of sigmoid(z) against targets t in [0, 1], both (n, c), on logits z."""
    cdef Py_ssize_t n = z.shape[0], c = z.shape[1]
    _loss_check("sigmoid_bce", n, c, t, w, grad)
    cdef const float *wp = &w[0] if w is not None else NULL
    cdef float *gp = &grad[0, 0] if grad is not None else NULL
    cdef double loss = 0.0
    cdef int status
    with nogil:
        status = fnn_sigmoid_bce_f32(n, c, &z[0, 0], &t[0, 0], wp, gp, &loss, n_threads)
    check(status, "sigmoid_bce")
    return loss
