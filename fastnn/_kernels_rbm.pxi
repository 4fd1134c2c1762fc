# Restricted Boltzmann machine kernels (src/rbm.c): the counter-based random stream, unit sampling and the
# fused contrastive-divergence update. These check only what would make C read or write out of bounds; the
# callers (fastnn/_ops_rbm.py, fastnn/_rbm.py) validate values.


def rbm_uniform(float[::1] out, uint64_t key, uint64_t counter, int n_threads=1):
    """out[i] = uniform [0, 1) draw i of the stream (key, counter)."""
    if out.shape[0] == 0:
        return
    cdef int status
    with nogil:
        status = fnn_rbm_uniform_f32(out.shape[0], key, counter, &out[0], n_threads)
    check(status, "rbm_uniform")


def rbm_sample(const float[::1] mean, float[::1] out, bint gaussian, uint64_t key, uint64_t counter,
               int n_threads=1):
    """Bernoulli states (u < mean) or mean + standard normal noise, from the stream (key, counter)."""
    cdef Py_ssize_t n = mean.shape[0]
    if out.shape[0] != n:
        raise ValueError(f"rbm_sample: out must have {n} elements like mean, got {out.shape[0]}")
    if n == 0:
        return
    cdef int status
    with nogil:
        status = fnn_rbm_sample_f32(n, &mean[0], &out[0], gaussian, key, counter, n_threads)
    check(status, "rbm_sample")


cdef inline int check_rows(const float[:, ::1] a, Py_ssize_t rows, Py_ssize_t cols, str name) except -1:
    if a.shape[0] != rows or a.shape[1] != cols:
        raise ValueError(f"rbm_update: {name} must have shape ({rows}, {cols}), got ({a.shape[0]}, {a.shape[1]})")
    return 0


cdef inline int check_len(Py_ssize_t have, Py_ssize_t want, str name) except -1:
    if have != want:
        raise ValueError(f"rbm_update: {name} must have length {want}, got {have}")
    return 0


def rbm_update(const float[:, ::1] v0, const float[:, ::1] h0, const float[:, ::1] vk, const float[:, ::1] hk,
               float[:, ::1] weights, float[::1] visible_bias, float[::1] hidden_bias, float[:, ::1] weights_inc,
               float[::1] visible_inc, float[::1] hidden_inc, float learning_rate, float momentum,
               float weight_decay, float[::1] work, int n_threads=1):
    """One CD step of the weights and biases, with momentum increments and L2 decay on the weights."""
    cdef Py_ssize_t batch = v0.shape[0], nv = v0.shape[1], nh = h0.shape[1]
    if batch < 1 or nv < 1 or nh < 1:
        raise ValueError(f"rbm_update: needs at least one sample, visible and hidden unit, got batch {batch}, "
                         f"{nv} visible, {nh} hidden")
    check_rows(h0, batch, nh, "h0")
    check_rows(vk, batch, nv, "vk")
    check_rows(hk, batch, nh, "hk")
    check_rows(weights, nv, nh, "weights")
    check_rows(weights_inc, nv, nh, "weights_inc")
    check_len(visible_bias.shape[0], nv, "visible_bias")
    check_len(visible_inc.shape[0], nv, "visible_inc")
    check_len(hidden_bias.shape[0], nh, "hidden_bias")
    check_len(hidden_inc.shape[0], nh, "hidden_inc")
    check_len(work.shape[0], 2 * nv * nh, "work")
    cdef int status
    with nogil:
        status = fnn_rbm_update_f32(batch, nv, nh, &v0[0, 0], &h0[0, 0], &vk[0, 0], &hk[0, 0], &weights[0, 0],
                                    &visible_bias[0], &hidden_bias[0], &weights_inc[0, 0], &visible_inc[0],
                                    &hidden_inc[0], learning_rate, momentum, weight_decay, &work[0], n_threads)
    check(status, "rbm_update")
