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


cdef int check_recurrent(str what, object x, object kernel, object recurrent, int gates, bint time_major,
                         Py_ssize_t *dims) except -1:
    """dims <- (batch, steps, n_in, units) from x (batch, steps, n_in), or time-major (steps, batch, n_in)."""
    if x is None or kernel is None or recurrent is None:
        raise ValueError(f"{what}: x, kernel and recurrent are required")
    batch, steps = (x.shape[1], x.shape[0]) if time_major else (x.shape[0], x.shape[1])
    n_in, units = x.shape[2], recurrent.shape[0]
    if units < 1:
        raise ValueError(f"{what}: recurrent must have at least one row (units)")
    need_shape(kernel, (n_in, gates * units), "kernel", what)
    need_shape(recurrent, (units, gates * units), "recurrent", what)
    dims[0], dims[1], dims[2], dims[3] = batch, steps, n_in, units
    return 0


cdef int check_arrays(str what, Py_ssize_t *dims, int gates, dict arrays) except -1:
    """Each array against its kind: "gates" (steps, batch, gates * units), "state" (steps, batch, units),
    "seq" (batch, steps, units), "row" (batch, units), "xt" (steps, batch, n_in), "x" (batch, steps, n_in)."""
    cdef Py_ssize_t b = dims[0], t = dims[1], n = dims[2], u = dims[3]
    shapes = {"gates": (t, b, gates * u), "state": (t, b, u), "seq": (b, t, u), "row": (b, u), "xt": (t, b, n),
              "x": (b, t, n)}
    for name, (arr, kind) in arrays.items():
        if arr is None:
            continue
        want = shapes[kind]
        if arr.ndim != len(want) or tuple(arr.shape[:len(want)]) != want:
            raise ValueError(f"{what}: {name} must have shape {want}, got {tuple(arr.shape[:arr.ndim])}")
    return 0


cdef int require(str what, dict arrays) except -1:
    missing = [name for name, arr in arrays.items() if arr is None]
    if missing:
        raise ValueError(f"{what}: {', '.join(missing)} required")
    return 0


def simple_rnn_forward(const float[:, :, ::1] x, const float[:, ::1] kernel, const float[:, ::1] recurrent,
                       const float[::1] bias, const float[:, ::1] h0, int act, bint go_backwards,
                       float[:, :, ::1] xt, float[:, :, ::1] gates, float[:, :, ::1] h_prev, float[:, ::1] h_last,
                       float[:, :, ::1] seq=None, int n_threads=1):
    """SimpleRNN over x (batch, steps, n_in); see src/fnn.h for what each buffer receives."""
    cdef Py_ssize_t d[4]
    what = "simple_rnn_forward"
    check_recurrent(what, x, kernel, recurrent, 1, False, d)
    need_shape(bias, (d[3],), "bias", what)
    require(what, {"xt": xt, "gates": gates, "h_prev": h_prev, "h_last": h_last})
    check_arrays(what, d, 1, {"h0": (h0, "row"), "xt": (xt, "xt"), "gates": (gates, "gates"),
                              "h_prev": (h_prev, "state"), "h_last": (h_last, "row"), "seq": (seq, "seq")})
    cdef int status
    with nogil:
        status = fnn_simple_rnn_forward_f32(d[0], d[1], d[2], d[3], cptr3(x), cptr2(kernel), cptr2(recurrent),
                                            cptr1(bias), cptr2(h0), act, go_backwards, ptr3(xt), ptr3(gates),
                                            ptr3(h_prev), ptr2(h_last), ptr3(seq), n_threads)
    check(status, what)


