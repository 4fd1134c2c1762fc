/* The LSTM cell, Keras layout: kernel (n_in, 4u), recurrent (u, 4u), bias (4u), gates i, f, c, o.
 *   z = x_t @ kernel + h_{t-1} @ recurrent + bias = [z_i, z_f, z_c, z_o]
 *   i, f, o = rec_act(z_i, z_f, z_o);  g = act(z_c);  c_t = f c_{t-1} + i g;  h_t = o act(c_t)
 * Forward: one GEMM projects all time steps; per step one recurrent GEMM accumulating into the projection,
 * then one pass per row turns z into the activated gates (kept for backward) and the new c and h.
 * Backward: per step one pass per row computes dz from dh and dc, then one GEMM gives dh_{t-1} = dz @ R^T;
 * the weight gradients are merged GEMMs after the loop (rnn.c).
 */
#include "fnn.h"
#include "rnn_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    fnn_rnn_dims d;
    const float *recurrent, *rt, *dseq, *dh_last, *c_last_in;
    float *gates, *h_prev, *c_prev, *h_last, *c_last, *seq, *dz;
    int act, rec_act;
    const float *x, *kernel, *bias, *h0, *c0; /* fnn_lstm_infer_f32 only */
} lstm_job;

/* n units of one row: z (4u, holding the pre-activations) becomes the activated gates; from the entering
 * cell state cp writes c_t to cn and h_t to hn. */
static void lstm_cell(const lstm_job *j, const struct fnn_ew *ew, int64_t n, float *z, const float *cp, float *cn,
                      float *hn)
{
    int64_t u = j->d.units;
    float *ig = z, *fg = z + u, *gg = z + 2 * u, *og = z + 3 * u;
    ew->act_forward(n, ig, NULL, ig, j->rec_act, 0.0f);
    ew->act_forward(n, fg, NULL, fg, j->rec_act, 0.0f);
    ew->act_forward(n, gg, NULL, gg, j->act, 0.0f);
    ew->act_forward(n, og, NULL, og, j->rec_act, 0.0f);
    for (int64_t k = 0; k < n; k++)
        cn[k] = fg[k] * cp[k] + ig[k] * gg[k];
    ew->act_forward(n, cn, NULL, hn, j->act, 0.0f);
    for (int64_t k = 0; k < n; k++)
        hn[k] *= og[k];
}

/* Row b at step s, units [k0, k1), in the saved buffers; also writes the output sequence. */
static void lstm_cell_forward(const lstm_job *j, const struct fnn_ew *ew, int64_t b, int64_t s, int64_t t,
                              int64_t k0, int64_t k1)
{
    const fnn_rnn_dims *d = &j->d;
    int64_t u = d->units;
    float *hn = fnn_rnn_next_state(d, j->h_prev, j->h_last, b, s) + k0;
    lstm_cell(j, ew, k1 - k0, j->gates + fnn_rnn_row(d, b, t, 4 * u) + k0, j->c_prev + fnn_rnn_row(d, b, t, u) + k0,
              fnn_rnn_next_state(d, j->c_prev, j->c_last, b, s) + k0, hn);
    if (j->seq)
        memcpy(j->seq + fnn_rnn_seq_row(d, b, s, u) + k0, hn, (size_t)(k1 - k0) * sizeof(float));
}

static void lstm_forward_slice(void *ctx, int64_t b0, int64_t b1, float *scratch)
{
    const lstm_job *j = ctx;
    const fnn_rnn_dims *d = &j->d;
    const struct fnn_ew *ew = fnn_ew_current();
    int64_t u = d->units, rows = b1 - b0;
    (void)scratch;
    for (int64_t s = 0; s < d->steps; s++) {
        int64_t t = fnn_rnn_time(d, s);
        fnn_rnn_project_step(d, t, b0, b1);
        fnn_gemm_f32(rows, 4 * u, u, j->h_prev + fnn_rnn_row(d, b0, t, u), u, 0, j->recurrent, 4 * u,
                     0, j->gates + fnn_rnn_row(d, b0, t, 4 * u), 4 * u, 1, NULL, FNN_ACT_LINEAR, 0.0f, 1);
        for (int64_t b = b0; b < b1; b++)
            lstm_cell_forward(j, ew, b, s, t, 0, u);
    }
}

