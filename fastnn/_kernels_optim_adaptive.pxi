# Optimizer updates over spans of the flat parameter arena, and segment norms (src/optim_adaptive.c, optim_sgd.c,
# src/grad_clip.c). An ArenaUpdate binds an optimizer's arrays once, so a training step passes only scalars: no
# buffer is acquired and nothing is allocated per step.


cdef class ArenaUpdate:
    """The arrays one optimizer updates, bound once.

    Parameters
    ----------
    span_offsets, span_sizes : int64 arrays of equal length
        The spans [offset, offset + size) of the arena that are updated (sorted, disjoint; the kernel checks).
    span_scales : float32 array of the same length
        Gradient scale per span, written by `compute_clip_scales` and used by a step called with ``scaled=True``.
    sq_norms : float64 array of the same length
        Where `compute_clip_scales` leaves each span's squared gradient norm.
    grads, params : float32 arrays of the arena's length
    state : tuple of float32 arrays of the arena's length, or None
        In the order the kernel takes them: SGD (velocity,), Adam (m, v), RMSprop (velocity, momentum,
        average gradient), Adagrad (accumulator,).
    """
    cdef int64_t n, n_span
    cdef const int64_t *offsets
    cdef const int64_t *sizes
    cdef float *scales
    cdef double *norms
    cdef const float *grads
    cdef float *params
    cdef float *state[3]
    cdef list views  # the bound buffers, held so the pointers stay valid

    def __init__(self, const int64_t[::1] span_offsets not None, const int64_t[::1] span_sizes not None,
                 float[::1] span_scales not None, double[::1] sq_norms not None,
                 const float[::1] grads not None, float[::1] params not None, state=()):
        self.n, self.n_span = params.shape[0], span_sizes.shape[0]
        if span_offsets.shape[0] != self.n_span or span_scales.shape[0] != self.n_span \
                or sq_norms.shape[0] != self.n_span:
            raise ValueError(f"span_offsets, span_sizes, span_scales and sq_norms must have the same length, got "
                             f"{span_offsets.shape[0]}, {self.n_span}, {span_scales.shape[0]} and "
                             f"{sq_norms.shape[0]}")
        if grads.shape[0] != self.n:
            raise ValueError(f"grads has {grads.shape[0]} elements, the parameters {self.n}")
        if len(state) > 3:
            raise ValueError(f"at most 3 state arrays, got {len(state)}")
        self.views = [span_offsets, span_sizes, span_scales, sq_norms, grads, params]
        self.offsets = &span_offsets[0] if self.n_span else NULL
        self.sizes = &span_sizes[0] if self.n_span else NULL
        self.scales = &span_scales[0] if self.n_span else NULL
        self.norms = &sq_norms[0] if self.n_span else NULL
        self.grads = &grads[0] if self.n else NULL
        self.params = &params[0] if self.n else NULL
        cdef float[::1] array
        for i in range(3):
            self.state[i] = NULL
            if i < len(state) and state[i] is not None:
                array = state[i]
                if array.shape[0] != self.n:
                    raise ValueError(f"state array {i} has {array.shape[0]} elements, the parameters {self.n}")
                self.state[i] = &array[0] if self.n else NULL
                self.views.append(array)

    cdef inline const float *span_scales(self, bint scaled) noexcept nogil:
        return self.scales if scaled else NULL

    def compute_clip_scales(self, double clipnorm, bint is_global, int n_threads):
        """span_scales for clipping by norm (Keras' rules): each span's gradient to at most `clipnorm`, or with
        `is_global` the whole gradient. The squared norms (double; the same bits for any thread count) are left
        in sq_norms."""
        cdef int status
        with nogil:
            status = fnn_sq_norms_f32(self.n, self.n_span, self.offsets, self.sizes, self.grads, self.norms,
                                      n_threads)
            if status == FNN_OK:
                status = fnn_clip_scales_f32(self.n_span, self.norms, clipnorm, is_global, self.scales)
        check(status, "gradient clipping")

    def adam(self, bint scaled, double lr, double beta_1, double beta_2, double epsilon, int64_t step,
             double weight_decay, double clipvalue, int n_threads):
        """One Adam step (Keras 3 rule, step = iterations + 1) with decoupled weight decay and clipping."""
        cdef int status
        with nogil:
            status = fnn_adam_f32(self.n, self.n_span, self.offsets, self.sizes, self.span_scales(scaled),
                                  self.grads, self.params, self.state[0], self.state[1], lr, beta_1, beta_2,
                                  epsilon, step, weight_decay, clipvalue, n_threads)
        check(status, "adam")

    def rmsprop(self, bint scaled, double lr, double rho, double momentum, double epsilon, double weight_decay,
                double clipvalue, int n_threads):
        """One RMSprop step (Keras 3 rule: epsilon inside the square root); centered when a third state
        array (the average gradient) is bound."""
        cdef int status
        with nogil:
            status = fnn_rmsprop_f32(self.n, self.n_span, self.offsets, self.sizes, self.span_scales(scaled),
                                     self.grads, self.params, self.state[0], self.state[1], self.state[2], lr,
                                     rho, momentum, epsilon, weight_decay, clipvalue, n_threads)
        check(status, "rmsprop")

    def adagrad(self, bint scaled, double lr, double epsilon, double weight_decay, double clipvalue,
                int n_threads):
        """One Adagrad step (Keras 3 rule: epsilon inside the square root)."""
        cdef int status
        with nogil:
            status = fnn_adagrad_f32(self.n, self.n_span, self.offsets, self.sizes, self.span_scales(scaled),
                                     self.grads, self.params, self.state[0], lr, epsilon, weight_decay,
                                     clipvalue, n_threads)
        check(status, "adagrad")

    def sgd(self, bint scaled, double lr, double momentum, bint nesterov, double weight_decay, double clipvalue,
            int n_threads):
        """One SGD step (Keras rule) with decoupled weight decay and clipping."""
        cdef int status
        with nogil:
            status = fnn_sgd_decay_clip_f32(self.n, self.n_span, self.offsets, self.sizes,
                                            self.span_scales(scaled), self.grads, self.params, self.state[0], lr,
                                            momentum, nesterov, weight_decay, clipvalue, n_threads)
        check(status, "sgd")


