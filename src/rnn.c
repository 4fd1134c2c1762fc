/* The machinery every recurrent kernel shares (rnn_internal.h), and the SimpleRNN cell:
 *   h_t = act(x_t @ kernel + h_{t-1} @ recurrent + bias)
 * Forward: one GEMM projects every time step's input, then per step one recurrent GEMM accumulating into the
 * projection and one activation pass. Backward (through time): per step dz = dh * act'(h) and one GEMM for
 * dh_{t-1} = dz @ recurrent^T (against a transposed copy, so no GEMM packs it again at every step); the
 * weight gradients are merged GEMMs over all steps after the loop.
 */
#include "fnn.h"
#include "rnn_internal.h"

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Below this many multiply-adds in the recurrent GEMMs a whole sequence runs on one thread. */
#define RNN_PARALLEL_MIN_MACS 1000000.0

int fnn_rnn_dims_check(const fnn_rnn_dims *d, int gates)
{
    if (d->batch < 0 || d->steps < 0 || d->n_in < 0 || d->units < 1 || d->width != gates * d->units)
        return FNN_EBADARG;
    return FNN_OK;
}

int fnn_rnn_team(const fnn_rnn_dims *d, int n_threads)
{
    double macs = (double)d->batch * d->steps * d->units * d->width;
    int nt = n_threads < 1 ? 1 : n_threads;
    if (nt > d->batch)
        nt = (int)d->batch;
    return macs < RNN_PARALLEL_MIN_MACS || nt < 1 ? 1 : nt;
}

int fnn_rnn_run_slices(const fnn_rnn_dims *d, int n_threads, int64_t scratch_per_thread, fnn_rnn_slice_fn fn,
                       void *ctx)
{
    int nt = fnn_rnn_team(d, n_threads);
    int64_t per = (scratch_per_thread + 15) / 16 * 16;
    float *scratch = NULL;
    if (per > 0) {
        scratch = aligned_alloc(64, (size_t)(per * nt) * sizeof(float));
        if (!scratch)
            return FNN_ENOMEM;
    }
    if (nt == 1) {
        unsigned fpu = fnn_fpu_enter();
        fn(ctx, 0, d->batch, scratch);
        fnn_fpu_leave(fpu);
    } else {
#pragma omp parallel num_threads(nt)
        {
            unsigned fpu = fnn_fpu_enter();
            int t = 0, team = 1;
#ifdef _OPENMP
            t = omp_get_thread_num();
            team = omp_get_num_threads();
#endif
            /* A smaller team than asked for still covers every row: thread t takes the parts t, t + team, ... */
            for (int p = t; p < nt; p += team) {
                int64_t b0 = d->batch * p / nt, b1 = d->batch * (p + 1) / nt;
                if (b1 > b0)
                    fn(ctx, b0, b1, scratch ? scratch + per * t : NULL);
            }
            fnn_fpu_leave(fpu);
        }
    }
    free(scratch);
    return FNN_OK;
}

/* A step's recurrent GEMM must be at least this many multiply-adds for a unit split (its barrier costs about
 * as much as a tenth of such a step). */
#define RNN_UNIT_SPLIT_MIN_MACS 32768.0
#define RNN_UNIT_QUANTUM 16

int fnn_rnn_unit_team(const fnn_rnn_dims *d, int n_threads)
{
    int64_t quanta = d->units / RNN_UNIT_QUANTUM;
    if (n_threads < 2 || d->batch >= n_threads || d->steps < 2 || d->units % RNN_UNIT_QUANTUM != 0 ||
        (double)d->batch * d->units * d->width < RNN_UNIT_SPLIT_MIN_MACS)
        return 1;
    return quanta < n_threads ? (int)quanta : n_threads;
}

void fnn_rnn_run_units(const fnn_rnn_dims *d, int nt, fnn_rnn_unit_step_fn step, void *ctx)
{
#pragma omp parallel num_threads(nt)
    {
        unsigned fpu = fnn_fpu_enter();
        int t = 0, team = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        team = omp_get_num_threads();
#endif
        int64_t quanta = d->units / RNN_UNIT_QUANTUM;
        int64_t u0 = quanta * t / team * RNN_UNIT_QUANTUM, u1 = quanta * (t + 1) / team * RNN_UNIT_QUANTUM;
        for (int64_t s = 0; s < d->steps; s++) {
            step(ctx, s, u0, u1);
#pragma omp barrier
        }
        fnn_fpu_leave(fpu);
    }
}

