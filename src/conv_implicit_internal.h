/* Private pieces of the implicit-GEMM convolution (src/conv_implicit*.c). */
#ifndef FNN_CONV_IMPLICIT_INTERNAL_H
#define FNN_CONV_IMPLICIT_INTERNAL_H

#include <stdint.h>

#include "gemm_internal.h"

/* One stretch of a chained product: kc steps of A(i, p) = a[i * rs_a + p * cs_a] against
 * B(p, j) = b[p * rs_b + j] (cs_a and rs_b are shared by all segments of a call). */
typedef struct {
    const float *a, *b;
    int64_t rs_a, kc;
} fnn_conv_seg;

/* The rows of a segmented tile a kernel takes, and the widest tile it takes (columns). */
#define FNN_CONV_SEG_MR 12
#define FNN_CONV_SEG_NR 64

/* C[i, j] = (ep->load_c ? C[i, j] : 0) + the segments' products in order, as one sequential FMA chain per
 * element held in registers across segments (the same bits as one direct micro-kernel call per segment with
 * load_c chaining them), then ep's bias and relu / leaky relu, then 0 where relu_y[i * ldc + j] <= 0 when
 * relu_y is not NULL. Then, when sums is not NULL, the stored C in double: sums_ld 0, sums[j] += the tile's
 * column sums (0 + row 0 + row 1 ...); else sums[i * sums_ld + j] += C[i, j] (fnn_conv_tile_sums in C).
 * mr <= FNN_CONV_SEG_MR, and mr <= 6 when nr > 32; nr <= FNN_CONV_SEG_NR. */
void fnn_conv_seg_tile_avx512(int64_t n_seg, const fnn_conv_seg *seg, int64_t cs_a, int64_t rs_b, float *c,
                              int64_t ldc, int64_t mr, int64_t nr, const fnn_tile_epilogue *ep,
                              const float *relu_y, double *sums, int64_t sums_ld);

#endif