def simple_rnn_backward(const float[:, :, ::1] xt, const float[:, ::1] kernel, const float[:, ::1] recurrent,
                        const float[:, :, ::1] gates, const float[:, :, ::1] h_prev, const float[:, :, ::1] dseq,
                        const float[:, ::1] dh_last, int act, bint go_backwards, float[:, :, ::1] dz,
                        float[:, :, ::1] dxt, float[:, :, ::1] dx, float[:, ::1] dkernel, float[:, ::1] drecurrent,
                        float[::1] dbias, bint accumulate=False, int n_threads=1):
    """Backpropagation through time of simple_rnn_forward from its saved buffers (dseq, dh_last, dx with its
    workspace dxt, and the weight gradients may be None)."""
    cdef Py_ssize_t d[4]
    what = "simple_rnn_backward"
    check_recurrent(what, xt, kernel, recurrent, 1, True, d)
    need_shape(dbias, (d[3],), "dbias", what)
    need_shape(dkernel, (d[2], d[3]), "dkernel", what)
    need_shape(drecurrent, (d[3], d[3]), "drecurrent", what)
    require(what, {"gates": gates, "h_prev": h_prev, "dz": dz})
    if (dx is None) != (dxt is None):
        raise ValueError(f"{what}: give dx and dxt, or neither")
    check_arrays(what, d, 1, {"gates": (gates, "gates"), "h_prev": (h_prev, "state"), "dseq": (dseq, "seq"),
                              "dh_last": (dh_last, "row"), "dz": (dz, "gates"), "dxt": (dxt, "xt"), "dx": (dx, "x")})
    cdef int status
    with nogil:
        status = fnn_simple_rnn_backward_f32(d[0], d[1], d[2], d[3], cptr3(xt), cptr2(kernel), cptr2(recurrent),
                                             cptr3(gates), cptr3(h_prev), cptr3(dseq), cptr2(dh_last), act,
                                             go_backwards, ptr3(dz), ptr3(dxt), ptr3(dx), ptr2(dkernel),
                                             ptr2(drecurrent), ptr1(dbias), accumulate, n_threads)
    check(status, what)


def lstm_forward(const float[:, :, ::1] x, const float[:, ::1] kernel, const float[:, ::1] recurrent,
                 const float[::1] bias, const float[:, ::1] h0, const float[:, ::1] c0, int act, int rec_act,
                 bint go_backwards, float[:, :, ::1] xt, float[:, :, ::1] gates, float[:, :, ::1] h_prev,
                 float[:, :, ::1] c_prev, float[:, ::1] h_last, float[:, ::1] c_last, float[:, :, ::1] seq=None,
                 int n_threads=1):
    """LSTM over x (batch, steps, n_in); see src/fnn.h for what each buffer receives."""
    cdef Py_ssize_t d[4]
    what = "lstm_forward"
    check_recurrent(what, x, kernel, recurrent, 4, False, d)
    need_shape(bias, (4 * d[3],), "bias", what)
    require(what, {"xt": xt, "gates": gates, "h_prev": h_prev, "c_prev": c_prev, "h_last": h_last,
                   "c_last": c_last})
    check_arrays(what, d, 4, {"h0": (h0, "row"), "c0": (c0, "row"), "xt": (xt, "xt"), "gates": (gates, "gates"),
                              "h_prev": (h_prev, "state"), "c_prev": (c_prev, "state"), "h_last": (h_last, "row"),
                              "c_last": (c_last, "row"), "seq": (seq, "seq")})
    cdef int status
    with nogil:
        status = fnn_lstm_forward_f32(d[0], d[1], d[2], d[3], cptr3(x), cptr2(kernel), cptr2(recurrent),
                                      cptr1(bias), cptr2(h0), cptr2(c0), act, rec_act, go_backwards, ptr3(xt),
                                      ptr3(gates), ptr3(h_prev), ptr3(c_prev), ptr2(h_last), ptr2(c_last),
                                      ptr3(seq), n_threads)
    check(status, what)


def lstm_infer(const float[:, :, ::1] x, const float[:, ::1] kernel, const float[:, ::1] recurrent,
               const float[::1] bias, const float[:, ::1] h0, const float[:, ::1] c0, int act, int rec_act,
               bint go_backwards, float[:, ::1] h_last, float[:, ::1] c_last, float[:, :, ::1] seq=None,
               int n_threads=1):
    """lstm_forward's outputs (h_last, c_last, seq) for inference, saving nothing for backward."""
    cdef Py_ssize_t d[4]
    what = "lstm_infer"
    check_recurrent(what, x, kernel, recurrent, 4, False, d)
    need_shape(bias, (4 * d[3],), "bias", what)
    require(what, {"h_last": h_last, "c_last": c_last})
    check_arrays(what, d, 4, {"h0": (h0, "row"), "c0": (c0, "row"), "h_last": (h_last, "row"),
                              "c_last": (c_last, "row"), "seq": (seq, "seq")})
    cdef int status
    with nogil:
        status = fnn_lstm_infer_f32(d[0], d[1], d[2], d[3], cptr3(x), cptr2(kernel), cptr2(recurrent), cptr1(bias),
                                    cptr2(h0), cptr2(c0), act, rec_act, go_backwards, ptr2(h_last), ptr2(c_last),
                                    ptr3(seq), n_threads)
    check(status, what)