/* dst[j, i] = src[i, j] for (outer, inner) blocks of `len` floats: batch-major <-> time-major. */
static void reorder(int64_t outer, int64_t inner, int64_t len, const float *src, float *dst)
{
    for (int64_t i = 0; i < outer; i++)
        for (int64_t j = 0; j < inner; j++)
            memcpy(dst + (j * outer + i) * len, src + (i * inner + j) * len, (size_t)len * sizeof(float));
}

/* gates = xt @ kernel + bias for `rows` rows of inputs, ld floats apart, starting at xt and gates. */
static int project_rows(const fnn_rnn_dims *d, int64_t rows, const float *xt, int64_t ld, const float *kernel,
                        const float *bias, float *gates, int n_threads)
{
    return fnn_gemm_f32(rows, d->width, d->n_in, xt, ld > 0 ? ld : 1, 0, kernel, d->width, 0, gates, d->width, 0,
                        bias, FNN_ACT_LINEAR, 0.0f, n_threads);
}

int fnn_rnn_project(const fnn_rnn_dims *d, const float *x, float *xt, const float *kernel, const float *bias,
                    float *gates, int n_threads)
{
    if (d->n_in > 0)
        reorder(d->batch, d->steps, d->n_in, x, xt);
    return project_rows(d, d->batch * d->steps, xt, d->n_in, kernel, bias, gates, n_threads);
}

void fnn_rnn_rows_or_zeros(const float *src, int64_t b0, int64_t rows, int64_t w, float *dst)
{
    size_t bytes = (size_t)(rows * w) * sizeof(float);
    if (src)
        memcpy(dst, src + b0 * w, bytes);
    else
        memset(dst, 0, bytes);
}

void fnn_rnn_initial_state(const fnn_rnn_dims *d, const float *h0, float *entering, int64_t b0, int64_t b1)
{
    int64_t t0 = fnn_rnn_time(d, 0);
    for (int64_t b = b0; b < b1; b++)
        fnn_rnn_rows_or_zeros(h0, b, 1, d->units, entering + fnn_rnn_row(d, b, t0, d->units));
}

void fnn_rnn_project_step(const fnn_rnn_dims *d, int64_t t, int64_t b0, int64_t b1)
{
    const fnn_rnn_projection *p = d->step_projection;
    if (p)
        project_rows(d, b1 - b0, p->xt + fnn_rnn_row(d, b0, t, d->n_in), d->n_in, p->kernel, p->bias,
                     p->gates + fnn_rnn_row(d, b0, t, d->width), 1);
}

void fnn_rnn_project_from_x(const fnn_rnn_dims *d, const float *x, const float *kernel, const float *bias,
                            int64_t t, int64_t b0, int64_t rows, float *gates)
{
    int64_t ld = d->steps * d->n_in; /* the same time step of consecutive sequences */
    project_rows(d, rows, x + b0 * ld + t * d->n_in, ld, kernel, bias, gates, 1);
}

/* A whole-sequence projection larger than this goes to the time loop, a step at a time: written all at once
 * it leaves the cache before the steps read it back (LSTM(128), 64 features, 32 steps: at batch 256, 16 MB,
 * 1.05x faster by steps; at batch 64, 4 MB, 0.96-1.0x). */
#define RNN_STEP_PROJECTION_MIN_BYTES (8 << 20)

int fnn_rnn_forward_run(fnn_rnn_dims *d, const float *x, float *xt, const float *kernel, const float *bias,
                        float *gates, const float *h0, float *h_prev, int n_threads, fnn_rnn_slice_fn fn,
                        fnn_rnn_unit_step_fn unit_step, void *ctx)
{
    if (d->batch == 0 || d->steps == 0)
        return FNN_OK;
    int unit_team = unit_step ? fnn_rnn_unit_team(d, n_threads) : 1;
    int team = fnn_rnn_team(d, n_threads);
    if (unit_team == 1 && team == 1)
        n_threads = 1;
    /* Two rows a slice at least: a single row would take the GEMV kernel, whose sum over a very long input
     * (FNN_GEMV_HALVES_MIN_K) is split in two, unlike the projection of the whole sequence. */
    fnn_rnn_projection by_steps = {xt, kernel, bias, gates};
    int steps_project = unit_team == 1 && d->n_in > 0 && d->batch >= 2 * team
                        && 4.0 * d->batch * d->steps * d->width > RNN_STEP_PROJECTION_MIN_BYTES;
    if (steps_project) {
        reorder(d->batch, d->steps, d->n_in, x, xt);
    } else {
        int st = fnn_rnn_project(d, x, xt, kernel, bias, gates, n_threads);
        if (st != FNN_OK)
            return st;
    }
    fnn_rnn_initial_state(d, h0, h_prev, 0, d->batch);
    if (unit_team > 1) {
        fnn_rnn_run_units(d, unit_team, unit_step, ctx);
        return FNN_OK;
    }
    d->step_projection = steps_project ? &by_steps : NULL;
    int st = fnn_rnn_run_slices(d, n_threads, 0, fn, ctx);
    d->step_projection = NULL;
    return st;
}

