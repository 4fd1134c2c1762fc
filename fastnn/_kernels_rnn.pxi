# Recurrent layers (src/rnn.c, src/lstm.c, src/gru.c) and embedding lookups (src/embedding.c). A whole
# sequence, forward or backward, is one call with the GIL released. These check only what would make C read or
# write out of bounds; the layers validate their arguments. Optional arrays may be None.


cdef inline int need_shape(object arr, tuple shape, str name, str what) except -1:
    if arr is not None and tuple(arr.shape[:len(shape)]) != shape:
        raise ValueError(f"{what}: {name} must have shape {shape}, got {tuple(arr.shape[:len(shape)])}")
    return 0


cdef inline const float *cptr1(const float[::1] a) noexcept nogil:
    return &a[0] if a is not None and a.shape[0] > 0 else NULL


cdef inline const float *cptr2(const float[:, ::1] a) noexcept nogil:
    return &a[0, 0] if a is not None and a.shape[0] > 0 and a.shape[1] > 0 else NULL


cdef inline const float *cptr3(const float[:, :, ::1] a) noexcept nogil:
    return &a[0, 0, 0] if a is not None and a.shape[0] * a.shape[1] * a.shape[2] > 0 else NULL


cdef inline float *ptr1(float[::1] a) noexcept nogil:
    return &a[0] if a is not None and a.shape[0] > 0 else NULL


cdef inline float *ptr2(float[:, ::1] a) noexcept nogil:
    return &a[0, 0] if a is not None and a.shape[0] > 0 and a.shape[1] > 0 else NULL


cdef inline float *ptr3(float[:, :, ::1] a) noexcept nogil:
    return &a[0, 0, 0] if a is not None and a.shape[0] * a.shape[1] * a.shape[2] > 0 else NULL


cdef int check_recurrent(str what, object x, object kernel, object recurrent, int gates, Py_ssize_t *dims) except -1:
    """dims <- (batch, steps, n_in, units); checks the weights' shapes."""
    if x is None or kernel is None or recurrent is None:
        raise ValueError(f"{what}: x, kernel and recurrent are required")
    batch, steps, n_in = x.shape[0], x.shape[1], x.shape[2]
    units = recurrent.shape[0]
    if units < 1:
        raise ValueError(f"{what}: recurrent must have at least one row (units)")
    need_shape(kernel, (n_in, gates * units), "kernel", what)
    need_shape(recurrent, (units, gates * units), "recurrent", what)
    dims[0], dims[1], dims[2], dims[3] = batch, steps, n_in, units
    return 0


cdef int check_states(str what, Py_ssize_t *dims, int width, dict arrays) except -1:
    """Per-step arrays (batch, steps, width or units) and per-row arrays (batch, units)."""
    cdef Py_ssize_t b = dims[0], t = dims[1], u = dims[3]
    for name, (arr, kind) in arrays.items():
        if kind == "gates":
            need_shape(arr, (b, t, width * u), name, what)
        elif kind == "seq":
            need_shape(arr, (b, t, u), name, what)
        else:
            need_shape(arr, (b, u), name, what)
        if arr is not None and arr.ndim != (2 if kind == "row" else 3):
            raise ValueError(f"{what}: {name} has {arr.ndim} dimensions")
    return 0


def simple_rnn_forward(const float[:, :, ::1] x, const float[:, ::1] kernel, const float[:, ::1] recurrent,
                       const float[::1] bias, const float[:, ::1] h0, int act, bint go_backwards,
                       float[:, :, ::1] gates, float[:, :, ::1] h_prev, float[:, ::1] h_last,
                       float[:, :, ::1] seq=None, int n_threads=1):
    """SimpleRNN over x (batch, steps, n_in); see src/fnn.h for what each buffer receives."""
    cdef Py_ssize_t d[4]
    check_recurrent("simple_rnn_forward", x, kernel, recurrent, 1, d)
    need_shape(bias, (d[3],), "bias", "simple_rnn_forward")
    check_states("simple_rnn_forward", d, 1, {"h0": (h0, "row"), "gates": (gates, "gates"),
                                              "h_prev": (h_prev, "seq"), "h_last": (h_last, "row"),
                                              "seq": (seq, "seq")})
    if gates is None or h_prev is None or h_last is None:
        raise ValueError("simple_rnn_forward: gates, h_prev and h_last are required")
    cdef int status
    with nogil:
        status = fnn_simple_rnn_forward_f32(d[0], d[1], d[2], d[3], cptr3(x), cptr2(kernel), cptr2(recurrent),
                                            cptr1(bias), cptr2(h0), act, go_backwards, ptr3(gates), ptr3(h_prev),
                                            ptr2(h_last), ptr3(seq), n_threads)
    check(status, "simple_rnn_forward")


