/* AVX-512 GEMM micro-kernels (Zen 4: 512-bit ops run on two 256-bit FMA pipes, so one zmm FMA per cycle
 * with 4 cycles of latency; 24 independent accumulators keep both pipes busy).
 * packed: 12 x 32 tile (24 zmm accumulators), A broadcast from the packed sliver, B loaded as 2 zmm a step.
 * direct: 24 x 8 (ymm), 12 x 16, 12 x 32 and 6 x 64 tiles reading the caller's matrices, one instance
 *         per row count, the width fitted to n; 1 x 256 for a single row (GEMV: 16 chains streaming
 *         whole rows of B).
 * dot:    C = A @ B^T for few rows: 3 x 8 dot products along k, reduced by a shuffle tree at the end.
 * interleave: transposing copy for packing, 16 x 16 blocks transposed in registers. */
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma")

#include "fnn.h"
#include "gemm_internal.h"

#include <immintrin.h>

#include "avx512_tile.h"

/* The tile body; MR, NV (zmm per row, <= 4), PACKED and MASKED are compile-time constants in every caller.
 * Packed panels are zero-padded, so their loads need no mask and extra rows are computed but not stored. */
INLINE void tile(int64_t kc, const float *a, int64_t rs_a, int64_t cs_a, const float *b, int64_t rs_b,
                 float *c, int64_t ldc, int64_t mr, int64_t nr, const fnn_tile_epilogue *ep,
                 const int MR, const int NV, const int PACKED, const int MASKED)
{
    const fnn_tile_epilogue e = *ep; /* a local copy: C stores cannot alias it */
    __m512 acc[12][4];
    __mmask16 mk[4];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++)
        mk[v] = MASKED ? tail_mask(nr - 16 * v) : (__mmask16)0xFFFF;
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) {
        int live = !PACKED || i < mr;
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[i][v] = e.load_c && live ? _mm512_maskz_loadu_ps(mk[v], c + i * ldc + 16 * v)
                                           : _mm512_setzero_ps();
    }
    for (int64_t p = 0; p < kc; p++) {
        __m512 bv[4];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            bv[v] = MASKED && !PACKED ? _mm512_maskz_loadu_ps(mk[v], b + 16 * v) : _mm512_loadu_ps(b + 16 * v);
#pragma GCC unroll 12
        for (int i = 0; i < MR; i++) {
            __m512 av = _mm512_set1_ps(a[i * rs_a]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                acc[i][v] = _mm512_fmadd_ps(av, bv[v], acc[i][v]);
        }
        a += cs_a;
        b += rs_b;
    }
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) {
        if (PACKED && i >= mr)
            break;
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            _mm512_mask_storeu_ps(c + i * ldc + 16 * v, mk[v], epilogue_vec(acc[i][v], &e, 16 * v, mk[v]));
    }
}

static void packed_12x32(int64_t kc, const float *a, int64_t rs_a, int64_t cs_a, const float *b, int64_t rs_b,
                         float *c, int64_t ldc, int64_t mr, int64_t nr, const fnn_tile_epilogue *ep)
{
    (void)rs_a, (void)cs_a, (void)rs_b;
    if (nr == 32)
        tile(kc, a, 1, 12, b, 32, c, ldc, mr, nr, ep, 12, 2, 1, 0);
    else
        tile(kc, a, 1, 12, b, 32, c, ldc, mr, nr, ep, 12, 2, 1, 1);
}

/* Full-width tiles load B unmasked: a masked load that straddles two cache lines (rows of B not a multiple
 * of 16 floats long) measured ~3x slower on Zen 4. */
#define DIRECT_CASE(R, NV)                                                    \
    case R:                                                                   \
        if (nr == 16 * NV)                                                    \
            tile(kc, a, rs_a, cs_a, b, rs_b, c, ldc, mr, nr, ep, R, NV, 0, 0); \
        else                                                                  \
            tile(kc, a, rs_a, cs_a, b, rs_b, c, ldc, mr, nr, ep, R, NV, 0, 1); \
        break;

#define DIRECT_KERNEL(name, NV, CASES)                                                                     \
    static void name(int64_t kc, const float *a, int64_t rs_a, int64_t cs_a, const float *b, int64_t rs_b, \
                     float *c, int64_t ldc, int64_t mr, int64_t nr, const fnn_tile_epilogue *ep)           \
    {                                                                                                      \
        switch (mr) { CASES default: break; }                                                              \
    }

