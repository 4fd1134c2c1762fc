/* AVX-512 segmented micro-kernel of the implicit-GEMM convolution (conv_implicit_internal.h): an mr x nr tile
 * whose accumulators stay in registers across all the segments of a chain (the taps of a convolution window,
 * or the output rows a kernel gradient sums over), instead of going through C between direct-kernel calls.
 * The FMA order per element, the bias add and the relu / leaky relu are those of gemm_kernel_avx512.c's
 * direct kernels, so results are bitwise theirs. */
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma")

#include "fnn.h"
#include "conv_implicit_internal.h"

#include <immintrin.h>

#include "avx512_tile.h"

/* MR, NV (zmm per row), MASKED and EXTRA (relu_y or sums given) are compile-time constants in every caller: the
 * plain tiles keep code of their own, as lean as without those two. */
INLINE void seg_tile(int64_t n_seg, const fnn_conv_seg *seg, int64_t cs_a, int64_t rs_b, float *c, int64_t ldc,
                     int64_t nr, const fnn_tile_epilogue *ep, const float *relu_y, double *sums,
                     int64_t sums_ld, const int MR, const int NV, const int MASKED, const int EXTRA)
{
    const fnn_tile_epilogue e = *ep;
    __m512 acc[12][4];
    __mmask16 mk[4];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++)
        mk[v] = MASKED ? tail_mask(nr - 16 * v) : (__mmask16)0xFFFF;
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[i][v] = e.load_c ? _mm512_maskz_loadu_ps(mk[v], c + i * ldc + 16 * v) : _mm512_setzero_ps();
    for (int64_t s = 0; s < n_seg; s++) {
        /* Row i of A is read at base[i / 3] + (i % 3) * rs bytes: four pointers and one index register
         * (x86 scales 1 and 2) address all twelve rows, where one register per row would spill. */
        const int64_t rs = seg[s].rs_a * (int64_t)sizeof(float), kc = seg[s].kc;
        const char *base[4];
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++)
            base[q] = (const char *)seg[s].a + 3 * q * rs;
        const float *b = seg[s].b;
        for (int64_t p = 0; p < kc; p++) {
            __m512 bv[4];
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                bv[v] = MASKED ? _mm512_maskz_loadu_ps(mk[v], b + 16 * v) : _mm512_loadu_ps(b + 16 * v);
#pragma GCC unroll 12
            for (int i = 0; i < MR; i++) {
                __m512 av = _mm512_set1_ps(*(const float *)(base[i / 3] + (i % 3) * rs));
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++)
                    acc[i][v] = _mm512_fmadd_ps(av, bv[v], acc[i][v]);
            }
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++)
                base[q] += cs_a * (int64_t)sizeof(float);
            b += rs_b;
        }
    }
    __m512d part[4][2]; /* sums_ld == 0: the tile's column sums in double, row after row */
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++)
        part[v][0] = part[v][1] = _mm512_setzero_pd();
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            __m512 out = epilogue_vec(acc[i][v], &e, 16 * v, mk[v]);
            if (EXTRA && relu_y) {
                __m512 r = _mm512_maskz_loadu_ps(mk[v], relu_y + i * ldc + 16 * v);
                out = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(r, _mm512_setzero_ps(), _CMP_GT_OQ), out);
            }
            _mm512_mask_storeu_ps(c + i * ldc + 16 * v, mk[v], out);
            if (EXTRA && sums) {
                __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(out));
                __m512d hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(out, 1));
                if (sums_ld == 0) {
                    part[v][0] = _mm512_add_pd(part[v][0], lo);
                    part[v][1] = _mm512_add_pd(part[v][1], hi);
                } else { /* each row its own sums */
                    double *d = sums + i * sums_ld + 16 * v;
                    __mmask8 m0 = (__mmask8)mk[v], m1 = (__mmask8)(mk[v] >> 8);
                    _mm512_mask_storeu_pd(d, m0, _mm512_add_pd(_mm512_maskz_loadu_pd(m0, d), lo));
                    _mm512_mask_storeu_pd(d + 8, m1, _mm512_add_pd(_mm512_maskz_loadu_pd(m1, d + 8), hi));
                }
            }
        }
    if (EXTRA && sums && sums_ld == 0)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            double *d = sums + 16 * v;
            __mmask8 m0 = (__mmask8)mk[v], m1 = (__mmask8)(mk[v] >> 8);
            _mm512_mask_storeu_pd(d, m0, _mm512_add_pd(_mm512_maskz_loadu_pd(m0, d), part[v][0]));
            _mm512_mask_storeu_pd(d + 8, m1, _mm512_add_pd(_mm512_maskz_loadu_pd(m1, d + 8), part[v][1]));
        }
}

#define SEG_CALL(R, NV, MASKED)                                                               \
    if (relu_y || sums)                                                                       \
        seg_tile(n_seg, seg, cs_a, rs_b, c, ldc, nr, ep, relu_y, sums, sums_ld, R, NV, MASKED, 1); \
    else                                                                                      \
        seg_tile(n_seg, seg, cs_a, rs_b, c, ldc, nr, ep, NULL, NULL, 0, R, NV, MASKED, 0);
#define SEG_CASE(R, NV)                                                            \
    case R:                                                                        \
        if (nr == 16 * NV) {                                                       \
            SEG_CALL(R, NV, 0)                                                     \
        } else {                                                                   \
            SEG_CALL(R, NV, 1)                                                     \
        }                                                                          \
        break;
#define ROWS_1_6(NV) SEG_CASE(1, NV) SEG_CASE(2, NV) SEG_CASE(3, NV) SEG_CASE(4, NV) SEG_CASE(5, NV) SEG_CASE(6, NV)
#define ROWS_7_12(NV) SEG_CASE(7, NV) SEG_CASE(8, NV) SEG_CASE(9, NV) SEG_CASE(10, NV) SEG_CASE(11, NV) \
    SEG_CASE(12, NV)

void fnn_conv_seg_tile_avx512(int64_t n_seg, const fnn_conv_seg *seg, int64_t cs_a, int64_t rs_b, float *c,
                              int64_t ldc, int64_t mr, int64_t nr, const fnn_tile_epilogue *ep,
                              const float *relu_y, double *sums, int64_t sums_ld)
{
    if (nr <= 16) {
        switch (mr) { ROWS_1_6(1) ROWS_7_12(1) default: break; }
    } else if (nr <= 32) {
        switch (mr) { ROWS_1_6(2) ROWS_7_12(2) default: break; }
    } else {
        switch (mr) { ROWS_1_6(4) default: break; }
    }
}
