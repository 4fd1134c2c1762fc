/* What the recurrent kernels (src/rnn.c, src/lstm.c, src/gru.c) share; not part of the public C API.
 *
 * Layout (fnn.h): batch-major buffers indexed by input time t, row (b, t) of a (batch, steps, w) array at
 * (b * steps + t) * w. Step s reads time t = s, or steps - 1 - s with go_backwards; the state it produces is
 * the one entering the next time step read, t + dir, or the final state after the last step.
 * Threads split the batch: each runs the whole time loop on its own rows with serial GEMMs, so there is no
 * synchronisation inside the loop and every row's arithmetic is the same for any thread count.
 */
#ifndef FNN_RNN_INTERNAL_H
#define FNN_RNN_INTERNAL_H

#include <stdint.h>

#include "ew.h"

typedef struct {
    int64_t batch, steps, n_in, units;
    int64_t width; /* columns of the input projection: gates x units */
    int go_backwards;
} fnn_rnn_dims;

static inline int64_t fnn_rnn_time(const fnn_rnn_dims *d, int64_t s)
{
    return d->go_backwards ? d->steps - 1 - s : s;
}

/* Row (b, t) of a (batch, steps, w) buffer. */
static inline int64_t fnn_rnn_row(const fnn_rnn_dims *d, int64_t b, int64_t t, int64_t w)
{
    return (b * d->steps + t) * w;
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

/* Runs fn(ctx, b0, b1, thread) on a team sharing the batch rows out (flush-to-zero set on every thread);
 * scratch_per_thread floats of 64-byte aligned scratch are handed to each (NULL when 0). */
typedef void (*fnn_rnn_slice_fn)(void *ctx, int64_t b0, int64_t b1, float *scratch);
int fnn_rnn_run_slices(const fnn_rnn_dims *d, int n_threads, int64_t scratch_per_thread, fnn_rnn_slice_fn fn,
                       void *ctx);

/* gates = x @ kernel + bias over all batch x steps rows at once (one GEMM). */
int fnn_rnn_project(const fnn_rnn_dims *d, const float *x, const float *kernel, const float *bias, float *gates,
                    int n_threads);

/* Fills the entry state of the first time step read from h0 (NULL: zeros). */
void fnn_rnn_initial_state(const fnn_rnn_dims *d, const float *h0, float *entering, int64_t b0, int64_t b1);

/* dst (cols x rows) = src^T for a rows x cols src. */
void fnn_rnn_transpose(int64_t rows, int64_t cols, const float *src, float *dst);

/* The merged weight gradients after the time loop, over all batch x steps rows at once:
 * dkernel (+)= x^T dzx, drecurrent (+)= h_prev^T dzr, dbias_in (+)= colsum dzx, dbias_rec (+)= colsum dzr
 * (either bias may be NULL), dx = dzx @ kernel^T (NULL to skip). */
int fnn_rnn_weight_grads(const fnn_rnn_dims *d, const float *x, const float *kernel, const float *h_prev,
                         const float *dzx, const float *dzr, float *dx, float *dkernel, float *drecurrent,
                         float *dbias_in, float *dbias_rec, int accumulate, int n_threads);

#endif
