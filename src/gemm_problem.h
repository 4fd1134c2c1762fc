/* One GEMM call as the driver sees it (src/gemm.c), and the index and epilogue helpers its paths share
 * (src/gemm.c: dot path; src/gemm_direct.c: direct path; src/gemm_packed.c: packed path). Private to the GEMM. */
#ifndef FNN_GEMM_PROBLEM_H
#define FNN_GEMM_PROBLEM_H

#include <stddef.h>
#include <stdint.h>

#include "fnn.h"
#include "act_internal.h"
#include "gemm_internal.h"

typedef struct {
    int64_t m, n, k;
    const float *a;
    int64_t lda;
    int trans_a;
    const float *b;
    int64_t ldb;
    int trans_b;
    float *c;
    int64_t ldc;
    int accumulate;
    const float *bias;
    int act;
    float alpha;
    const fnn_gemm_kernels *kr;
    fnn_gemm_direct dk; /* the direct kernel fitted to this shape */
    fnn_gemm_sink sink; /* fnn_gemm_sink_f32: where finished tiles go instead of C */
    void *sink_ctx;
} problem;

static inline int64_t min64(int64_t x, int64_t y) { return x < y ? x : y; }
static inline int64_t round_up(int64_t x, int64_t unit) { return (x + unit - 1) / unit * unit; }

static inline const float *a_at(const problem *g, int64_t i, int64_t p)
{
    return g->trans_a ? g->a + p * g->lda + i : g->a + i * g->lda + p;
}

static inline const float *b_at(const problem *g, int64_t p, int64_t j)
{
    return g->trans_b ? g->b + j * g->ldb + p : g->b + p * g->ldb + j;
}

/* The epilogue of a tile at column j for the k block [pc, pc + kc). */
static inline fnn_tile_epilogue epilogue_for(const problem *g, int64_t j, int first, int last)
{
    fnn_tile_epilogue ep = {first ? g->accumulate : 1, NULL, FNN_ACT_LINEAR, g->alpha};
    if (last) {
        ep.bias = g->bias ? g->bias + j : NULL;
        ep.act = g->act;
    }
    return ep;
}

/* Activations the kernels do not apply in registers run here, on the tile just stored. */
static inline void finish_tile(const problem *g, int64_t i, int64_t j, int64_t mr, int64_t nr, int last)
{
    if (last && g->act != FNN_ACT_LINEAR && g->act != FNN_ACT_RELU && g->act != FNN_ACT_LEAKY_RELU)
        fnn_act_block(mr, nr, g->c + i * g->ldc + j, g->ldc, NULL, g->act, g->alpha);
}

/* The range [lo, hi) of part t of `parts` balanced parts of `total` elements taken in units of `unit`. */
static inline void split(int64_t total, int64_t unit, int parts, int t, int64_t *lo, int64_t *hi)
{
    int64_t units = (total + unit - 1) / unit;
    *lo = min64(units * t / parts * unit, total);
    *hi = min64(units * (t + 1) / parts * unit, total);
}

/* The direct path's k blocks and B^T column blocks (src/gemm_direct.c). */
#define FNN_GEMM_DIRECT_KC 512
#define FNN_GEMM_DIRECT_NB 256

/* A thread's share of C in the direct and dot paths: rows [m0, m1), columns [n0, n1), and its buffer
 * for packing B^T. */
typedef struct {
    int64_t m0, m1, n0, n1;
    float *pb;
} fnn_gemm_chunk;

/* The direct path over one chunk: into C, or tile blocks handed to g->sink. */
void fnn_gemm_direct_chunk(const problem *g, const fnn_gemm_chunk *ch);
void fnn_gemm_sink_chunk(const problem *g, const fnn_gemm_chunk *ch);

/* GEMVs (m = 1, neither operand transposed) with at least this many rows of B take src/gemm_gemv_halves.c. */
#define FNN_GEMV_HALVES_MIN_K 512

/* C = act(A @ B [+ C] [+ bias]) for such a GEMV, k summed in two fixed halves (g->dk is the GEMV kernel). */
int fnn_gemv_halves(const problem *g, int n_threads);

/* The packed path, run by thread t of a team of nt (pa: its A panel buffer; pb: the shared B block). */
void fnn_gemm_packed_team(const problem *g, float *pa, float *pb, int t, int nt);

#endif