def lstm_backward(const float[:, :, ::1] xt, const float[:, ::1] kernel, const float[:, ::1] recurrent,
                  const float[:, :, ::1] gates, const float[:, :, ::1] h_prev, const float[:, :, ::1] c_prev,
                  const float[:, ::1] c_last, const float[:, :, ::1] dseq, const float[:, ::1] dh_last, int act,
                  int rec_act, bint go_backwards, float[:, :, ::1] dz, float[:, :, ::1] dxt, float[:, :, ::1] dx,
                  float[:, ::1] dkernel, float[:, ::1] drecurrent, float[::1] dbias, bint accumulate=False,
                  int n_threads=1):
    """Backpropagation through time of lstm_forward from its saved buffers (dseq, dh_last, dx with dxt, and the
    weight gradients may be None)."""
    cdef Py_ssize_t d[4]
    what = "lstm_backward"
    check_recurrent(what, xt, kernel, recurrent, 4, True, d)
    need_shape(dbias, (4 * d[3],), "dbias", what)
    need_shape(dkernel, (d[2], 4 * d[3]), "dkernel", what)
    need_shape(drecurrent, (d[3], 4 * d[3]), "drecurrent", what)
    require(what, {"gates": gates, "h_prev": h_prev, "c_prev": c_prev, "c_last": c_last, "dz": dz})
    if (dx is None) != (dxt is None):
        raise ValueError(f"{what}: give dx and dxt, or neither")
    check_arrays(what, d, 4, {"gates": (gates, "gates"), "h_prev": (h_prev, "state"), "c_prev": (c_prev, "state"),
                              "c_last": (c_last, "row"), "dseq": (dseq, "seq"), "dh_last": (dh_last, "row"),
                              "dz": (dz, "gates"), "dxt": (dxt, "xt"), "dx": (dx, "x")})
    cdef int status
    with nogil:
        status = fnn_lstm_backward_f32(d[0], d[1], d[2], d[3], cptr3(xt), cptr2(kernel), cptr2(recurrent),
                                       cptr3(gates), cptr3(h_prev), cptr3(c_prev), cptr2(c_last), cptr3(dseq),
                                       cptr2(dh_last), act, rec_act, go_backwards, ptr3(dz), ptr3(dxt), ptr3(dx),
                                       ptr2(dkernel), ptr2(drecurrent), ptr1(dbias), accumulate, n_threads)
    check(status, what)


def gru_forward(const float[:, :, ::1] x, const float[:, ::1] kernel, const float[:, ::1] recurrent,
                const float[:, ::1] bias, const float[:, ::1] h0, int act, int rec_act, bint go_backwards,
                float[:, :, ::1] xt, float[:, :, ::1] gates, float[:, :, ::1] rec_h, float[:, :, ::1] h_prev,
                float[:, ::1] h_last, float[:, :, ::1] seq=None, int n_threads=1):
    """GRU (reset_after) over x (batch, steps, n_in), bias (2, 3 units); see src/fnn.h."""
    cdef Py_ssize_t d[4]
    what = "gru_forward"
    check_recurrent(what, x, kernel, recurrent, 3, False, d)
    need_shape(bias, (2, 3 * d[3]), "bias", what)
    require(what, {"xt": xt, "gates": gates, "rec_h": rec_h, "h_prev": h_prev, "h_last": h_last})
    check_arrays(what, d, 3, {"h0": (h0, "row"), "xt": (xt, "xt"), "gates": (gates, "gates"),
                              "rec_h": (rec_h, "state"), "h_prev": (h_prev, "state"), "h_last": (h_last, "row"),
                              "seq": (seq, "seq")})
    cdef int status
    with nogil:
        status = fnn_gru_forward_f32(d[0], d[1], d[2], d[3], cptr3(x), cptr2(kernel), cptr2(recurrent),
                                     cptr2(bias), cptr2(h0), act, rec_act, go_backwards, ptr3(xt), ptr3(gates),
                                     ptr3(rec_h), ptr3(h_prev), ptr2(h_last), ptr3(seq), n_threads)
    check(status, what)


