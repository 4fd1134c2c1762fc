/* fnn_conv2d_forward_f32: NHWC convolution forward by im2col + GEMM, chunk by chunk inside one call.
 *
 * The output pixels (rows r = (n * oh + oy) * ow + ox, as in im2col.c) are cut into chunks whose column
 * matrix fits in L2 next to the kernel, so the columns im2col writes are still there when the GEMM reads them.
 * Each thread takes whole chunks (im2col then a one-thread GEMM with the bias and relu / leaky relu fused),
 * so a layer is one parallel region with no barrier inside. The caller provides the workspace: n_cols blocks of
 * chunk x (kh * kw * c) floats, one per thread (at most n_cols threads run). Every output element is the GEMM's sequential
 * FMA chain over (ky, kx, ch), whatever chunk it falls in: the same bits for any thread count.
 */
#include "fnn.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* Below this, one thread: cnn32's first layer at batch 1 (1.8 MFLOP, 3 -> 32 channels) ran 1.5x faster on two
 * (12 vs 19 us). */
#define PARALLEL_MIN_FLOPS 1e6

int fnn_conv2d_forward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh,
                           int64_t sw, int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t oh, int64_t ow,
                           int64_t filters, const float *x, const float *kernel, const float *bias, int act,
                           float act_alpha, float *y, float *cols, int64_t chunk, int n_cols, int n_threads)
{
    int64_t k = kh * kw * c, rows = batch * oh * ow;
    if (batch < 0 || c < 1 || kh < 1 || kw < 1 || oh < 1 || ow < 1 || filters < 1 || chunk < 1 || n_cols < 1
        || act < FNN_ACT_LINEAR || act > FNN_ACT_GELU)
        return FNN_EBADARG;
    if (rows == 0)
        return FNN_OK;
    if (!x || !kernel || !y || !cols)
        return FNN_EBADARG;
    int64_t n_chunks = (rows + chunk - 1) / chunk;
    int nt = n_threads < 1 ? 1 : n_threads;
    if (nt > n_cols)
        nt = n_cols;
    if (nt > n_chunks)
        nt = (int)n_chunks;
    if (2.0 * rows * k * filters < PARALLEL_MIN_FLOPS)
        nt = 1;
    int status = FNN_OK;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int mine = FNN_OK, t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        float *ws = cols + t * chunk * k;
        /* Chunks are independent and give the same bytes on any thread: take them as threads come free. */
#pragma omp for schedule(dynamic, 1)
        for (int64_t i = 0; i < n_chunks; i++) {
            int64_t r0 = i * chunk, size = rows - r0 < chunk ? rows - r0 : chunk;
            if (mine == FNN_OK)
                mine = fnn_im2col_f32(batch, h, w, c, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow, r0, size, x, ws, k, 1);
            if (mine == FNN_OK)
                mine = fnn_gemm_f32(size, filters, k, ws, k, 0, kernel, filters, 0, y + r0 * filters, filters, 0,
                                    bias, act, act_alpha, 1);
        }
        if (mine != FNN_OK) {
#pragma omp atomic write
            status = mine;
        }
    }
    return status;
}