def simple_rnn_backward(const float[:, :, ::1] x, const float[:, ::1] kernel, const float[:, ::1] recurrent,
                        const float[:, :, ::1] gates, const float[:, :, ::1] h_prev, const float[:, :, ::1] dseq,
                        const float[:, ::1] dh_last, int act, bint go_backwards, float[:, :, ::1] dz,
                        float[:, :, ::1] dx, float[:, ::1] dkernel, float[:, ::1] drecurrent, float[::1] dbias,
                        bint accumulate=False, int n_threads=1):
    """Backpropagation through time of simple_rnn_forward (dseq, dh_last, dx, dkernel, drecurrent, dbias may
    be None)."""
    cdef Py_ssize_t d[4]
    check_recurrent("simple_rnn_backward", x, kernel, recurrent, 1, d)
    need_shape(dbias, (d[3],), "dbias", "simple_rnn_backward")
    need_shape(dkernel, (d[2], d[3]), "dkernel", "simple_rnn_backward")
    need_shape(drecurrent, (d[3], d[3]), "drecurrent", "simple_rnn_backward")
    need_shape(dx, (d[0], d[1], d[2]), "dx", "simple_rnn_backward")
    check_states("simple_rnn_backward", d, 1, {"gates": (gates, "gates"), "h_prev": (h_prev, "seq"),
                                               "dseq": (dseq, "seq"), "dh_last": (dh_last, "row"),
                                               "dz": (dz, "gates")})
    if gates is None or h_prev is None or dz is None:
        raise ValueError("simple_rnn_backward: gates, h_prev and dz are required")
    cdef int status
    with nogil:
        status = fnn_simple_rnn_backward_f32(d[0], d[1], d[2], d[3], cptr3(x), cptr2(kernel), cptr2(recurrent),
                                             cptr3(gates), cptr3(h_prev), cptr3(dseq), cptr2(dh_last), act,
                                             go_backwards, ptr3(dz), ptr3(dx), ptr2(dkernel), ptr2(drecurrent),
                                             ptr1(dbias), accumulate, n_threads)
    check(status, "simple_rnn_backward")


def lstm_forward(const float[:, :, ::1] x, const float[:, ::1] kernel, const float[:, ::1] recurrent,
                 const float[::1] bias, const float[:, ::1] h0, const float[:, ::1] c0, int act, int rec_act,
                 bint go_backwards, float[:, :, ::1] gates, float[:, :, ::1] h_prev, float[:, :, ::1] c_prev,
                 float[:, ::1] h_last, float[:, ::1] c_last, float[:, :, ::1] seq=None, int n_threads=1):
    """LSTM over x (batch, steps, n_in); see src/fnn.h for what each buffer receives."""
    cdef Py_ssize_t d[4]
    check_recurrent("lstm_forward", x, kernel, recurrent, 4, d)
    need_shape(bias, (4 * d[3],), "bias", "lstm_forward")
    check_states("lstm_forward", d, 4, {"h0": (h0, "row"), "c0": (c0, "row"), "gates": (gates, "gates"),
                                        "h_prev": (h_prev, "seq"), "c_prev": (c_prev, "seq"),
                                        "h_last": (h_last, "row"), "c_last": (c_last, "row"), "seq": (seq, "seq")})
    if gates is None or h_prev is None or c_prev is None or h_last is None or c_last is None:
        raise ValueError("lstm_forward: gates, h_prev, c_prev, h_last and c_last are required")
    cdef int status
    with nogil:
        status = fnn_lstm_forward_f32(d[0], d[1], d[2], d[3], cptr3(x), cptr2(kernel), cptr2(recurrent),
                                      cptr1(bias), cptr2(h0), cptr2(c0), act, rec_act, go_backwards, ptr3(gates),
                                      ptr3(h_prev), ptr3(c_prev), ptr2(h_last), ptr2(c_last), ptr3(seq), n_threads)
    check(status, "lstm_forward")


