/* A row times a tall matrix (m = 1, k >= FNN_GEMV_HALVES_MIN_K; src/gemm.c sends it here): the sum over k is
 * taken in two fixed halves, each one sequential FMA chain, added at the end, then bias and activation.
 *
 * Why: such a matrix (cnn32's 4096 x 256 Dense, 4 MB) streams from L3, and split by columns the two threads
 * each read half of every row, a pattern on which the hardware prefetchers run ahead into the other thread's
 * half: 129 GB/s for both cores against 155 GB/s when each streams its own contiguous half of the rows. The
 * halves are fixed by k alone, whatever the thread count (one thread computes both), so the bits are the same
 * on any team; they differ from a single k-long chain by the one rounding of the final add. */
#include "gemm_problem.h"

#include <stdlib.h>

/* C[0, :] (+)= A[0, p0 .. p0 + kc) @ B[p0 .. p0 + kc, :], column tiles on the GEMV kernel. */
static void half_chain(const problem *g, int64_t p0, int64_t kc, float *c, int load_c)
{
    const fnn_gemm_direct *dk = &g->dk;
    for (int64_t j = 0; j < g->n; j += dk->nr) {
        fnn_tile_epilogue ep = {load_c, NULL, FNN_ACT_LINEAR, 0.0f};
        dk->fn(kc, g->a + p0, 0, 1, b_at(g, p0, j), g->ldb, c + j, g->n, 1, min64(dk->nr, g->n - j), &ep);
    }
}

typedef struct {
    const problem *g;
    float *part; /* the second half's sums */
} halves_job;

/* Halves [h0, h1) of {0: into C, 1: into part}. */
static void halves(void *ctx, int t, int64_t h0, int64_t h1)
{
    (void)t;
    const halves_job *job = ctx;
    const problem *g = job->g;
    int64_t half = g->k / 2;
    if (h0 == 0)
        half_chain(g, 0, half, g->c, g->accumulate);
    if (h1 == 2)
        half_chain(g, half, g->k - half, job->part, 0);
}

int fnn_gemv_halves(const problem *g, int n_threads)
{
    halves_job job = {g, aligned_alloc(64, (size_t)round_up(g->n, 16) * sizeof(float))};
    if (!job.part)
        return FNN_ENOMEM;
    fnn_parallel_ranges(n_threads > 1 ? 2 : 1, 2, halves, &job);
    unsigned fpu = fnn_fpu_enter();
    for (int64_t j = 0; j < g->n; j++)
        g->c[j] += job.part[j];
    fnn_act_block(1, g->n, g->c, g->ldc, g->bias, g->act, g->alpha);
    fnn_fpu_leave(fpu);
    free(job.part);
    return FNN_OK;
}