#define ROWS_1_6(NV) DIRECT_CASE(1, NV) DIRECT_CASE(2, NV) DIRECT_CASE(3, NV) DIRECT_CASE(4, NV) \
    DIRECT_CASE(5, NV) DIRECT_CASE(6, NV)
#define ROWS_7_12(NV) DIRECT_CASE(7, NV) DIRECT_CASE(8, NV) DIRECT_CASE(9, NV) DIRECT_CASE(10, NV) \
    DIRECT_CASE(11, NV) DIRECT_CASE(12, NV)

DIRECT_KERNEL(direct_12x16, 1, ROWS_1_6(1) ROWS_7_12(1))
DIRECT_KERNEL(direct_12x32, 2, ROWS_1_6(2) ROWS_7_12(2))
DIRECT_KERNEL(direct_6x64, 4, ROWS_1_6(4))

INLINE __m256 epilogue_vec8(__m256 x, const fnn_tile_epilogue *ep, __mmask8 m)
{
    if (ep->bias)
        x = _mm256_add_ps(x, _mm256_maskz_loadu_ps(m, ep->bias));
    if (ep->act == FNN_ACT_RELU) {
        x = _mm256_max_ps(x, _mm256_setzero_ps());
    } else if (ep->act == FNN_ACT_LEAKY_RELU) {
        __mmask8 pos = _mm256_cmp_ps_mask(x, _mm256_setzero_ps(), _CMP_GT_OQ);
        x = _mm256_mask_blend_ps(pos, _mm256_mul_ps(x, _mm256_set1_ps(ep->alpha)), x);
    }
    return x;
}

/* Narrow tiles (n <= 8): one ymm per row, MR (<= 24) rows. Two ymm FMAs issue per cycle, as many lanes as
 * one zmm, so an 8-wide tile wastes nothing where a 16-wide one would waste half. */
INLINE void tile8(int64_t kc, const float *a, int64_t rs_a, int64_t cs_a, const float *b, int64_t rs_b,
                  float *c, int64_t ldc, int64_t nr, const fnn_tile_epilogue *ep, const int MR)
{
    const fnn_tile_epilogue e = *ep;
    __m256 acc[24];
    __mmask8 mk = (__mmask8)tail_mask(nr);
#pragma GCC unroll 24
    for (int i = 0; i < MR; i++)
        acc[i] = e.load_c ? _mm256_maskz_loadu_ps(mk, c + i * ldc) : _mm256_setzero_ps();
    for (int64_t p = 0; p < kc; p++) {
        __m256 bv = _mm256_maskz_loadu_ps(mk, b);
#pragma GCC unroll 24
        for (int i = 0; i < MR; i++)
            acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(a[i * rs_a]), bv, acc[i]);
        a += cs_a;
        b += rs_b;
    }
#pragma GCC unroll 24
    for (int i = 0; i < MR; i++)
        _mm256_mask_storeu_ps(c + i * ldc, mk, epilogue_vec8(acc[i], &e, mk));
}

#define NARROW_CASE(R) \
    case R: tile8(kc, a, rs_a, cs_a, b, rs_b, c, ldc, nr, ep, R); break;

static void direct_24x8(int64_t kc, const float *a, int64_t rs_a, int64_t cs_a, const float *b, int64_t rs_b,
                        float *c, int64_t ldc, int64_t mr, int64_t nr, const fnn_tile_epilogue *ep)
{
    switch (mr) {
        NARROW_CASE(1) NARROW_CASE(2) NARROW_CASE(3) NARROW_CASE(4) NARROW_CASE(5) NARROW_CASE(6)
        NARROW_CASE(7) NARROW_CASE(8) NARROW_CASE(9) NARROW_CASE(10) NARROW_CASE(11) NARROW_CASE(12)
        NARROW_CASE(13) NARROW_CASE(14) NARROW_CASE(15) NARROW_CASE(16) NARROW_CASE(17) NARROW_CASE(18)
        NARROW_CASE(19) NARROW_CASE(20) NARROW_CASE(21) NARROW_CASE(22) NARROW_CASE(23) NARROW_CASE(24)
    default: break;
    }
}