def lstm_backward(const float[:, :, ::1] x, const float[:, ::1] kernel, const float[:, ::1] recurrent,
                  const float[:, :, ::1] gates, const float[:, :, ::1] h_prev, const float[:, :, ::1] c_prev,
                  const float[:, ::1] c_last, const float[:, :, ::1] dseq, const float[:, ::1] dh_last, int act,
                  int rec_act, bint go_backwards, float[:, :, ::1] dz, float[:, :, ::1] dx, float[:, ::1] dkernel,
                  float[:, ::1] drecurrent, float[::1] dbias, bint accumulate=False, int n_threads=1):
    """Backpropagation through time of lstm_forward (dseq, dh_last, dx and the weight gradients may be None)."""
    cdef Py_ssize_t d[4]
    check_recurrent("lstm_backward", x, kernel, recurrent, 4, d)
    need_shape(dbias, (4 * d[3],), "dbias", "lstm_backward")
    need_shape(dkernel, (d[2], 4 * d[3]), "dkernel", "lstm_backward")
    need_shape(drecurrent, (d[3], 4 * d[3]), "drecurrent", "lstm_backward")
    need_shape(dx, (d[0], d[1], d[2]), "dx", "lstm_backward")
    check_states("lstm_backward", d, 4, {"gates": (gates, "gates"), "h_prev": (h_prev, "seq"),
                                         "c_prev": (c_prev, "seq"), "c_last": (c_last, "row"),
                                         "dseq": (dseq, "seq"), "dh_last": (dh_last, "row"), "dz": (dz, "gates")})
    if gates is None or h_prev is None or c_prev is None or c_last is None or dz is None:
        raise ValueError("lstm_backward: gates, h_prev, c_prev, c_last and dz are required")
    cdef int status
    with nogil:
        status = fnn_lstm_backward_f32(d[0], d[1], d[2], d[3], cptr3(x), cptr2(kernel), cptr2(recurrent),
                                       cptr3(gates), cptr3(h_prev), cptr3(c_prev), cptr2(c_last), cptr3(dseq),
                                       cptr2(dh_last), act, rec_act, go_backwards, ptr3(dz), ptr3(dx),
                                       ptr2(dkernel), ptr2(drecurrent), ptr1(dbias), accumulate, n_threads)
    check(status, "lstm_backward")


def gru_forward(const float[:, :, ::1] x, const float[:, ::1] kernel, const float[:, ::1] recurrent,
                const float[:, ::1] bias, const float[:, ::1] h0, int act, int rec_act, bint go_backwards,
                float[:, :, ::1] gates, float[:, :, ::1] rec_h, float[:, :, ::1] h_prev, float[:, ::1] h_last,
                float[:, :, ::1] seq=None, int n_threads=1):
    """GRU (reset_after) over x (batch, steps, n_in), bias (2, 3 units); see src/fnn.h."""
    cdef Py_ssize_t d[4]
    check_recurrent("gru_forward", x, kernel, recurrent, 3, d)
    need_shape(bias, (2, 3 * d[3]), "bias", "gru_forward")
    check_states("gru_forward", d, 3, {"h0": (h0, "row"), "gates": (gates, "gates"), "rec_h": (rec_h, "seq"),
                                       "h_prev": (h_prev, "seq"), "h_last": (h_last, "row"), "seq": (seq, "seq")})
    if gates is None or rec_h is None or h_prev is None or h_last is None:
        raise ValueError("gru_forward: gates, rec_h, h_prev and h_last are required")
    cdef int status
    with nogil:
        status = fnn_gru_forward_f32(d[0], d[1], d[2], d[3], cptr3(x), cptr2(kernel), cptr2(recurrent),
                                     cptr2(bias), cptr2(h0), act, rec_act, go_backwards, ptr3(gates), ptr3(rec_h),
                                     ptr3(h_prev), ptr2(h_last), ptr3(seq), n_threads)
    check(status, "gru_forward")


