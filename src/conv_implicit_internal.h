/* Private pieces of the implicit-GEMM convolution (src/conv_implicit*.c). */
#ifndef FNN_CONV_IMPLICIT_INTERNAL_H
#define FNN_CONV_IMPLICIT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "fnn.h"
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
 * column sums (0 + row 0 + row 1 ...); else sums[i * sums_ld + j] += C[i, j] (tile_sums in conv_implicit.c).
 * mr <= FNN_CONV_SEG_MR, and mr <= 6 when nr > 32; nr <= FNN_CONV_SEG_NR. */
void fnn_conv_seg_tile_avx512(int64_t n_seg, const fnn_conv_seg *seg, int64_t cs_a, int64_t rs_b, float *c,
                              int64_t ldc, int64_t mr, int64_t nr, const fnn_tile_epilogue *ep,
                              const float *relu_y, double *sums, int64_t sums_ld);

#define CONV_MAX_SEGS 64          /* segments handed to a tile call at a time */
#define CONV_BACKWARD_CHUNK_BYTES (12 << 20) /* x, dz and dx of the images a backward chunk takes */
#define CONV_PARALLEL_MIN_FLOPS 2e6 /* below this, one thread */

/* The geometry of a stride-1 convolution (conv_implicit.c's comment): x batch x h x w x c, output grid
 * oh x ow of f channels, kernel kh x kw, top/left pads pt, pl, dilation dh, dw. */
typedef struct {
    int64_t batch, h, w, c, kh, kw, pt, pl, dh, dw, oh, ow, f; /* f: output channels */
} conv_geom;

static inline int64_t conv_min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t conv_max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Whether the segmented kernel takes tiles of this direct kernel's shape on this ISA. */
static inline int conv_segmented_for(int isa, const fnn_gemm_direct *dk)
{
    return isa == FNN_ISA_AVX512 && dk->nr >= 16 && dk->nr <= FNN_CONV_SEG_NR && dk->mr <= FNN_CONV_SEG_MR
           && (dk->nr <= 32 || dk->mr <= 6);
}

static inline int conv_geom_bad(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw,
                                int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t oh, int64_t ow,
                                int64_t filters)
{
    return batch < 0 || h < 1 || w < 1 || c < 1 || kh < 1 || kw < 1 || pt < 0 || pl < 0 || dh < 1 || dw < 1
           || oh < 1 || ow < 1 || filters < 1;
}

/* Threads for `flops` of work in `units` independent parts. */
static inline int conv_threads_for(double flops, int n_threads, int64_t units)
{
    int nt = n_threads < 1 ? 1 : n_threads;
    if (flops < CONV_PARALLEL_MIN_FLOPS)
        nt = 1;
    return units < nt ? (int)(units > 0 ? units : 1) : nt;
}

/* One tile, C (+)= the chain of n_seg segments, then ep's bias and activation: on the segmented kernel in
 * batches of CONV_MAX_SEGS, or one direct-kernel call per segment; the same FMA chain either way. The
 * segmented kernel also applies relu_y's mask and adds the sums (after direct-kernel calls conv_implicit.c's
 * finish_tile does both). */
static inline void conv_tile_chain(int segmented, const fnn_gemm_direct *dk, int64_t n_seg,
                                   const fnn_conv_seg *seg, int64_t cs_a, int64_t rs_b, float *c, int64_t ldc,
                                   int64_t mr, int64_t nr, const fnn_tile_epilogue *ep, const float *relu_y,
                                   double *sums, int64_t sums_ld)
{
    int64_t step = segmented ? CONV_MAX_SEGS : 1;
    for (int64_t s = 0; s < n_seg; s += step) {
        int64_t count = conv_min64(step, n_seg - s), last = s + count == n_seg;
        fnn_tile_epilogue e = {s > 0 || ep->load_c, last ? ep->bias : NULL, last ? ep->act : FNN_ACT_LINEAR,
                               ep->alpha};
        if (segmented)
            fnn_conv_seg_tile_avx512(count, seg + s, cs_a, rs_b, c, ldc, mr, nr, &e, last ? relu_y : NULL,
                                     last ? sums : NULL, sums_ld);
        else
            dk->fn(seg[s].kc, seg[s].a, seg[s].rs_a, cs_a, seg[s].b, rs_b, c, ldc, mr, nr, &e);
    }
}

/* Winograd F(2x2, 3x3) (conv_winograd_avx512.c): a 3x3 stride-1 undilated convolution on an even output grid,
 * c and f multiples of 16, on AVX-512, may make each 2x2 block of outputs from its 4x4 input patch with 16
 * products per channel pair instead of 36. Not the direct chain's bits: the rounding differs (relative errors
 * of about 1e-6), the same bits for any n_threads. dk: the direct kernel of g's width (its products run on the
 * segmented kernel). */
static inline int conv_winograd_fits(int isa, const fnn_gemm_direct *dk, const conv_geom *g)
{
    return conv_segmented_for(isa, dk) && g->kh == 3 && g->kw == 3 && g->dh == 1 && g->dw == 1 && g->oh % 2 == 0
           && g->ow % 2 == 0 && g->c % 16 == 0 && g->f % 16 == 0;
}

#define CONV_WINOGRAD_TILES 32 /* 2x2 output tiles a block of rows aims at */
#define CONV_WINOGRAD_CHUNK 16 /* tiles transformed and multiplied at a time: their V and M stay in L1/L2 */

typedef struct {
    conv_geom g;
    const float *x, *u, *bias; /* u: the transformed kernel, 16 positions x c x f (fnn_conv_winograd_kernel) */
    const float *zeros;        /* c zeros: the input pixels in the padding */
    int act;                   /* applied in registers when relu or leaky relu, else on the finished rows */
    float alpha;
    const float *relu_y;       /* or NULL: the output is zeroed where relu_y (the output's layout) <= 0 */
    double *row_sums;          /* or NULL: per output row, f sums (in double, pixel by pixel) of the output */
    fnn_gemm_direct dk;        /* the tile shape of the 16 products */
} conv_winograd;

/* u (16 x c x f) = G g G^T of the (c_in, c_out) pairs [16 lo, 16 hi) of kernel (3 x 3 x c x f; f a multiple of
 * 16, pairs in c_in-major order). */
void fnn_conv_winograd_kernel_avx512(int64_t c, int64_t f, const float *kernel, float *u, int64_t lo, int64_t hi);
/* Floats of work a thread needs. */
int64_t fnn_conv_winograd_work(const conv_geom *g);
/* Output rows [r0, r1) (even; r = n * oh + oy) into dst (row r at dst + (r - r0) * ow * f). */
void fnn_conv_winograd_rows_avx512(const conv_winograd *w, int64_t r0, int64_t r1, float *dst, float *work);

#endif
