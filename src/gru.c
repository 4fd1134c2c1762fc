/* The GRU cell as Keras with reset_after=True: kernel (n_in, 3u), recurrent (u, 3u), bias (2, 3u) (row 0 for
 * the input projection, row 1 for the recurrent one), gates z, r, h:
 *   x_* = x_t @ kernel + b_in,  r_* = h_{t-1} @ recurrent + b_rec
 *   z = rec_act(x_z + r_z);  r = rec_act(x_r + r_r);  n = act(x_h + r * r_h);  h_t = z h_{t-1} + (1 - z) n
 * Forward: one GEMM projects all time steps; per step the recurrent GEMM accumulates into the z, r columns of
 * the projection and writes r_h apart (kept for backward), then one pass per row.
 * Backward: per step one pass per row gives dz for the input side (dzx) and the recurrent side (dzr, whose
 * h part is scaled by r), then one GEMM adds dzr @ R^T to z * dh for dh_{t-1}; merged weight GEMMs follow.
 */
#include "fnn.h"
#include "rnn_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    fnn_rnn_dims d;
    const float *recurrent, *rec_bias, *rt, *dseq, *dh_last;
    float *gates, *rec_h, *h_prev, *h_last, *seq, *dzx, *dzr;
    int act, rec_act;
    const float *x, *kernel, *bias, *h0; /* fnn_gru_infer_f32 only */
} gru_job;

/* One row: g (3u, the input projection plus the recurrent z, r parts) becomes the activated gates, rh holding
 * the recurrent h part; from the entering state hp writes h_t to hn. */
static void gru_cell(const gru_job *j, const struct fnn_ew *ew, float *g, const float *rh, const float *hp,
                     float *hn)
{
    int64_t u = j->d.units;
    float *zg = g, *rg = g + u, *ng = g + 2 * u;
    ew->act_forward(2 * u, zg, NULL, zg, j->rec_act, 0.0f);
    for (int64_t k = 0; k < u; k++)
        ng[k] += rg[k] * rh[k];
    ew->act_forward(u, ng, NULL, ng, j->act, 0.0f);
    for (int64_t k = 0; k < u; k++)
        hn[k] = zg[k] * hp[k] + (1.0f - zg[k]) * ng[k];
}

static void gru_cell_forward(const gru_job *j, const struct fnn_ew *ew, int64_t b, int64_t s, int64_t t)
{
    const fnn_rnn_dims *d = &j->d;
    int64_t u = d->units;
    float *hn = fnn_rnn_next_state(d, j->h_prev, j->h_last, b, s);
    gru_cell(j, ew, j->gates + fnn_rnn_row(d, b, t, 3 * u), j->rec_h + fnn_rnn_row(d, b, t, u),
             j->h_prev + fnn_rnn_row(d, b, t, u), hn);
    if (j->seq)
        memcpy(j->seq + fnn_rnn_seq_row(d, b, s, u), hn, (size_t)u * sizeof(float));
}

static void gru_forward_slice(void *ctx, int64_t b0, int64_t b1, float *scratch)
{
    const gru_job *j = ctx;
    const fnn_rnn_dims *d = &j->d;
    const struct fnn_ew *ew = fnn_ew_current();
    int64_t u = d->units, rows = b1 - b0, ldh = u;
    const float *rb = j->rec_bias;
    (void)scratch;
    for (int64_t s = 0; s < d->steps; s++) {
        int64_t t = fnn_rnn_time(d, s);
        const float *hp = j->h_prev + fnn_rnn_row(d, b0, t, u);
        fnn_rnn_project_step(d, t, b0, b1);
        fnn_gemm_f32(rows, 2 * u, u, hp, ldh, 0, j->recurrent, 3 * u, 0, j->gates + fnn_rnn_row(d, b0, t, 3 * u),
                     3 * u, 1, rb, FNN_ACT_LINEAR, 0.0f, 1);
        fnn_gemm_f32(rows, u, u, hp, ldh, 0, j->recurrent + 2 * u, 3 * u, 0, j->rec_h + fnn_rnn_row(d, b0, t, u),
                     ldh, 0, rb ? rb + 2 * u : NULL, FNN_ACT_LINEAR, 0.0f, 1);
        for (int64_t b = b0; b < b1; b++)
            gru_cell_forward(j, ew, b, s, t);
    }
}

