/* A row times a tall matrix (m = 1, k >= FNN_GEMV_HALVES_MIN_K; src/gemm.c sends it here): the sum over k is
 * taken in two fixed halves, each one sequential FMA chain, added at the end, then bias and activation.
 *
 * Why: such a matrix (cnn32's 4096 x 256 Dense, 4 MB) streams from L3, and split by columns the two threads
 * each read half of every row, a pattern on which the hardware prefetchers run ahead into the other thread's
 * half: 129 GB/s for both cores against 155 GB/s when each streams its own contiguous half of the rows. The
 * halves are fixed by k alone, whatever the thread count (one thread computes both), so the bits are the same
 * on any team; they differ from a single k-long chain by the one rounding of the final add. A training step at
 * batch 1 (src/dense_plan.c) computes the halves on two threads itself, each owning the same rows of the
 * kernel in its update, through fnn_gemv_half_f32 and fnn_gemv_halves_finish. */
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

void fnn_gemv_halves_finish(int64_t n, float *c, const float *part, const float *bias, int act, float alpha)
{
    unsigned fpu = fnn_fpu_enter();
    for (int64_t j = 0; j < n; j++)
        c[j] += part[j];
    fnn_act_block(1, n, c, n, bias, act, alpha);
    fnn_fpu_leave(fpu);
}

/* The second half's sums of up to this many columns go on the stack: at batch 1 an allocation is a visible
 * part of a 784 x 256 GEMV (6 us). */
#define STACK_PART 1024

int fnn_gemv_halves(const problem *g, int n_threads)
{
    float stack_part[STACK_PART] __attribute__((aligned(64)));
    halves_job job = {g, g->n <= STACK_PART ? stack_part
                                            : aligned_alloc(64, (size_t)round_up(g->n, 16) * sizeof(float))};
    if (!job.part)
        return FNN_ENOMEM;
    fnn_parallel_ranges(n_threads > 1 ? 2 : 1, 2, halves, &job);
    fnn_gemv_halves_finish(g->n, g->c, job.part, g->bias, g->act, g->alpha);
    if (job.part != stack_part)
        free(job.part);
    return FNN_OK;
}

int fnn_gemv_in_halves(int64_t m, int64_t k)
{
    return m == 1 && k >= FNN_GEMV_HALVES_MIN_K && fnn_gemm_kernels_for(fnn_isa_current())->gemv.fn != NULL;
}

int fnn_gemv_half_f32(int64_t n, int64_t k, const float *a, const float *b, int64_t ldb, int half, float *c)
{
    if (n < 1 || !fnn_gemv_in_halves(1, k) || !a || !b || !c || ldb < n || (half != 0 && half != 1))
        return FNN_EBADARG;
    const fnn_gemm_kernels *kr = fnn_gemm_kernels_for(fnn_isa_current());
    problem g = {1, n, k, a, k, 0, b, ldb, 0, c, n, 0, NULL, FNN_ACT_LINEAR, 0.0f, kr, kr->gemv, NULL, NULL};
    int64_t h = k / 2;
    unsigned fpu = fnn_fpu_enter();
    half_chain(&g, half ? h : 0, half ? k - h : h, c, 0);
    fnn_fpu_leave(fpu);
    return FNN_OK;
}
