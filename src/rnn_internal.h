/* What the recurrent kernels (src/rnn.c, src/lstm.c, src/gru.c) share; not part of the public C API.
 *
 * Layout (fnn.h): the saved buffers are time-major and indexed by input time t, row (t, b) of a
 * (steps, batch, w) array at (t * batch + b) * w, so each step works on contiguous blocks; the sequences the
 * layers exchange (x, seq, dseq, dx) are batch-major. Step s reads time t = s, or steps - 1 - s with
 * go_backwards; the state it produces is the one entering the next time step read, or the final state.
 * Threads split the batch: each runs the whole time loop on its own rows with serial GEMMs, so there is no
 * synchronisation inside the loop and every row's arithmetic is the same for any thread count.
 */
#ifndef FNN_RNN_INTERNAL_H
#define FNN_RNN_INTERNAL_H

#include <stdint.h>

#include "ew.h"

/* The input projection's operands, when fnn_rnn_forward_run leaves it to the time loop (fnn_rnn_project_step). */
typedef struct {
    const float *xt, *kernel, *bias;
    float *gates;
} fnn_rnn_projection;

typedef struct {
    int64_t batch, steps, n_in, units;
    int64_t width; /* columns of the input projection: gates x units */
    int go_backwards;
    const fnn_rnn_projection *step_projection; /* set by fnn_rnn_forward_run; NULL: projected up front */
} fnn_rnn_dims;

static inline int64_t fnn_rnn_time(const fnn_rnn_dims *d, int64_t s)
{
    return d->go_backwards ? d->steps - 1 - s : s;
}

/* Row (t, b) of a time-major (steps, batch, w) buffer. */
static inline int64_t fnn_rnn_row(const fnn_rnn_dims *d, int64_t b, int64_t t, int64_t w)
{
    return (t * d->batch + b) * w;
}

/* Row (b, s) of a batch-major (batch, steps, w) sequence. */
static inline int64_t fnn_rnn_seq_row(const fnn_rnn_dims *d, int64_t b, int64_t s, int64_t w)
{
    return (b * d->steps + s) * w;
}

/* Where the state produced at step s goes: the entry slot of the next time step, or the final-state row. */
static inline float *fnn_rnn_next_state(const fnn_rnn_dims *d, float *entering, float *last, int64_t b,
                                        int64_t s)
{
    if (s + 1 < d->steps)
        return entering + fnn_rnn_row(d, b, fnn_rnn_time(d, s + 1), d->units);
    return last + b * d->units;
}

static inline const float *fnn_rnn_next_state_c(const fnn_rnn_dims *d, const float *entering, const float *last,
                                                int64_t b, int64_t s)
{
    return fnn_rnn_next_state(d, (float *)entering, (float *)last, b, s);
}

/* The activations the recurrent layers support (their derivative follows from the output). */
static inline int fnn_rnn_act_ok(int act)
{
    return act == FNN_ACT_LINEAR || act == FNN_ACT_RELU || act == FNN_ACT_SIGMOID || act == FNN_ACT_TANH;
}

int fnn_rnn_dims_check(const fnn_rnn_dims *d, int gates);

/* The team size for a sequence: 1 below a minimum of work or for a single row, else up to n_threads (at most
 * one thread per row). When it is 1 the GEMMs around the loop run on one thread too: a call that small would
 * spend more on waking a thread than it saves. */
int fnn_rnn_team(const fnn_rnn_dims *d, int n_threads);

/* Runs fn(ctx, b0, b1, thread) on a team sharing the batch rows out (flush-to-zero set on every thread);
 * scratch_per_thread floats of 64-byte aligned scratch are handed to each (NULL when 0). */
typedef void (*fnn_rnn_slice_fn)(void *ctx, int64_t b0, int64_t b1, float *scratch);
int fnn_rnn_run_slices(const fnn_rnn_dims *d, int n_threads, int64_t scratch_per_thread, fnn_rnn_slice_fn fn,
                       void *ctx);

/* A batch with fewer rows than threads still splits across the team when its steps are wide: each thread owns
 * a range of units (16-unit blocks, so every element-wise pass sees the same vector positions) and runs
 * step(ctx, s, u0, u1) for every step, the team meeting at a barrier after each so the next step reads the
 * whole state. fnn_rnn_unit_team is that team's size, 1 when the split does not pay or the units do not come
 * in blocks of 16 (the caller then runs the batch split). */