int fnn_rnn_infer_run(const fnn_rnn_dims *d, int n_threads, int64_t floats_per_row, fnn_rnn_slice_fn fn,
                      void *ctx)
{
    if (d->batch == 0 || d->steps == 0)
        return FNN_OK;
    /* Two rows a slice at least, as for projections by steps (fnn_rnn_forward_run), unless the batch is one
     * row: then every thread count projects it as one row. */
    int nt = fnn_rnn_team(d, n_threads);
    while (nt > 1 && d->batch < 2 * nt)
        nt--;
    return fnn_rnn_run_slices(d, nt, (d->batch + nt - 1) / nt * floats_per_row, fn, ctx);
}

int fnn_rnn_backward_run(const fnn_rnn_dims *d, const float *recurrent, const float **rt, int *n_threads,
                         int64_t scratch_per_thread, fnn_rnn_slice_fn fn, void *ctx)
{
    if (fnn_rnn_team(d, *n_threads) == 1)
        *n_threads = 1;
    if (d->batch == 0 || d->steps == 0)
        return FNN_OK;
    float *copy = malloc((size_t)(d->units * d->width) * sizeof(float));
    if (!copy)
        return FNN_ENOMEM;
    fnn_rnn_transpose(d->units, d->width, recurrent, copy);
    *rt = copy;
    int st = fnn_rnn_run_slices(d, *n_threads, scratch_per_thread, fn, ctx);
    *rt = NULL;
    free(copy);
    return st;
}

void fnn_rnn_add_dseq(const fnn_rnn_dims *d, const float *dseq, int64_t b, int64_t s, float *dh)
{
    if (!dseq)
        return;
    const float *g = dseq + fnn_rnn_seq_row(d, b, s, d->units);
    for (int64_t k = 0; k < d->units; k++)
        dh[k] += g[k];
}

void fnn_rnn_transpose(int64_t rows, int64_t cols, const float *src, float *dst)
{
    for (int64_t i0 = 0; i0 < rows; i0 += 32)
        for (int64_t j0 = 0; j0 < cols; j0 += 32)
            for (int64_t i = i0; i < rows && i < i0 + 32; i++)
                for (int64_t j = j0; j < cols && j < j0 + 32; j++)
                    dst[j * rows + i] = src[i * cols + j];
}

int fnn_rnn_weight_grads(const fnn_rnn_dims *d, const float *xt, const float *kernel, const float *h_prev,
                         const float *dzx, const float *dzr, float *dxt, float *dx, float *dkernel,
                         float *drecurrent, float *dbias_in, float *dbias_rec, int accumulate, int n_threads)
{
    int64_t rows = d->batch * d->steps, w = d->width, h = d->units, n_in = d->n_in;
    int st = FNN_OK;
    if (n_in > 0 && dkernel)
        st = fnn_gemm_f32(n_in, w, rows, xt, n_in, 1, dzx, w, 0, dkernel, w, accumulate, NULL, FNN_ACT_LINEAR,
                          0.0f, n_threads);
    if (st == FNN_OK && drecurrent)
        st = fnn_gemm_f32(h, w, rows, h_prev, h, 1, dzr, w, 0, drecurrent, w, accumulate, NULL, FNN_ACT_LINEAR,
                          0.0f, n_threads);
    if (st == FNN_OK && dbias_in)
        st = fnn_colsum_f32(rows, w, dzx, w, dbias_in, accumulate, n_threads);
    if (st == FNN_OK && dbias_rec)
        st = fnn_colsum_f32(rows, w, dzr, w, dbias_rec, accumulate, n_threads);
    if (st == FNN_OK && dx && dxt && n_in > 0) {
        st = fnn_gemm_f32(rows, n_in, w, dzx, w, 0, kernel, w, 1, dxt, n_in, 0, NULL, FNN_ACT_LINEAR, 0.0f,
                          n_threads);
        reorder(d->steps, d->batch, n_in, dxt, dx);
    }
    return st;
}

/* ---- SimpleRNN ------------------------------------------------------------------------------------------ */
typedef struct {
    fnn_rnn_dims d;
    const float *recurrent, *rt, *dseq, *dh_last;
    float *gates, *h_prev, *h_last, *seq, *dz;
    int act;
} simple_job;

