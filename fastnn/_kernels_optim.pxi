# SGD over the flat parameter arena (src/optim.c). Hot path: length checks only.


def sgd(float[::1] params not None, const float[::1] grads not None, float[::1] velocity, float lr, float momentum,
        bint nesterov, int n_threads):
    """Keras SGD step in place: v = momentum v - lr g; p += v (nesterov: p += momentum v - lr g).

    velocity may be None when momentum == 0 (then it is not touched even when given).
    """
    cdef Py_ssize_t n = params.shape[0]
    if grads.shape[0] != n or (velocity is not None and velocity.shape[0] != n):
        raise ValueError(f"sgd: lengths differ: params {n}, grads {grads.shape[0]}, "
                         f"velocity {None if velocity is None else velocity.shape[0]}")
    if momentum != 0.0 and velocity is None:
        raise ValueError(f"sgd: momentum {momentum} needs a velocity array (got None)")
    if n == 0:
        return
    cdef float *vp = &velocity[0] if velocity is not None else NULL
    cdef int status
    with nogil:
        status = fnn_sgd_f32(n, &params[0], &grads[0], vp, lr, momentum, nesterov, n_threads)
    check(status, "sgd")