int fnn_rnn_unit_team(const fnn_rnn_dims *d, int n_threads);
typedef void (*fnn_rnn_unit_step_fn)(void *ctx, int64_t s, int64_t u0, int64_t u1);
void fnn_rnn_run_units(const fnn_rnn_dims *d, int nt, fnn_rnn_unit_step_fn step, void *ctx);

/* A cell's forward pass: nothing for an empty batch or sequence, else the input projection (fnn_rnn_project),
 * the entry state of the first step from h0 (NULL: zeros) and the time loop on a team: unit_step's unit split
 * when fnn_rnn_unit_team says it pays (unit_step may be NULL), else fn's batch split. When the projection of
 * the whole sequence would be too large to stay in cache, the batch split's steps project their own rows
 * instead (d->step_projection is set for the run, and fn calls fnn_rnn_project_step at every step). */
int fnn_rnn_forward_run(fnn_rnn_dims *d, const float *x, float *xt, const float *kernel, const float *bias,
                        float *gates, const float *h0, float *h_prev, int n_threads, fnn_rnn_slice_fn fn,
                        fnn_rnn_unit_step_fn unit_step, void *ctx);

/* A cell's inference (fnn_*_infer_f32, nothing saved for backward): fn runs on a team of slices of at least
 * two rows each (unless the batch is one row), with floats_per_row floats of scratch for each row of its
 * slice; nothing for an empty batch or sequence. */
int fnn_rnn_infer_run(const fnn_rnn_dims *d, int n_threads, int64_t floats_per_row, fnn_rnn_slice_fn fn,
                      void *ctx);

/* A cell's backward time loop: *rt holds a transposed copy of recurrent (units x width) while fn runs on a team
 * with scratch_per_thread floats each; *n_threads becomes the team size for the weight gradients that follow. */
int fnn_rnn_backward_run(const fnn_rnn_dims *d, const float *recurrent, const float **rt, int *n_threads,
                         int64_t scratch_per_thread, fnn_rnn_slice_fn fn, void *ctx);

/* dst (rows x w) = rows b0 .. b0 + rows of src (batch x w), or zeros when src is NULL. */
void fnn_rnn_rows_or_zeros(const float *src, int64_t b0, int64_t rows, int64_t w, float *dst);

/* dh += the gradient of row b's output at step s in dseq (nothing when dseq is NULL). */
void fnn_rnn_add_dseq(const fnn_rnn_dims *d, const float *dseq, int64_t b, int64_t s, float *dh);

/* xt = x in time-major order, then gates = xt @ kernel + bias over all steps x batch rows at once (one GEMM). */
int fnn_rnn_project(const fnn_rnn_dims *d, const float *x, float *xt, const float *kernel, const float *bias,
                    float *gates, int n_threads);

/* gates[t, b0 .. b1) = xt[t, b0 .. b1) @ kernel + bias on one thread, when d->step_projection is set: the same
 * bits as those rows of the whole-sequence projection. */
void fnn_rnn_project_step(const fnn_rnn_dims *d, int64_t t, int64_t b0, int64_t b1);

/* gates (rows x width) = x[b0 .. b0 + rows, t] @ kernel + bias on one thread, read from the batch-major x:
 * the same bits as those rows of fnn_rnn_project (the inference kernels' per-step projection). */
void fnn_rnn_project_from_x(const fnn_rnn_dims *d, const float *x, const float *kernel, const float *bias,
                            int64_t t, int64_t b0, int64_t rows, float *gates);

/* Fills the entry state of the first time step read from h0 (NULL: zeros). */
void fnn_rnn_initial_state(const fnn_rnn_dims *d, const float *h0, float *entering, int64_t b0, int64_t b1);

/* dst (cols x rows) = src^T for a rows x cols src. */
void fnn_rnn_transpose(int64_t rows, int64_t cols, const float *src, float *dst);

/* The merged weight gradients after the time loop, over all steps x batch rows at once:
 * dkernel (+)= xt^T dzx, drecurrent (+)= h_prev^T dzr, dbias_in (+)= colsum dzx, dbias_rec (+)= colsum dzr
 * (any may be NULL), and dx = dzx @ kernel^T, computed time-major into dxt then reordered (both NULL to skip). */
int fnn_rnn_weight_grads(const fnn_rnn_dims *d, const float *xt, const float *kernel, const float *h_prev,
                         const float *dzx, const float *dzr, float *dxt, float *dx, float *dkernel,
                         float *drecurrent, float *dbias_in, float *dbias_rec, int accumulate, int n_threads);

#endif