static void simple_forward_slice(void *ctx, int64_t b0, int64_t b1, float *scratch)
{
    const simple_job *j = ctx;
    const fnn_rnn_dims *d = &j->d;
    const struct fnn_ew *ew = fnn_ew_current();
    int64_t h = d->units, rows = b1 - b0;
    (void)scratch;
    for (int64_t s = 0; s < d->steps; s++) {
        int64_t t = fnn_rnn_time(d, s);
        float *z = j->gates + fnn_rnn_row(d, b0, t, h);
        fnn_rnn_project_step(d, t, b0, b1);
        fnn_gemm_f32(rows, h, h, j->h_prev + fnn_rnn_row(d, b0, t, h), h, 0, j->recurrent, h, 0, z,
                     h, 1, NULL, FNN_ACT_LINEAR, 0.0f, 1);
        for (int64_t b = b0; b < b1; b++) {
            float *zb = j->gates + fnn_rnn_row(d, b, t, h);
            ew->act_forward(h, zb, NULL, zb, j->act, 0.0f);
            memcpy(fnn_rnn_next_state(d, j->h_prev, j->h_last, b, s), zb, (size_t)h * sizeof(float));
            if (j->seq)
                memcpy(j->seq + fnn_rnn_seq_row(d, b, s, h), zb, (size_t)h * sizeof(float));
        }
    }
}

int fnn_simple_rnn_forward_f32(int64_t batch, int64_t steps, int64_t n_in, int64_t units, const float *x,
                               const float *kernel, const float *recurrent, const float *bias, const float *h0,
                               int act, int go_backwards, float *xt, float *gates, float *h_prev, float *h_last,
                               float *seq, int n_threads)
{
    simple_job j = {{batch, steps, n_in, units, units, go_backwards != 0}, recurrent, NULL, NULL, NULL,
                    gates, h_prev, h_last, seq, NULL, act};
    if (fnn_rnn_dims_check(&j.d, 1) || !fnn_rnn_act_ok(act))
        return FNN_EBADARG;
    return fnn_rnn_forward_run(&j.d, x, xt, kernel, bias, gates, h0, h_prev, n_threads, simple_forward_slice, NULL,
                               &j);
}

static void simple_backward_slice(void *ctx, int64_t b0, int64_t b1, float *dh)
{
    const simple_job *j = ctx;
    const fnn_rnn_dims *d = &j->d;
    const struct fnn_ew *ew = fnn_ew_current();
    int64_t h = d->units, rows = b1 - b0;
    fnn_rnn_rows_or_zeros(j->dh_last, b0, rows, d->units, dh);
    for (int64_t s = d->steps - 1; s >= 0; s--) {
        int64_t t = fnn_rnn_time(d, s);
        for (int64_t b = b0; b < b1; b++) {
            float *dhb = dh + (b - b0) * h;
            fnn_rnn_add_dseq(d, j->dseq, b, s, dhb);
            ew->act_backward(h, NULL, j->gates + fnn_rnn_row(d, b, t, h), dhb, j->dz + fnn_rnn_row(d, b, t, h),
                             j->act, 0.0f);
        }
        if (s > 0)
            fnn_gemm_f32(rows, h, h, j->dz + fnn_rnn_row(d, b0, t, h), h, 0, j->rt, h, 0, dh, h, 0,
                         NULL, FNN_ACT_LINEAR, 0.0f, 1);
    }
}

int fnn_simple_rnn_backward_f32(int64_t batch, int64_t steps, int64_t n_in, int64_t units, const float *xt,
                                const float *kernel, const float *recurrent, const float *gates,
                                const float *h_prev, const float *dseq, const float *dh_last, int act,
                                int go_backwards, float *dz, float *dxt, float *dx, float *dkernel,
                                float *drecurrent, float *dbias, int accumulate, int n_threads)
{
    simple_job j = {{batch, steps, n_in, units, units, go_backwards != 0}, recurrent, NULL, dseq, dh_last,
                    (float *)gates, (float *)h_prev, NULL, NULL, dz, act};
    if (fnn_rnn_dims_check(&j.d, 1) || !fnn_rnn_act_ok(act))
        return FNN_EBADARG;
    int st = fnn_rnn_backward_run(&j.d, recurrent, &j.rt, &n_threads, batch * units, simple_backward_slice, &j);
    if (st == FNN_OK)
        st = fnn_rnn_weight_grads(&j.d, xt, kernel, h_prev, dz, dz, dxt, dx, dkernel, drecurrent, dbias, NULL,
                                  accumulate, n_threads);
    return st;
}
