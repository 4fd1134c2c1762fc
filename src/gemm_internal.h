/* Private pieces of the GEMM (src/gemm*.c): micro-kernel contract, per-ISA kernel tables, packing. */
#ifndef FNN_GEMM_INTERNAL_H
#define FNN_GEMM_INTERNAL_H

#include <stdint.h>

/* What a micro-kernel does around its k loop. Accumulators start from C when load_c (beta = 1, or a later
 * k block), else from zero; after the loop, on the last k block only, bias (already offset to the tile's
 * first column, or NULL) is added and relu / leaky relu are applied in registers (other activations: none,
 * the driver runs fnn_act_block on the stored tile). */
typedef struct {
    int load_c;
    const float *bias;
    int act;
    float alpha;
} fnn_tile_epilogue;

/* Micro-kernel on an mr x nr tile of C (mr <= MR, nr <= NR of its table):
 *   C[i, j] = (load_c ? C[i, j] : 0) + sum_p A(i, p) * B(p, j),  p = 0 .. kc-1 in order,
 * with A(i, p) = a[i * rs_a + p * cs_a] and B(p, j) = b[p * rs_b + j]. Every element is one sequential
 * chain of fused multiply-adds, so the result does not depend on where the tile sits or which thread runs
 * it. "packed" kernels read full zero-padded panels (rows >= mr and columns >= nr are computed and dropped);
 * "direct" kernels read the caller's matrices and touch only rows < mr and columns < nr. */
typedef void (*fnn_gemm_ukernel)(int64_t kc, const float *a, int64_t rs_a, int64_t cs_a, const float *b,
                                 int64_t rs_b, float *c, int64_t ldc, int64_t mr, int64_t nr,
                                 const fnn_tile_epilogue *ep);

/* Dot-product kernel for C = A @ B^T with few rows: C[i, j] (+)= sum_p a[i*lda + p] * b[j*ldb + p] for an
 * mr x nr tile (mr <= dot_mr, nr <= dot_nr), then the epilogue. Summation order is fixed by kc alone. */
typedef void (*fnn_gemm_dotkernel)(int64_t kc, const float *a, int64_t lda, const float *b, int64_t ldb,
                                   float *c, int64_t ldc, int64_t mr, int64_t nr, const fnn_tile_epilogue *ep);

/* Transposing copy: dst[p*w + i] = src[i*ld + p] for i < width (<= w), zero for width <= i < w, p < kc. */
typedef void (*fnn_gemm_interleave)(int64_t kc, const float *src, int64_t ld, int64_t width, int w, float *dst);

typedef struct {
    int mr, nr;
    fnn_gemm_ukernel fn;
} fnn_gemm_direct;

typedef struct {
    int mr, nr;                 /* register tile of the packed kernel (rows x columns of C) */
    int kc, nb, mp;             /* blocking: k block, columns of the packed B block (L2), rows of A panel */
    fnn_gemm_ukernel packed;    /* rs_a = 1, cs_a = mr, rs_b = nr on packed panels */
    int n_direct;
    fnn_gemm_direct direct[4];  /* direct kernels by increasing width; the driver fits the width to n */
    fnn_gemm_direct gemv;       /* direct kernel for a single row (fn may be NULL) */
    int dot_mr, dot_nr;
    fnn_gemm_dotkernel dot;     /* may be NULL */
    fnn_gemm_interleave interleave; /* may be NULL: the portable one in gemm_pack.c */
} fnn_gemm_kernels;

/* fnn_gemm_sink_f32 hands over blocks of at most SINK_ROWS (the largest mr of any direct or GEMV kernel)
 * x SINK_COLS (a multiple of every nr) elements. */
#define FNN_GEMM_SINK_ROWS 24
#define FNN_GEMM_SINK_COLS 256

/* Receives a finished mr x nr block of op(A) @ B whose top-left element is (i, j); tile[r * ldt + c]. */
typedef void (*fnn_gemm_sink)(void *ctx, int64_t i, int64_t j, int64_t mr, int64_t nr, const float *tile,
                              int64_t ldt);

/* op(A) @ B (m x n, B not transposed, k >= 1) computed on the direct kernels, each block of tiles handed
 * to `sink` instead of being stored: every element has the same bits fnn_gemm_f32 would store (the same
 * sequential FMA chain over k). Blocks are disjoint and threads split the output, so the sink may update
 * memory owned by the block. sink_bytes estimates the sink's own memory traffic (for the thread decision). */
int fnn_gemm_sink_f32(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, int trans_a, const float *b,
                      int64_t ldb, fnn_gemm_sink sink, void *sink_ctx, double sink_bytes, int n_threads);

extern const fnn_gemm_kernels fnn_gemm_kernels_generic;
extern const fnn_gemm_kernels fnn_gemm_kernels_avx2;
extern const fnn_gemm_kernels fnn_gemm_kernels_avx512;

/* gemm_pack.c. Both write zero padding up to whole slivers, so packed kernels never see garbage.
 * Pack rows x kc of op(A) (op(A)(i, p) = a[i*lda + p], or a[p*lda + i] when trans) into slivers of mr rows:
 * dst[s*mr*kc + p*mr + i] = op(A)(s*mr + i, p). */
void fnn_pack_a(int64_t rows, int64_t kc, const float *a, int64_t lda, int trans, int mr, float *dst,
                fnn_gemm_interleave interleave);
/* Pack kc x cols of op(B) (op(B)(p, j) = b[p*ldb + j], or b[j*ldb + p] when trans) into slivers of nr
 * columns: dst[s*nr*kc + p*nr + j] = op(B)(p, s*nr + j). */
void fnn_pack_b(int64_t kc, int64_t cols, const float *b, int64_t ldb, int trans, int nr, float *dst,
                fnn_gemm_interleave interleave);

/* The kernel table of an ISA (FNN_ISA_*). */
const fnn_gemm_kernels *fnn_gemm_kernels_for(int isa);

/* The direct kernel for a C of n columns: the narrowest when n fits in it (a whole tile, nothing wasted), else
 * the one wasting the fewest columns on n (ties: the wider); narrow tiles on wide C would spend more on A
 * broadcasts than they save on lanes. */
fnn_gemm_direct fnn_gemm_fit_width(const fnn_gemm_kernels *kr, int64_t n);

#endif
