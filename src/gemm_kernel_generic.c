/* Portable GEMM micro-kernel: a 4 x 8 tile in GNU C vector types (4 floats, so SSE2 on any x86-64, NEON or
 * the like elsewhere; plain loops let the auto-vectoriser pick the wrong loop here). Serves both packed
 * panels and the caller's matrices (strides are arguments); edge tiles take a bounded scalar loop.
 * No dot kernel: C = A @ B^T with few rows packs B instead. */
#include "fnn.h"
#include "gemm_internal.h"

#include <string.h>

typedef float v4f __attribute__((vector_size(16)));

static inline v4f load4(const float *p)
{
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}

#define MR 4
#define NR 8

static inline float finish(float x, const fnn_tile_epilogue *ep, int64_t j)
{
    if (ep->bias)
        x += ep->bias[j];
    if (ep->act == FNN_ACT_RELU)
        x = x > 0.0f ? x : 0.0f;
    else if (ep->act == FNN_ACT_LEAKY_RELU)
        x = x > 0.0f ? x : ep->alpha * x;
    return x;
}

static void full_tile(int64_t kc, const float *a, int64_t rs_a, int64_t cs_a, const float *b, int64_t rs_b,
                      float *c, int64_t ldc, const fnn_tile_epilogue *ep)
{
    v4f acc[MR][2];
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < 2; v++)
            acc[i][v] = ep->load_c ? load4(c + i * ldc + 4 * v) : (v4f){0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t p = 0; p < kc; p++) {
        v4f b0 = load4(b), b1 = load4(b + 4);
        for (int i = 0; i < MR; i++) {
            float ai = a[i * rs_a];
            acc[i][0] += ai * b0;
            acc[i][1] += ai * b1;
        }
        a += cs_a;
        b += rs_b;
    }
    for (int i = 0; i < MR; i++) {
        float out[NR];
        memcpy(out, acc[i], sizeof out);
        for (int j = 0; j < NR; j++)
            c[i * ldc + j] = finish(out[j], ep, j);
    }
}

/* Edge tiles: only rows < mr and columns < nr are read or written. */
static void edge_tile(int64_t kc, const float *a, int64_t rs_a, int64_t cs_a, const float *b, int64_t rs_b,
                      float *c, int64_t ldc, int64_t mr, int64_t nr, const fnn_tile_epilogue *ep)
{
    float acc[MR][NR];
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < nr; j++)
            acc[i][j] = ep->load_c ? c[i * ldc + j] : 0.0f;
    for (int64_t p = 0; p < kc; p++) {
        for (int64_t i = 0; i < mr; i++) {
            float ai = a[i * rs_a];
            for (int64_t j = 0; j < nr; j++)
                acc[i][j] += ai * b[j];
        }
        a += cs_a;
        b += rs_b;
    }
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < nr; j++)
            c[i * ldc + j] = finish(acc[i][j], ep, j);
}

static void tile_4x8(int64_t kc, const float *a, int64_t rs_a, int64_t cs_a, const float *b, int64_t rs_b,
                     float *c, int64_t ldc, int64_t mr, int64_t nr, const fnn_tile_epilogue *ep)
{
    if (mr == MR && nr == NR)
        full_tile(kc, a, rs_a, cs_a, b, rs_b, c, ldc, ep);
    else
        edge_tile(kc, a, rs_a, cs_a, b, rs_b, c, ldc, mr, nr, ep);
}

const fnn_gemm_kernels fnn_gemm_kernels_generic = {
    .mr = MR, .nr = NR, .kc = 256, .nb = 256, .mp = 4096, .packed = tile_4x8,
    .n_direct = 1, .direct = {{MR, NR, tile_4x8}},
};