int fnn_gru_forward_f32(int64_t batch, int64_t steps, int64_t n_in, int64_t units, const float *x,
                        const float *kernel, const float *recurrent, const float *bias, const float *h0, int act,
                        int rec_act, int go_backwards, float *xt, float *gates, float *rec_h, float *h_prev,
                        float *h_last, float *seq, int n_threads)
{
    gru_job j = {{batch, steps, n_in, units, 3 * units, go_backwards != 0}, recurrent,
                 bias ? bias + 3 * units : NULL, NULL, NULL, NULL, gates, rec_h, h_prev, h_last, seq, NULL, NULL,
                 act, rec_act};
    if (fnn_rnn_dims_check(&j.d, 3) || !fnn_rnn_act_ok(act) || !fnn_rnn_act_ok(rec_act))
        return FNN_EBADARG;
    return fnn_rnn_forward_run(&j.d, x, xt, kernel, bias, gates, h0, h_prev, n_threads, gru_forward_slice, NULL, &j);
}

/* Inference, as lstm_infer_slice: scratch holds the step's gates (rows x 3u) and recurrent h part (rows x u),
 * then h (rows x u) for each parity of s. */
static void gru_infer_slice(void *ctx, int64_t b0, int64_t b1, float *scratch)
{
    const gru_job *j = ctx;
    const fnn_rnn_dims *d = &j->d;
    const struct fnn_ew *ew = fnn_ew_current();
    int64_t u = d->units, rows = b1 - b0;
    const float *rb = j->rec_bias;
    float *g = scratch, *rh = g + rows * 3 * u, *h[2] = {rh + rows * u, rh + rows * 2 * u};
    fnn_rnn_rows_or_zeros(j->h0, b0, rows, u, h[0]);
    for (int64_t s = 0; s < d->steps; s++) {
        int64_t t = fnn_rnn_time(d, s);
        const float *hp = h[s & 1];
        float *hn = h[~s & 1];
        fnn_rnn_project_from_x(d, j->x, j->kernel, j->bias, t, b0, rows, g);
        fnn_gemm_f32(rows, 2 * u, u, hp, u, 0, j->recurrent, 3 * u, 0, g, 3 * u, 1, rb, FNN_ACT_LINEAR, 0.0f, 1);
        fnn_gemm_f32(rows, u, u, hp, u, 0, j->recurrent + 2 * u, 3 * u, 0, rh, u, 0, rb ? rb + 2 * u : NULL,
                     FNN_ACT_LINEAR, 0.0f, 1);
        for (int64_t r = 0; r < rows; r++) {
            gru_cell(j, ew, g + r * 3 * u, rh + r * u, hp + r * u, hn + r * u);
            if (j->seq)
                memcpy(j->seq + fnn_rnn_seq_row(d, b0 + r, s, u), hn + r * u, (size_t)u * sizeof(float));
        }
    }
    memcpy(j->h_last + b0 * u, h[d->steps & 1], (size_t)(rows * u) * sizeof(float));
}

int fnn_gru_infer_f32(int64_t batch, int64_t steps, int64_t n_in, int64_t units, const float *x,
                      const float *kernel, const float *recurrent, const float *bias, const float *h0, int act,
                      int rec_act, int go_backwards, float *h_last, float *seq, int n_threads)
{
    gru_job j = {{batch, steps, n_in, units, 3 * units, go_backwards != 0}, recurrent,
                 bias ? bias + 3 * units : NULL, NULL, NULL, NULL, NULL, NULL, NULL, h_last, seq, NULL, NULL,
                 act, rec_act};
    if (fnn_rnn_dims_check(&j.d, 3) || !fnn_rnn_act_ok(act) || !fnn_rnn_act_ok(rec_act) || !h_last)
        return FNN_EBADARG;
    j.x = x, j.kernel = kernel, j.bias = bias, j.h0 = h0;
    return fnn_rnn_infer_run(&j.d, n_threads, 6 * units, gru_infer_slice, &j);
}

