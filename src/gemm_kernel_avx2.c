/* AVX2 + FMA GEMM micro-kernels (16 ymm registers).
 * packed: 6 x 16 tile (12 ymm accumulators, 2 B vectors, 1 broadcast).
 * direct: the same tile reading the caller's matrices, one instance per row count; 1 x 64 for one row.
 * dot:    C = A @ B^T for few rows: 2 x 6 dot products along k, reduced horizontally at the end.
 * interleave: transposing copy for packing, 8 x 8 blocks transposed in registers. */
#pragma GCC target("avx2,fma")

#include "fnn.h"
#include "gemm_internal.h"

#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))

/* Lanes < n set (n clamped to 0..8), for maskload/maskstore. */
INLINE __m256i tail_mask(int64_t n)
{
    int k = n >= 8 ? 8 : n <= 0 ? 0 : (int)n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

INLINE __m256 epilogue_vec(__m256 x, const fnn_tile_epilogue *ep, int64_t col, __m256i m)
{
    if (ep->bias)
        x = _mm256_add_ps(x, _mm256_maskload_ps(ep->bias + col, m));
    if (ep->act == FNN_ACT_RELU) {
        x = _mm256_max_ps(x, _mm256_setzero_ps()); /* NaN -> 0, as fnn_act_block */
    } else if (ep->act == FNN_ACT_LEAKY_RELU) {
        __m256 pos = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ);
        x = _mm256_blendv_ps(_mm256_mul_ps(x, _mm256_set1_ps(ep->alpha)), x, pos);
    }
    return x;
}

/* The tile body; MR, PACKED and MASKED are compile-time constants in every caller. Two ymm per row. */
INLINE void tile(int64_t kc, const float *a, int64_t rs_a, int64_t cs_a, const float *b, int64_t rs_b,
                 float *c, int64_t ldc, int64_t mr, int64_t nr, const fnn_tile_epilogue *ep,
                 const int MR, const int PACKED, const int MASKED)
{
    const fnn_tile_epilogue e = *ep; /* a local copy: C stores cannot alias it */
    __m256 acc[6][2];
    __m256i mk[2] = {tail_mask(nr), tail_mask(nr - 8)};
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        int live = !PACKED || i < mr;
#pragma GCC unroll 2
        for (int v = 0; v < 2; v++)
            acc[i][v] = e.load_c && live ? _mm256_maskload_ps(c + i * ldc + 8 * v, mk[v]) : _mm256_setzero_ps();
    }
    for (int64_t p = 0; p < kc; p++) {
        __m256 bv[2];
#pragma GCC unroll 2
        for (int v = 0; v < 2; v++)
            bv[v] = MASKED && !PACKED ? _mm256_maskload_ps(b + 8 * v, mk[v]) : _mm256_loadu_ps(b + 8 * v);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            __m256 av = _mm256_broadcast_ss(a + i * rs_a);
#pragma GCC unroll 2
            for (int v = 0; v < 2; v++)
                acc[i][v] = _mm256_fmadd_ps(av, bv[v], acc[i][v]);
        }
        a += cs_a;
        b += rs_b;
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        if (PACKED && i >= mr)
            break;
#pragma GCC unroll 2
        for (int v = 0; v < 2; v++) {
            __m256 x = epilogue_vec(acc[i][v], &e, 8 * v, mk[v]);
            if (MASKED)
                _mm256_maskstore_ps(c + i * ldc + 8 * v, mk[v], x);
            else
                _mm256_storeu_ps(c + i * ldc + 8 * v, x);
        }
    }
}

static void packed_6x16(int64_t kc, const float *a, int64_t rs_a, int64_t cs_a, const float *b, int64_t rs_b,
                        float *c, int64_t ldc, int64_t mr, int64_t nr, const fnn_tile_epilogue *ep)
{
    (void)rs_a, (void)cs_a, (void)rs_b;
    if (nr == 16)
        tile(kc, a, 1, 6, b, 16, c, ldc, mr, nr, ep, 6, 1, 0);
    else
        tile(kc, a, 1, 6, b, 16, c, ldc, mr, nr, ep, 6, 1, 1);
}

#define DIRECT_ROWS(R)                                                              \
    case R:                                                                         \
        if (nr == 16)                                                               \
            tile(kc, a, rs_a, cs_a, b, rs_b, c, ldc, mr, nr, ep, R, 0, 0);          \
        else                                                                        \
            tile(kc, a, rs_a, cs_a, b, rs_b, c, ldc, mr, nr, ep, R, 0, 1);          \
        break;

static void direct_6x16(int64_t kc, const float *a, int64_t rs_a, int64_t cs_a, const float *b, int64_t rs_b,
                        float *c, int64_t ldc, int64_t mr, int64_t nr, const fnn_tile_epilogue *ep)
{
    switch (mr) {
        DIRECT_ROWS(1)
        DIRECT_ROWS(2)
        DIRECT_ROWS(3)
        DIRECT_ROWS(4)
        DIRECT_ROWS(5)
        DIRECT_ROWS(6)
    default: break;
    }
}

/* One row of C: NV ymm accumulators across 8 NV columns, B streamed a row at a time. */
INLINE void gemv(int64_t kc, const float *a, int64_t cs_a, const float *b, int64_t rs_b, float *c, int64_t nr,
                 const fnn_tile_epilogue *ep, const int NV)
{
    const fnn_tile_epilogue e = *ep;
    __m256 acc[8];
    __m256i mk[8];
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) {
        mk[v] = tail_mask(nr - 8 * v);
        acc[v] = e.load_c ? _mm256_maskload_ps(c + 8 * v, mk[v]) : _mm256_setzero_ps();
    }
    for (int64_t p = 0; p < kc; p++) {
        __m256 av = _mm256_broadcast_ss(a);
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++)
            acc[v] = _mm256_fmadd_ps(av, _mm256_maskload_ps(b + 8 * v, mk[v]), acc[v]);
        a += cs_a;
        b += rs_b;
    }
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++)
        _mm256_maskstore_ps(c + 8 * v, mk[v], epilogue_vec(acc[v], &e, 8 * v, mk[v]));
}