/* Step s of the unit split: units [u0, u1) of every row, their columns in each of the four gate blocks. */
static void lstm_forward_units(void *ctx, int64_t s, int64_t u0, int64_t u1)
{
    const lstm_job *j = ctx;
    const fnn_rnn_dims *d = &j->d;
    const struct fnn_ew *ew = fnn_ew_current();
    int64_t u = d->units, t = fnn_rnn_time(d, s);
    float *z = j->gates + fnn_rnn_row(d, 0, t, 4 * u);
    for (int g = 0; g < 4; g++)
        fnn_gemm_f32(d->batch, u1 - u0, u, j->h_prev + fnn_rnn_row(d, 0, t, u), u, 0, j->recurrent + g * u + u0,
                     4 * u, 0, z + g * u + u0, 4 * u, 1, NULL, FNN_ACT_LINEAR, 0.0f, 1);
    for (int64_t b = 0; b < d->batch; b++)
        lstm_cell_forward(j, ew, b, s, t, u0, u1);
}

int fnn_lstm_forward_f32(int64_t batch, int64_t steps, int64_t n_in, int64_t units, const float *x,
                         const float *kernel, const float *recurrent, const float *bias, const float *h0,
                         const float *c0, int act, int rec_act, int go_backwards, float *xt, float *gates,
                         float *h_prev, float *c_prev, float *h_last, float *c_last, float *seq, int n_threads)
{
    lstm_job j = {{batch, steps, n_in, units, 4 * units, go_backwards != 0}, recurrent, NULL, NULL, NULL, NULL,
                  gates, h_prev, c_prev, h_last, c_last, seq, NULL, act, rec_act};
    if (fnn_rnn_dims_check(&j.d, 4) || !fnn_rnn_act_ok(act) || !fnn_rnn_act_ok(rec_act))
        return FNN_EBADARG;
    if (steps > 0)
        fnn_rnn_initial_state(&j.d, c0, c_prev, 0, batch);
    return fnn_rnn_forward_run(&j.d, x, xt, kernel, bias, gates, h0, h_prev, n_threads, lstm_forward_slice,
                               lstm_forward_units, &j);
}

/* Inference: each slice keeps only the current step's gates and two generations of its states, all in cache,
 * projecting each step's inputs straight from x (rows a step apart: leading dimension steps * n_in).
 * scratch: gates (rows x 4u), then h and c (rows x u) for each parity of s. */
static void lstm_infer_slice(void *ctx, int64_t b0, int64_t b1, float *scratch)
{
    const lstm_job *j = ctx;
    const fnn_rnn_dims *d = &j->d;
    const struct fnn_ew *ew = fnn_ew_current();
    int64_t u = d->units, rows = b1 - b0;
    float *z = scratch, *h[2] = {z + rows * 4 * u, z + rows * 5 * u}, *c[2] = {z + rows * 6 * u, z + rows * 7 * u};
    fnn_rnn_rows_or_zeros(j->h0, b0, rows, u, h[0]);
    fnn_rnn_rows_or_zeros(j->c0, b0, rows, u, c[0]);
    for (int64_t s = 0; s < d->steps; s++) {
        int64_t t = fnn_rnn_time(d, s);
        float *hp = h[s & 1], *cp = c[s & 1], *hn = h[~s & 1], *cn = c[~s & 1];
        fnn_rnn_project_from_x(d, j->x, j->kernel, j->bias, t, b0, rows, z);
        fnn_gemm_f32(rows, 4 * u, u, hp, u, 0, j->recurrent, 4 * u, 0, z, 4 * u, 1, NULL, FNN_ACT_LINEAR, 0.0f, 1);
        for (int64_t r = 0; r < rows; r++) {
            lstm_cell(j, ew, u, z + r * 4 * u, cp + r * u, cn + r * u, hn + r * u);
            if (j->seq)
                memcpy(j->seq + fnn_rnn_seq_row(d, b0 + r, s, u), hn + r * u, (size_t)u * sizeof(float));
        }
    }
    memcpy(j->h_last + b0 * u, h[d->steps & 1], (size_t)(rows * u) * sizeof(float));
    memcpy(j->c_last + b0 * u, c[d->steps & 1], (size_t)(rows * u) * sizeof(float));
}

int fnn_lstm_infer_f32(int64_t batch, int64_t steps, int64_t n_in, int64_t units, const float *x,
                       const float *kernel, const float *recurrent, const float *bias, const float *h0,
                       const float *c0, int act, int rec_act, int go_backwards, float *h_last, float *c_last,
                       float *seq, int n_threads)
{
    lstm_job j = {{batch, steps, n_in, units, 4 * units, go_backwards != 0}, recurrent, NULL, NULL, NULL, NULL,
                  NULL, NULL, NULL, h_last, c_last, seq, NULL, act, rec_act};
    if (fnn_rnn_dims_check(&j.d, 4) || !fnn_rnn_act_ok(act) || !fnn_rnn_act_ok(rec_act) || !h_last || !c_last)
        return FNN_EBADARG;
    j.x = x, j.kernel = kernel, j.bias = bias, j.h0 = h0, j.c0 = c0;
    return fnn_rnn_infer_run(&j.d, n_threads, 8 * units, lstm_infer_slice, &j);
}