def sq_norms(const int64_t[::1] offsets, const int64_t[::1] sizes, const float[::1] x, double[::1] out,
             int n_threads):
    """out[s] = sum of squares of x[offsets[s]:offsets[s] + sizes[s]] in double, the same for any thread count."""
    if offsets.shape[0] != sizes.shape[0] or out.shape[0] != sizes.shape[0]:
        raise ValueError(f"sq_norms: offsets, sizes and out must have the same length, got {offsets.shape[0]}, "
                         f"{sizes.shape[0]} and {out.shape[0]}")
    cdef int64_t n_seg = sizes.shape[0]
    cdef const int64_t *po = NULL
    cdef const int64_t *ps = NULL
    cdef double *pout = NULL
    cdef const float *px = NULL
    if n_seg:
        po, ps, pout = &offsets[0], &sizes[0], &out[0]
    if x.shape[0]:
        px = &x[0]
    cdef int status
    with nogil:
        status = fnn_sq_norms_f32(x.shape[0], n_seg, po, ps, px, pout, n_threads)
    check(status, "sq_norms")


cdef class GemmSgd:
    """SGD on one weight matrix fed straight by its gradient GEMM (src/optim_sgd.c, fnn_gemm_sgd_f32).

    Parameters
    ----------
    params : float32 array (m, n), C-contiguous
        The weights, updated in place.
    velocity : float32 array (m, n), C-contiguous, or None
        The momentum state (None exactly when the momentum is 0).
    """
    cdef float[:, ::1] params
    cdef float[:, ::1] velocity
    cdef float *vel

    def __init__(self, float[:, ::1] params not None, float[:, ::1] velocity=None):
        if velocity is not None and (velocity.shape[0] != params.shape[0] or velocity.shape[1] != params.shape[1]):
            raise ValueError(f"GemmSgd: velocity has shape {(velocity.shape[0], velocity.shape[1])}, the params "
                             f"{(params.shape[0], params.shape[1])}")
        self.params, self.velocity = params, velocity
        self.vel = &velocity[0, 0] if velocity is not None and velocity.size else NULL

    def step(self, const float[:, :] a, const float[:, :] b, double lr, double momentum, bint nesterov,
             double weight_decay, double clipvalue, int n_threads):
        """One SGD step (the rule of `ArenaUpdate.sgd`, unscaled) with gradient ``a.T @ b``: a is (k, m),
        b is (k, n), k >= 1, rows contiguous."""
        cdef Py_ssize_t k = a.shape[0], m = self.params.shape[0], n = self.params.shape[1]
        if a.shape[1] != m or b.shape[0] != k or b.shape[1] != n or k < 1:
            raise ValueError(f"GemmSgd.step: a {(a.shape[0], a.shape[1])}.T @ b {(b.shape[0], b.shape[1])} does "
                             f"not give the params' shape {(m, n)}")
        if (a.strides[1] != sizeof(float) and m > 1) or (b.strides[1] != sizeof(float) and n > 1):
            raise ValueError("GemmSgd.step: rows of a and b must be contiguous")
        if m == 0 or n == 0:
            return
        cdef int64_t lda = leading_dim(k, m, a.strides[0], "a")
        cdef int64_t ldb = leading_dim(k, n, b.strides[0], "b")
        cdef int status
        with nogil:
            status = fnn_gemm_sgd_f32(m, n, k, &a[0, 0], lda, 1, &b[0, 0], ldb, &self.params[0, 0], self.vel, n, lr,
                                      momentum, nesterov, weight_decay, clipvalue, n_threads)
        check(status, "sgd update fed by its gradient gemm")