def gru_infer(const float[:, :, ::1] x, const float[:, ::1] kernel, const float[:, ::1] recurrent,
              const float[:, ::1] bias, const float[:, ::1] h0, int act, int rec_act, bint go_backwards,
              float[:, ::1] h_last, float[:, :, ::1] seq=None, int n_threads=1):
    """gru_forward's outputs (h_last, seq) for inference, saving nothing for backward."""
    cdef Py_ssize_t d[4]
    what = "gru_infer"
    check_recurrent(what, x, kernel, recurrent, 3, False, d)
    need_shape(bias, (2, 3 * d[3]), "bias", what)
    require(what, {"h_last": h_last})
    check_arrays(what, d, 3, {"h0": (h0, "row"), "h_last": (h_last, "row"), "seq": (seq, "seq")})
    cdef int status
    with nogil:
        status = fnn_gru_infer_f32(d[0], d[1], d[2], d[3], cptr3(x), cptr2(kernel), cptr2(recurrent), cptr2(bias),
                                   cptr2(h0), act, rec_act, go_backwards, ptr2(h_last), ptr3(seq), n_threads)
    check(status, what)


def gru_backward(const float[:, :, ::1] xt, const float[:, ::1] kernel, const float[:, ::1] recurrent,
                 const float[:, :, ::1] gates, const float[:, :, ::1] rec_h, const float[:, :, ::1] h_prev,
                 const float[:, :, ::1] dseq, const float[:, ::1] dh_last, int act, int rec_act, bint go_backwards,
                 float[:, :, ::1] dzx, float[:, :, ::1] dzr, float[:, :, ::1] dxt, float[:, :, ::1] dx,
                 float[:, ::1] dkernel, float[:, ::1] drecurrent, float[:, ::1] dbias, bint accumulate=False,
                 int n_threads=1):
    """Backpropagation through time of gru_forward from its saved buffers (dseq, dh_last, dx with dxt, and the
    weight gradients may be None)."""
    cdef Py_ssize_t d[4]
    what = "gru_backward"
    check_recurrent(what, xt, kernel, recurrent, 3, True, d)
    need_shape(dbias, (2, 3 * d[3]), "dbias", what)
    need_shape(dkernel, (d[2], 3 * d[3]), "dkernel", what)
    need_shape(drecurrent, (d[3], 3 * d[3]), "drecurrent", what)
    require(what, {"gates": gates, "rec_h": rec_h, "h_prev": h_prev, "dzx": dzx, "dzr": dzr})
    if (dx is None) != (dxt is None):
        raise ValueError(f"{what}: give dx and dxt, or neither")
    check_arrays(what, d, 3, {"gates": (gates, "gates"), "rec_h": (rec_h, "state"), "h_prev": (h_prev, "state"),
                              "dseq": (dseq, "seq"), "dh_last": (dh_last, "row"), "dzx": (dzx, "gates"),
                              "dzr": (dzr, "gates"), "dxt": (dxt, "xt"), "dx": (dx, "x")})
    cdef int status
    with nogil:
        status = fnn_gru_backward_f32(d[0], d[1], d[2], d[3], cptr3(xt), cptr2(kernel), cptr2(recurrent),
                                      cptr3(gates), cptr3(rec_h), cptr3(h_prev), cptr3(dseq), cptr2(dh_last), act,
                                      rec_act, go_backwards, ptr3(dzx), ptr3(dzr), ptr3(dxt), ptr3(dx),
                                      ptr2(dkernel), ptr2(drecurrent), ptr2(dbias), accumulate, n_threads)
    check(status, what)


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
    if status != FNN_OK:  # the message is built only on failure
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
    if status != FNN_OK:  # the message is built only on failure
        check(status, f"embedding_backward (ids must lie in [0, {vocab}))")
