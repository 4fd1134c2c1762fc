/* Element-wise and row kernels, serial, compiled once per instruction set (ew_generic.c, ew_avx2.c,
 * ew_avx512.c, all from ew_impl.h) and picked at run time. act.c and loss.c check arguments, split
 * the work over threads with ew_parallel and call these on their parts. Not part of the public C API. */
#ifndef FNN_EW_H
#define FNN_EW_H

#include <stdint.h>

#include "fnn.h"

struct fnn_ew {
    /* y = act(x + bias) on n elements (bias may be NULL; y may alias x). */
    void (*act_forward)(int64_t n, const float *x, const float *bias, float *y, int act, float alpha);
    /* dx = dy * act'(.); the caller has checked that x or y, as the activation needs, is not NULL. */
    void (*act_backward)(int64_t n, const float *x, const float *y, const float *dy, float *dx, int act,
                         float alpha);
    void (*softmax_forward)(int64_t c, const float *x, float *y);                   /* one row */
    void (*softmax_backward)(int64_t c, const float *y, const float *dy, float *dx); /* one row */
    /* acc[j] += sum_i x[i * ldx + j] over a rows x cols block, in double, row after row. */
    void (*colsum)(int64_t rows, int64_t cols, const float *x, int64_t ldx, double *acc);
    /* Elements [start, start + n) of a dropout array (x, y, mask point at element start). */
    void (*dropout_forward)(int64_t start, int64_t n, const float *x, float *y, uint8_t *mask, uint64_t key,
                            uint64_t threshold, float scale);
    void (*dropout_backward)(int64_t n, const float *dy, const uint8_t *mask, float *dx, float scale);
    /* One sample's loss (unweighted, double); when grad is not NULL it receives d(loss)/d(input) * gscale. */
    double (*xent_sparse)(int64_t c, const float *z, int64_t label, float gscale, float *grad);
    double (*xent_dense)(int64_t c, const float *z, const float *t, float gscale, float *grad);
    double (*mse)(int64_t c, const float *p, const float *t, float gscale, float *grad);
    double (*bce)(int64_t c, const float *z, const float *t, float gscale, float *grad);
};

extern const struct fnn_ew fnn_ew_generic, fnn_ew_avx2, fnn_ew_avx512;

static inline const struct fnn_ew *fnn_ew_current(void)
{
    switch (fnn_isa_current()) {
    case FNN_ISA_AVX512: return &fnn_ew_avx512;
    case FNN_ISA_AVX2: return &fnn_ew_avx2;
    default: return &fnn_ew_generic;
    }
}

/* Below these many elements a kernel runs on the calling thread: waking the pool costs a few microseconds. */
#define FNN_EW_PAR_MIN_CHEAP 65536     /* a few flops per element: memory bound */
#define FNN_EW_PAR_MIN_TRANSCEND 16384 /* exp, tanh, erf per element */

static inline int fnn_ew_threads(int n_threads, int64_t work, int64_t min_work)
{
    return (n_threads > 1 && work >= min_work) ? n_threads : 1;
}

/* Start of part b of [0, n) cut into parts equal parts, on a multiple of 64 elements. */
static inline int64_t fnn_ew_split(int64_t n, int64_t b, int64_t parts)
{
    if (b >= parts)
        return n;
    int64_t s = (int64_t)((double)n * (double)b / (double)parts);
    return s - s % 64;
}

/* fn(ctx, b) for b in [0, nb): on the calling thread when nt <= 1, else on nt OpenMP threads (static
 * schedule). Every part must write only its own outputs, so results never depend on nt. */
static inline void fnn_ew_parallel(int nt, int64_t nb, void (*fn)(void *ctx, int64_t b), void *ctx)
{
    if (nt <= 1 || nb <= 1) {
        unsigned saved = fnn_fpu_enter();
        for (int64_t b = 0; b < nb; b++)
            fn(ctx, b);
        fnn_fpu_leave(saved);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        unsigned saved = fnn_fpu_enter();
#pragma omp for schedule(static)
        for (int64_t b = 0; b < nb; b++)
            fn(ctx, b);
        fnn_fpu_leave(saved);
    }
}

#endif