/* Row b at step s: from dh (d loss / d h_t, all paths) and dc (d loss / d c_t through c_{t+1}), writes
 * dz = d loss / d z_t and leaves dc = d loss / d c_{t-1}. tmp holds 2u floats. */
static void lstm_cell_backward(const lstm_job *j, const struct fnn_ew *ew, int64_t b, int64_t s, int64_t t,
                               const float *dh, float *dc, float *tmp)
{
    const fnn_rnn_dims *d = &j->d;
    int64_t u = d->units;
    const float *z = j->gates + fnn_rnn_row(d, b, t, 4 * u);
    const float *ig = z, *fg = z + u, *gg = z + 2 * u, *og = z + 3 * u;
    const float *cp = j->c_prev + fnn_rnn_row(d, b, t, u);
    const float *cn = fnn_rnn_next_state_c(d, j->c_prev, j->c_last_in, b, s);
    float *dz = j->dz + fnn_rnn_row(d, b, t, 4 * u);
    float *di = dz, *df = dz + u, *dg = dz + 2 * u, *dout = dz + 3 * u;
    float *tc = tmp, *dtc = tmp + u;
    ew->act_forward(u, cn, NULL, tc, j->act, 0.0f);
    for (int64_t k = 0; k < u; k++)
        dtc[k] = dh[k] * og[k];
    ew->act_backward(u, NULL, tc, dtc, dtc, j->act, 0.0f);
    for (int64_t k = 0; k < u; k++) {
        float dck = dc[k] + dtc[k];
        dout[k] = dh[k] * tc[k];
        di[k] = dck * gg[k];
        df[k] = dck * cp[k];
        dg[k] = dck * ig[k];
        dc[k] = dck * fg[k];
    }
    ew->act_backward(2 * u, NULL, ig, di, di, j->rec_act, 0.0f);
    ew->act_backward(u, NULL, gg, dg, dg, j->act, 0.0f);
    ew->act_backward(u, NULL, og, dout, dout, j->rec_act, 0.0f);
}

/* scratch: dh and dc for the slice's rows, then 2u floats. */
static void lstm_backward_slice(void *ctx, int64_t b0, int64_t b1, float *scratch)
{
    const lstm_job *j = ctx;
    const fnn_rnn_dims *d = &j->d;
    const struct fnn_ew *ew = fnn_ew_current();
    int64_t u = d->units, rows = b1 - b0;
    float *dh = scratch, *dc = scratch + rows * u, *tmp = scratch + 2 * rows * u;
    fnn_rnn_rows_or_zeros(j->dh_last, b0, rows, d->units, dh);
    memset(dc, 0, (size_t)(rows * u) * sizeof(float));
    for (int64_t s = d->steps - 1; s >= 0; s--) {
        int64_t t = fnn_rnn_time(d, s);
        for (int64_t b = b0; b < b1; b++) {
            float *dhb = dh + (b - b0) * u;
            fnn_rnn_add_dseq(d, j->dseq, b, s, dhb);
            lstm_cell_backward(j, ew, b, s, t, dhb, dc + (b - b0) * u, tmp);
        }
        if (s > 0)
            fnn_gemm_f32(rows, u, 4 * u, j->dz + fnn_rnn_row(d, b0, t, 4 * u), 4 * u, 0, j->rt, u, 0,
                         dh, u, 0, NULL, FNN_ACT_LINEAR, 0.0f, 1);
    }
}

int fnn_lstm_backward_f32(int64_t batch, int64_t steps, int64_t n_in, int64_t units, const float *xt,
                          const float *kernel, const float *recurrent, const float *gates, const float *h_prev,
                          const float *c_prev, const float *c_last, const float *dseq, const float *dh_last,
                          int act, int rec_act, int go_backwards, float *dz, float *dxt, float *dx, float *dkernel,
                          float *drecurrent, float *dbias, int accumulate, int n_threads)
{
    lstm_job j = {{batch, steps, n_in, units, 4 * units, go_backwards != 0}, recurrent, NULL, dseq, dh_last,
                  c_last, (float *)gates, (float *)h_prev, (float *)c_prev, NULL, NULL, NULL, dz, act, rec_act};
    if (fnn_rnn_dims_check(&j.d, 4) || !fnn_rnn_act_ok(act) || !fnn_rnn_act_ok(rec_act))
        return FNN_EBADARG;
    int st = fnn_rnn_backward_run(&j.d, recurrent, &j.rt, &n_threads, (2 * batch + 2) * units,
                                  lstm_backward_slice, &j);
    if (st == FNN_OK)
        st = fnn_rnn_weight_grads(&j.d, xt, kernel, h_prev, dz, dz, dxt, dx, dkernel, drecurrent, dbias, NULL,
                                  accumulate, n_threads);
    return st;
}