/* Row b at step s: writes dzx and dzr from dh (d loss / d h_t), and leaves z * dh in dh. */
static void gru_cell_backward(const gru_job *j, const struct fnn_ew *ew, int64_t b, int64_t t, float *dh)
{
    const fnn_rnn_dims *d = &j->d;
    int64_t u = d->units;
    const float *g = j->gates + fnn_rnn_row(d, b, t, 3 * u);
    const float *zg = g, *rg = g + u, *ng = g + 2 * u;
    const float *rh = j->rec_h + fnn_rnn_row(d, b, t, u);
    const float *hp = j->h_prev + fnn_rnn_row(d, b, t, u);
    float *dx = j->dzx + fnn_rnn_row(d, b, t, 3 * u), *dr = j->dzr + fnn_rnn_row(d, b, t, 3 * u);
    for (int64_t k = 0; k < u; k++) {
        dx[k] = dh[k] * (hp[k] - ng[k]);
        dx[2 * u + k] = dh[k] * (1.0f - zg[k]);
        dh[k] *= zg[k];
    }
    ew->act_backward(u, NULL, ng, dx + 2 * u, dx + 2 * u, j->act, 0.0f);
    for (int64_t k = 0; k < u; k++) {
        dx[u + k] = dx[2 * u + k] * rh[k];
        dr[2 * u + k] = dx[2 * u + k] * rg[k];
    }
    ew->act_backward(2 * u, NULL, zg, dx, dx, j->rec_act, 0.0f);
    memcpy(dr, dx, (size_t)(2 * u) * sizeof(float));
}

static void gru_backward_slice(void *ctx, int64_t b0, int64_t b1, float *dh)
{
    const gru_job *j = ctx;
    const fnn_rnn_dims *d = &j->d;
    const struct fnn_ew *ew = fnn_ew_current();
    int64_t u = d->units, rows = b1 - b0;
    fnn_rnn_rows_or_zeros(j->dh_last, b0, rows, d->units, dh);
    for (int64_t s = d->steps - 1; s >= 0; s--) {
        int64_t t = fnn_rnn_time(d, s);
        for (int64_t b = b0; b < b1; b++) {
            float *dhb = dh + (b - b0) * u;
            fnn_rnn_add_dseq(d, j->dseq, b, s, dhb);
            gru_cell_backward(j, ew, b, t, dhb);
        }
        if (s > 0)
            fnn_gemm_f32(rows, u, 3 * u, j->dzr + fnn_rnn_row(d, b0, t, 3 * u), 3 * u, 0, j->rt, u, 0,
                         dh, u, 1, NULL, FNN_ACT_LINEAR, 0.0f, 1);
    }
}

int fnn_gru_backward_f32(int64_t batch, int64_t steps, int64_t n_in, int64_t units, const float *xt,
                         const float *kernel, const float *recurrent, const float *gates, const float *rec_h,
                         const float *h_prev, const float *dseq, const float *dh_last, int act, int rec_act,
                         int go_backwards, float *dzx, float *dzr, float *dxt, float *dx, float *dkernel,
                         float *drecurrent, float *dbias, int accumulate, int n_threads)
{
    gru_job j = {{batch, steps, n_in, units, 3 * units, go_backwards != 0}, recurrent, NULL, NULL, dseq, dh_last,
                 (float *)gates, (float *)rec_h, (float *)h_prev, NULL, NULL, dzx, dzr, act, rec_act};
    if (fnn_rnn_dims_check(&j.d, 3) || !fnn_rnn_act_ok(act) || !fnn_rnn_act_ok(rec_act))
        return FNN_EBADARG;
    int st = fnn_rnn_backward_run(&j.d, recurrent, &j.rt, &n_threads, batch * units, gru_backward_slice, &j);
    if (st == FNN_OK)
        st = fnn_rnn_weight_grads(&j.d, xt, kernel, h_prev, dzx, dzr, dxt, dx, dkernel, drecurrent, dbias,
                                  dbias ? dbias + 3 * units : NULL, accumulate, n_threads);
    return st;
}