/* One row of C: NV zmm accumulators across 16 NV columns, B streamed a row at a time. */
INLINE void gemv(int64_t kc, const float *a, int64_t cs_a, const float *b, int64_t rs_b, float *c, int64_t nr,
                 const fnn_tile_epilogue *ep, const int NV)
{
    const fnn_tile_epilogue e = *ep;
    __m512 acc[16];
    __mmask16 mk[16];
#pragma GCC unroll 16
    for (int v = 0; v < NV; v++) {
        mk[v] = tail_mask(nr - 16 * v);
        acc[v] = e.load_c ? _mm512_maskz_loadu_ps(mk[v], c + 16 * v) : _mm512_setzero_ps();
    }
    for (int64_t p = 0; p < kc; p++) {
        __m512 av = _mm512_set1_ps(*a);
#pragma GCC unroll 16
        for (int v = 0; v < NV; v++)
            acc[v] = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(mk[v], b + 16 * v), acc[v]);
        a += cs_a;
        b += rs_b;
    }
#pragma GCC unroll 16
    for (int v = 0; v < NV; v++)
        _mm512_mask_storeu_ps(c + 16 * v, mk[v], epilogue_vec(acc[v], &e, 16 * v, mk[v]));
}

/* Up to 16 chains over whole 1 KB rows: one sequential stream through B, as fast as L2 delivers it; fewer
 * chains when the row is shorter, so no lanes are spent on columns that do not exist. */
static void gemv_1x256(int64_t kc, const float *a, int64_t rs_a, int64_t cs_a, const float *b, int64_t rs_b,
                       float *c, int64_t ldc, int64_t mr, int64_t nr, const fnn_tile_epilogue *ep)
{
    (void)rs_a, (void)ldc, (void)mr;
    if (nr <= 16)
        gemv(kc, a, cs_a, b, rs_b, c, nr, ep, 1);
    else if (nr <= 32)
        gemv(kc, a, cs_a, b, rs_b, c, nr, ep, 2);
    else if (nr <= 64)
        gemv(kc, a, cs_a, b, rs_b, c, nr, ep, 4);
    else if (nr <= 128)
        gemv(kc, a, cs_a, b, rs_b, c, nr, ep, 8);
    else
        gemv(kc, a, cs_a, b, rs_b, c, nr, ep, 16);
}

/* Horizontal sums of 8 vectors, as lanes 0..7 of the result (a fixed tree, so a fixed rounding). */
INLINE __m256 reduce8(const __m512 x[8])
{
    __m512 h[4], q[2];
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) /* halves: 256-bit halves of x[2j] and x[2j+1] added */
        h[j] = _mm512_add_ps(_mm512_shuffle_f32x4(x[2 * j], x[2 * j + 1], 0x44),
                             _mm512_shuffle_f32x4(x[2 * j], x[2 * j + 1], 0xEE));
#pragma GCC unroll 2
    for (int j = 0; j < 2; j++) /* quarters: lane l of q[j] holds 4 partial sums of x[4j + l] */
        q[j] = _mm512_add_ps(_mm512_shuffle_f32x4(h[2 * j], h[2 * j + 1], 0x88),
                             _mm512_shuffle_f32x4(h[2 * j], h[2 * j + 1], 0xDD));
    __m512 r = _mm512_add_ps(_mm512_unpacklo_ps(q[0], q[1]), _mm512_unpackhi_ps(q[0], q[1]));
    r = _mm512_add_ps(r, _mm512_permute_ps(r, 0x4E)); /* lane l: sum of x[l], sum of x[4 + l], ... */
    return _mm512_castps512_ps256(
        _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0), r));
}

/* Dot products of MR rows of A with 8 rows of B (rows >= nr alias row 0 and are not stored). */
INLINE void dot_tile(int64_t kc, const float *a, int64_t lda, const float *b, int64_t ldb, float *c,
                     int64_t ldc, int64_t nr, const fnn_tile_epilogue *ep, const int MR)
{
    const fnn_tile_epilogue e = *ep; /* a local copy: C stores cannot alias it */
    const float *br[8];
    __m512 acc[3][8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++)
        br[j] = b + (j < nr ? j : 0) * ldb;
#pragma GCC unroll 3
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++)
            acc[i][j] = _mm512_setzero_ps();
    for (int64_t p = 0; p < kc; p += 16) {
        __mmask16 m = tail_mask(kc - p);
        __m512 av[3];
#pragma GCC unroll 3
        for (int i = 0; i < MR; i++)
            av[i] = _mm512_maskz_loadu_ps(m, a + i * lda + p);
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            __m512 bv = _mm512_maskz_loadu_ps(m, br[j] + p);
#pragma GCC unroll 3
            for (int i = 0; i < MR; i++)
                acc[i][j] = _mm512_fmadd_ps(av[i], bv, acc[i][j]);
        }
    }
    __mmask16 mk = tail_mask(nr);