def gru_backward(const float[:, :, ::1] x, const float[:, ::1] kernel, const float[:, ::1] recurrent,
                 const float[:, :, ::1] gates, const float[:, :, ::1] rec_h, const float[:, :, ::1] h_prev,
                 const float[:, :, ::1] dseq, const float[:, ::1] dh_last, int act, int rec_act, bint go_backwards,
                 float[:, :, ::1] dzx, float[:, :, ::1] dzr, float[:, :, ::1] dx, float[:, ::1] dkernel,
                 float[:, ::1] drecurrent, float[:, ::1] dbias, bint accumulate=False, int n_threads=1):
    """Backpropagation through time of gru_forward (dseq, dh_last, dx and the weight gradients may be None)."""
    cdef Py_ssize_t d[4]
    check_recurrent("gru_backward", x, kernel, recurrent, 3, d)
    need_shape(dbias, (2, 3 * d[3]), "dbias", "gru_backward")
    need_shape(dkernel, (d[2], 3 * d[3]), "dkernel", "gru_backward")
    need_shape(drecurrent, (d[3], 3 * d[3]), "drecurrent", "gru_backward")
    need_shape(dx, (d[0], d[1], d[2]), "dx", "gru_backward")
    check_states("gru_backward", d, 3, {"gates": (gates, "gates"), "rec_h": (rec_h, "seq"),
                                        "h_prev": (h_prev, "seq"), "dseq": (dseq, "seq"),
                                        "dh_last": (dh_last, "row"), "dzx": (dzx, "gates"), "dzr": (dzr, "gates")})
    if gates is None or rec_h is None or h_prev is None or dzx is None or dzr is None:
        raise ValueError("gru_backward: gates, rec_h, h_prev, dzx and dzr are required")
    cdef int status
    with nogil:
        status = fnn_gru_backward_f32(d[0], d[1], d[2], d[3], cptr3(x), cptr2(kernel), cptr2(recurrent),
                                      cptr3(gates), cptr3(rec_h), cptr3(h_prev), cptr3(dseq), cptr2(dh_last), act,
                                      rec_act, go_backwards, ptr3(dzx), ptr3(dzr), ptr3(dx), ptr2(dkernel),
                                      ptr2(drecurrent), ptr2(dbias), accumulate, n_threads)
    check(status, "gru_backward")


def embedding_forward(const int64_t[::1] ids, const float[:, ::1] table, float[:, ::1] y, int n_threads=1):
    """y[i] = table[ids[i]]; ValueError for an id outside [0, vocab)."""
    cdef Py_ssize_t n = ids.shape[0], vocab = table.shape[0], dim = table.shape[1]
    if y.shape[0] != n or y.shape[1] != dim:
        raise ValueError(f"embedding_forward: y must have shape ({n}, {dim}), got ({y.shape[0]}, {y.shape[1]})")
    if n == 0:
        return
    cdef int status
    with nogil:
        status = fnn_embedding_forward_f32(n, vocab, dim, &ids[0], &table[0, 0], &y[0, 0], n_threads)
    check(status, f"embedding_forward (ids must lie in [0, {vocab}))")


def embedding_backward(const int64_t[::1] ids, const float[:, ::1] dy, float[:, ::1] dtable, bint accumulate=False,
                       int n_threads=1):
    """dtable[ids[i]] += dy[i] (dtable zeroed first unless accumulate)."""
    cdef Py_ssize_t n = ids.shape[0], vocab = dtable.shape[0], dim = dtable.shape[1]
    if dy.shape[0] != n or dy.shape[1] != dim:
        raise ValueError(f"embedding_backward: dy must have shape ({n}, {dim}), got ({dy.shape[0]}, {dy.shape[1]})")
    cdef const int64_t *ip = &ids[0] if n > 0 else NULL
    cdef const float *dp = &dy[0, 0] if n > 0 else NULL
    cdef int status
    with nogil:
        status = fnn_embedding_backward_f32(n, vocab, dim, ip, dp, &dtable[0, 0], accumulate, n_threads)
    check(status, f"embedding_backward (ids must lie in [0, {vocab}))")