/* Fewer chains when the row is shorter than 64, so no lanes go to columns that do not exist. */
static void gemv_1x64(int64_t kc, const float *a, int64_t rs_a, int64_t cs_a, const float *b, int64_t rs_b,
                      float *c, int64_t ldc, int64_t mr, int64_t nr, const fnn_tile_epilogue *ep)
{
    (void)rs_a, (void)ldc, (void)mr;
    if (nr <= 8)
        gemv(kc, a, cs_a, b, rs_b, c, nr, ep, 1);
    else if (nr <= 16)
        gemv(kc, a, cs_a, b, rs_b, c, nr, ep, 2);
    else if (nr <= 32)
        gemv(kc, a, cs_a, b, rs_b, c, nr, ep, 4);
    else
        gemv(kc, a, cs_a, b, rs_b, c, nr, ep, 8);
}

INLINE float hsum(__m256 x)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Dot products of MR rows of A with 6 rows of B (rows >= nr alias row 0 and are not stored). */
INLINE void dot_tile(int64_t kc, const float *a, int64_t lda, const float *b, int64_t ldb, float *c,
                     int64_t ldc, int64_t nr, const fnn_tile_epilogue *ep, const int MR)
{
    const fnn_tile_epilogue e = *ep; /* a local copy: C stores cannot alias it */
    const float *br[6];
    __m256 acc[2][6];
#pragma GCC unroll 6
    for (int j = 0; j < 6; j++)
        br[j] = b + (j < nr ? j : 0) * ldb;
#pragma GCC unroll 2
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 6
        for (int j = 0; j < 6; j++)
            acc[i][j] = _mm256_setzero_ps();
    for (int64_t p = 0; p < kc; p += 8) {
        __m256i m = tail_mask(kc - p);
        __m256 av[2];
#pragma GCC unroll 2
        for (int i = 0; i < MR; i++)
            av[i] = _mm256_maskload_ps(a + i * lda + p, m);
#pragma GCC unroll 6
        for (int j = 0; j < 6; j++) {
            __m256 bv = _mm256_maskload_ps(br[j] + p, m);
#pragma GCC unroll 2
            for (int i = 0; i < MR; i++)
                acc[i][j] = _mm256_fmadd_ps(av[i], bv, acc[i][j]);
        }
    }
    __m256i mk = tail_mask(nr);
#pragma GCC unroll 2
    for (int i = 0; i < MR; i++) {
        float sums[8] = {0};
#pragma GCC unroll 6
        for (int j = 0; j < 6; j++)
            sums[j] = hsum(acc[i][j]);
        __m256 x = _mm256_loadu_ps(sums);
        if (e.load_c)
            x = _mm256_add_ps(_mm256_maskload_ps(c + i * ldc, mk), x);
        _mm256_maskstore_ps(c + i * ldc, mk, epilogue_vec(x, &e, 0, mk));
    }
}

static void dot_2x6(int64_t kc, const float *a, int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc,
                    int64_t mr, int64_t nr, const fnn_tile_epilogue *ep)
{
    if (mr == 1)
        dot_tile(kc, a, lda, b, ldb, c, ldc, nr, ep, 1);
    else if (mr == 2)
        dot_tile(kc, a, lda, b, ldb, c, ldc, nr, ep, 2);
}

/* In-register transpose of 8 rows of 8 floats: afterwards r[q] holds column q. */
INLINE void transpose8(__m256 r[8])
{
    __m256 t[8], u[8];
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        t[2 * k] = _mm256_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm256_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
#pragma GCC unroll 2
    for (int g = 0; g < 2; g++) { /* u[4g + x], lane l: column 4l + x of rows 4g .. 4g+3 */
        u[4 * g] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        u[4 * g + 1] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
        u[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        u[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
    }
#pragma GCC unroll 4
    for (int x = 0; x < 4; x++) {
        r[x] = _mm256_permute2f128_ps(u[x], u[4 + x], 0x20);
        r[4 + x] = _mm256_permute2f128_ps(u[x], u[4 + x], 0x31);
    }
}

static void interleave8(int64_t kc, const float *src, int64_t ld, int64_t width, int w, float *dst)
{
    for (int i0 = 0; i0 < w; i0 += 8) {
        int64_t rows = width - i0;
        __m256i store = tail_mask(w - i0);
        const float *s = src + i0 * ld;
        for (int64_t p = 0; p < kc; p += 8) {
            __m256i load = tail_mask(kc - p);
            __m256 r[8];
#pragma GCC unroll 8
            for (int q = 0; q < 8; q++)
                r[q] = q < rows ? _mm256_maskload_ps(s + q * ld + p, load) : _mm256_setzero_ps();
            transpose8(r);
            int64_t cols = kc - p < 8 ? kc - p : 8;
            for (int q = 0; q < cols; q++)
                _mm256_maskstore_ps(dst + (p + q) * w + i0, store, r[q]);
        }
    }
}

const fnn_gemm_kernels fnn_gemm_kernels_avx2 = {
    .mr = 6, .nr = 16, .kc = 256, .nb = 512, .mp = 4096, .packed = packed_6x16,
    .n_direct = 1, .direct = {{6, 16, direct_6x16}},
    .gemv = {1, 64, gemv_1x64},
    .dot_mr = 2, .dot_nr = 6, .dot = dot_2x6,
    .interleave = interleave8,
};
