/* Inline AVX-512 helpers of the GEMM micro-kernels (gemm_kernel_avx512.c) and the implicit convolution's
 * segmented kernel (conv_implicit_avx512.c), which must round and activate exactly as they do. Include it after
 * the file's `#pragma GCC target` for AVX-512. */
#ifndef FNN_AVX512_TILE_H
#define FNN_AVX512_TILE_H

#include <immintrin.h>
#include <stdint.h>

#include "gemm_internal.h"

#define INLINE static inline __attribute__((always_inline))

INLINE __mmask16 tail_mask(int64_t n)
{
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

/* The epilogue on one vector of a tile's row at column col: bias, then relu (NaN -> 0, as fnn_act_block) or
 * leaky relu. */
INLINE __m512 epilogue_vec(__m512 x, const fnn_tile_epilogue *ep, int64_t col, __mmask16 m)
{
    if (ep->bias)
        x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, ep->bias + col));
    if (ep->act == FNN_ACT_RELU) {
        x = _mm512_max_ps(x, _mm512_setzero_ps());
    } else if (ep->act == FNN_ACT_LEAKY_RELU) {
        __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ);
        x = _mm512_mask_blend_ps(pos, _mm512_mul_ps(x, _mm512_set1_ps(ep->alpha)), x);
    }
    return x;
}

#endif
