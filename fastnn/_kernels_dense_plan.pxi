# A chain of Dense layers as one C call (src/dense_plan.c): the forward pass or a whole SGD training step.

from libc.stdlib cimport calloc, free

# The loss of a training step (enum fnn_dense_loss); a layer's act -1 is a softmax, as activations.SOFTMAX.
DENSE_XENT_SPARSE, DENSE_XENT_DENSE = FNN_DENSE_XENT_SPARSE, FNN_DENSE_XENT_DENSE
DENSE_BCE_LOGITS, DENSE_MSE = FNN_DENSE_BCE_LOGITS, FNN_DENSE_MSE


cdef inline float *_data(float[::1] flat):
    return &flat[0] if flat is not None and flat.shape[0] else NULL


cdef inline object _flat(a, tuple shape, str what):
    """a (float32, C-contiguous, of `shape`) as a 1-D view, or None for None."""
    if a is None:
        return None
    if tuple(a.shape) != shape:
        raise ValueError(f"DensePlan: {what} has shape {tuple(a.shape)}, expected {shape}")
    return a.reshape(-1)


cdef class DensePlan:
    """The layers of a Dense stack bound to their weights and to buffers for one batch size.

    Parameters
    ----------
    batch : int >= 1
    layers : list of tuples (kernel, bias, kernel_vel, bias_vel, bias_grad, act, alpha, z, y, dz, dx)
        Per layer, float32 C-contiguous arrays (or None where `fnn_dense_layer` in src/fnn.h allows NULL):
        kernel and kernel_vel (n_in, n_out); bias, bias_vel and bias_grad (n_out,); z, y and dz (batch, n_out);
        dx (batch, n_in). act is an fnn_act code or -1 for softmax; alpha the leaky-relu slope.
    grad : float32 array (batch, n_out of the last layer), optional
        Where a training step leaves the loss gradient.
    """
    cdef fnn_dense_layer *layers
    cdef int64_t n_layers, batch, n_in, n_out
    cdef list keep
    cdef float[:, ::1] grad
    cdef bint has_grad

    def __cinit__(self):
        self.layers = NULL

    def __dealloc__(self):
        free(self.layers)

    def __init__(self, int64_t batch, list layers not None, grad=None):
        if batch < 1 or not layers:
            raise ValueError(f"DensePlan: needs a batch >= 1 and at least one layer, got {batch} and {len(layers)}")
        self.layers = <fnn_dense_layer *>calloc(len(layers), sizeof(fnn_dense_layer))
        if self.layers == NULL:
            raise MemoryError("DensePlan: out of memory")
        self.n_layers, self.batch, self.keep = len(layers), batch, []
        cdef fnn_dense_layer *d
        cdef int64_t n_in, n_out
        for l, (kernel, bias, kernel_vel, bias_vel, bias_grad, act, alpha, z, y, dz, dx) in enumerate(layers):
            n_in, n_out = kernel.shape
            if l > 0 and n_in != self.layers[l - 1].n_out:
                raise ValueError(f"DensePlan: layer {l} takes {n_in} inputs, the layer below gives "
                                 f"{self.layers[l - 1].n_out}")
            views = [_flat(kernel, (n_in, n_out), "kernel"), _flat(bias, (n_out,), "bias"),
                     _flat(kernel_vel, (n_in, n_out), "kernel_vel"), _flat(bias_vel, (n_out,), "bias_vel"),
                     _flat(bias_grad, (n_out,), "bias_grad"), _flat(z, (batch, n_out), "z"),
                     _flat(y, (batch, n_out), "y"), _flat(dz, (batch, n_out), "dz"), _flat(dx, (batch, n_in), "dx")]
            self.keep.append(views)
            d = &self.layers[l]
            d.n_in, d.n_out, d.act, d.alpha = n_in, n_out, act, alpha
            d.kernel, d.bias, d.kernel_vel, d.bias_vel, d.bias_grad = (
                _data(views[0]), _data(views[1]), _data(views[2]), _data(views[3]), _data(views[4]))
            d.z, d.y, d.dz, d.dx = _data(views[5]), _data(views[6]), _data(views[7]), _data(views[8])
        self.n_in, self.n_out = self.layers[0].n_in, self.layers[self.n_layers - 1].n_out
        if grad is not None:
            if tuple(grad.shape) != (batch, self.n_out):
                raise ValueError(f"DensePlan: grad has shape {tuple(grad.shape)}, expected {(batch, self.n_out)}")
            self.grad, self.has_grad = grad, True

    cdef int _check_x(self, const float[:, ::1] x) except -1:
        if x.shape[0] != self.batch or x.shape[1] != self.n_in:
            raise ValueError(f"DensePlan: x has shape {(x.shape[0], x.shape[1])}, expected {(self.batch, self.n_in)}")
        return 0

    def forward(self, const float[:, ::1] x not None, bint team, int n_threads):
        """Every layer's y from x (batch, n_in); team: one parallel region splitting each layer's columns."""
        self._check_x(x)
        cdef int status
        with nogil:
            status = fnn_dense_forward_f32(self.n_layers, self.layers, self.batch, &x[0, 0], team, n_threads)
        check(status, "dense forward plan")

    def sgd_step(self, const float[:, ::1] x not None, int loss_kind, const int64_t[::1] labels,
                 const float[:, ::1] targets, const float[::1] w, double lr, double momentum, bint nesterov,
                 double weight_decay, double clipvalue, bint team, int n_threads):
        """One SGD step on x with class labels (batch,) or targets (batch, n_out) and sample weights w (batch,)
        or None; returns the loss (NaN or infinite: nothing was updated)."""
        self._check_x(x)
        if not self.has_grad:
            raise ValueError("DensePlan.sgd_step: the plan was made without a grad buffer")
        if labels is not None and labels.shape[0] != self.batch:
            raise ValueError(f"DensePlan.sgd_step: {labels.shape[0]} labels for a batch of {self.batch}")
        if targets is not None and (targets.shape[0] != self.batch or targets.shape[1] != self.n_out):
            raise ValueError(f"DensePlan.sgd_step: targets have shape {(targets.shape[0], targets.shape[1])}, "
                             f"expected {(self.batch, self.n_out)}")
        if w is not None and w.shape[0] != self.batch:
            raise ValueError(f"DensePlan.sgd_step: {w.shape[0]} sample weights for a batch of {self.batch}")
        cdef const int64_t *lp = &labels[0] if labels is not None else NULL
        cdef const float *tp = &targets[0, 0] if targets is not None else NULL
        cdef const float *wp = &w[0] if w is not None else NULL
        cdef double loss = 0.0
        cdef int status
        with nogil:
            status = fnn_dense_sgd_step_f32(self.n_layers, self.layers, self.batch, &x[0, 0], loss_kind, lp, tp, wp,
                                            &self.grad[0, 0], lr, momentum, nesterov, weight_decay, clipvalue,
                                            &loss, team, n_threads)
        check(status, "dense training step plan")
        return loss