#pragma GCC unroll 3
    for (int i = 0; i < MR; i++) {
        __m512 x = _mm512_zextps256_ps512(reduce8(acc[i]));
        if (e.load_c)
            x = _mm512_add_ps(_mm512_maskz_loadu_ps(mk, c + i * ldc), x);
        _mm512_mask_storeu_ps(c + i * ldc, mk, epilogue_vec(x, &e, 0, mk));
    }
}

static void dot_3x8(int64_t kc, const float *a, int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc,
                    int64_t mr, int64_t nr, const fnn_tile_epilogue *ep)
{
    switch (mr) {
    case 1: dot_tile(kc, a, lda, b, ldb, c, ldc, nr, ep, 1); break;
    case 2: dot_tile(kc, a, lda, b, ldb, c, ldc, nr, ep, 2); break;
    case 3: dot_tile(kc, a, lda, b, ldb, c, ldc, nr, ep, 3); break;
    default: break;
    }
}

/* In-register transpose of 16 rows of 16 floats: afterwards r[q] holds column q. */
INLINE void transpose16(__m512 r[16])
{
    __m512 t[16], u[16];
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) {
        t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) { /* u[4g + x], lane l: column 4l + x of rows 4g .. 4g+3 */
        __m512d t0 = _mm512_castps_pd(t[4 * g]), t1 = _mm512_castps_pd(t[4 * g + 1]);
        __m512d t2 = _mm512_castps_pd(t[4 * g + 2]), t3 = _mm512_castps_pd(t[4 * g + 3]);
        u[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
        u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
        u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
        u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
    }
#pragma GCC unroll 4
    for (int x = 0; x < 4; x++) { /* 4 x 4 transpose of 128-bit lanes across the four row groups */
        __m512 w0 = _mm512_shuffle_f32x4(u[x], u[4 + x], 0x44), w1 = _mm512_shuffle_f32x4(u[x], u[4 + x], 0xEE);
        __m512 w2 = _mm512_shuffle_f32x4(u[8 + x], u[12 + x], 0x44);
        __m512 w3 = _mm512_shuffle_f32x4(u[8 + x], u[12 + x], 0xEE);
        r[x] = _mm512_shuffle_f32x4(w0, w2, 0x88);
        r[4 + x] = _mm512_shuffle_f32x4(w0, w2, 0xDD);
        r[8 + x] = _mm512_shuffle_f32x4(w1, w3, 0x88);
        r[12 + x] = _mm512_shuffle_f32x4(w1, w3, 0xDD);
    }
}

static void interleave16(int64_t kc, const float *src, int64_t ld, int64_t width, int w, float *dst)
{
    for (int i0 = 0; i0 < w; i0 += 16) {
        int64_t rows = width - i0;
        __mmask16 store = tail_mask(w - i0);
        const float *s = src + i0 * ld;
        for (int64_t p = 0; p < kc; p += 16) {
            __mmask16 load = tail_mask(kc - p);
            __m512 r[16];
#pragma GCC unroll 16
            for (int q = 0; q < 16; q++)
                r[q] = q < rows ? _mm512_maskz_loadu_ps(load, s + q * ld + p) : _mm512_setzero_ps();
            transpose16(r);
            int64_t cols = kc - p < 16 ? kc - p : 16;
            for (int q = 0; q < cols; q++)
                _mm512_mask_storeu_ps(dst + (p + q) * w + i0, store, r[q]);
        }
    }
}

const fnn_gemm_kernels fnn_gemm_kernels_avx512 = {
    .mr = 12, .nr = 32, .kc = 384, .nb = 512, .mp = 4096, .packed = packed_12x32,
    .n_direct = 4,
    .direct = {{24, 8, direct_24x8}, {12, 16, direct_12x16}, {12, 32, direct_12x32}, {6, 64, direct_6x64}},
    .gemv = {1, 256, gemv_1x256},
    .dot_mr = 3, .dot_nr = 8, .dot = dot_3x8,
    .interleave = interleave16,
};
