/* The kernel gradient of the implicit-GEMM convolution (conv_implicit.c has the forward and input gradient).
 *
 * Kernel gradient. dW[t][ci, co] = sum over output pixels of x[pixel shifted by t, ci] * dz[pixel, co]: per
 * output row a segment with A(i, p) = x[(pixel p) * c + ci0 + i] (rs_a = 1, cs_a = c) and B = dz's row, over
 * the pixels whose input is inside the image (the others contribute zero). Each dW tile chains over output
 * rows in order, so its sum has a fixed order; threads own whole tiles, and sweep the pixels block by block
 * (a block of rows stays in L2 while every tile of the thread reads it).
 */
#include "fnn.h"
#include "conv_implicit_internal.h"

#include <string.h>

#define DKERNEL_BLOCK_BYTES (256 << 10) /* input + dz rows swept at a time */

/* One dW tile (tap t, input channels [ci0, ci0 + mr), filters [co0, co0 + nr)) += its sum over output rows
 * [r0, r1), r1 - r0 <= CONV_MAX_SEGS: one segment per row whose input row is inside the image. */
static void dkernel_tile(const conv_geom *g, const fnn_gemm_direct *dk, int segmented, const float *x,
                         const float *dz, float *dw, int64_t t, int64_t ci0, int64_t mr, int64_t co0, int64_t nr,
                         int64_t r0, int64_t r1)
{
    int64_t ky = t / g->kw, kx = t % g->kw, n_seg = 0;
    int64_t ox0 = conv_max64(0, g->pl - kx * g->dw), ox1 = conv_min64(g->ow, g->w + g->pl - kx * g->dw);
    if (ox1 <= ox0)
        return;
    fnn_conv_seg seg[CONV_MAX_SEGS];
    for (int64_t r = r0; r < r1; r++) {
        int64_t n = r / g->oh, oy = r % g->oh, iy = oy - g->pt + ky * g->dh;
        if (iy < 0 || iy >= g->h)
            continue;
        seg[n_seg].a = x + ((n * g->h + iy) * g->w + ox0 - g->pl + kx * g->dw) * g->c + ci0;
        seg[n_seg].b = dz + (r * g->ow + ox0) * g->f + co0;
        seg[n_seg].rs_a = 1;
        seg[n_seg++].kc = ox1 - ox0;
    }
    fnn_tile_epilogue ep = {1, NULL, FNN_ACT_LINEAR, 0.0f};
    conv_tile_chain(segmented, dk, n_seg, seg, g->c, g->f, dw + (t * g->c + ci0) * g->f + co0, g->f, mr, nr, &ep,
                    NULL, NULL, 0);
}

typedef struct {
    const conv_geom *g;
    const fnn_gemm_direct *dk;
    int segmented;
    const float *x, *dz;
    float *dkernel;
    int64_t ci_tiles, co_tiles, rows, block;
    int accumulate;
} dkernel_job;

/* Tiles [first, end) of one thread: zeroed unless accumulating, then swept over the rows block by block.
 * Tile i is (tap, input-channel tile of balanced height, filter tile). */
static void dkernel_tiles(void *ctx, int t, int64_t first, int64_t end)
{
    (void)t;
    const dkernel_job *j = ctx;
    const conv_geom *g = j->g;
    int64_t c = g->c, f = g->f, ct = j->ci_tiles, ft = j->co_tiles, nr_max = j->dk->nr;
#define TILE_COORDS(i)                                                                                  \
    int64_t tap = (i) / (ct * ft), cs = (i) / ft % ct, ci0 = c * cs / ct, co0 = (i) % ft * nr_max,      \
            mr = c * (cs + 1) / ct - ci0, nr = conv_min64(nr_max, f - co0)
    if (!j->accumulate)
        for (int64_t i = first; i < end; i++) {
            TILE_COORDS(i);
            for (int64_t q = 0; q < mr; q++)
                memset(j->dkernel + (tap * c + ci0 + q) * f + co0, 0, (size_t)nr * sizeof(float));
        }
    for (int64_t r0 = 0; r0 < j->rows; r0 += j->block)
        for (int64_t i = first; i < end; i++) {
            TILE_COORDS(i);
            dkernel_tile(g, j->dk, j->segmented, j->x, j->dz, j->dkernel, tap, ci0, mr, co0, nr, r0,
                         conv_min64(j->rows, r0 + j->block));
        }
#undef TILE_COORDS
}

int fnn_conv2d_implicit_backward_kernel_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t kh,
                                            int64_t kw, int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t oh,
                                            int64_t ow, int64_t filters, const float *x, const float *dz,
                                            float *dkernel, int accumulate, int n_threads)
{
    if (conv_geom_bad(batch, h, w, c, kh, kw, pt, pl, dh, dw, oh, ow, filters))
        return FNN_EBADARG;
    if (!dkernel || (batch > 0 && (!x || !dz)))
        return FNN_EBADARG;
    conv_geom g = {batch, h, w, c, kh, kw, pt, pl, dh, dw, oh, ow, filters};
    int isa = fnn_isa_current();
    fnn_gemm_direct dk = fnn_gemm_fit_width(fnn_gemm_kernels_for(isa), filters);
    int segmented = conv_segmented_for(isa, &dk);
    int64_t ci_tiles = (c + dk.mr - 1) / dk.mr, co_tiles = (filters + dk.nr - 1) / dk.nr, rows = batch * oh;
    int nt = conv_threads_for(2.0 * rows * ow * kh * kw * c * filters, n_threads, kh * kw * ci_tiles * co_tiles);
    /* One more, lower, row of input-channel tiles when that shares the tiles out evenly (27 tiles on two
     * threads leave one idle for a 14th of the time; 36 do not). Tile shapes do not change any bit. */
    if (nt > 1 && (kh * kw * ci_tiles * co_tiles) % nt && (kh * kw * (ci_tiles + 1) * co_tiles) % nt == 0
        && ci_tiles < c)
        ci_tiles++;
    int64_t block = conv_max64(1, DKERNEL_BLOCK_BYTES / (int64_t)sizeof(float) / (w * c + ow * filters));
    block = conv_min64(block, CONV_MAX_SEGS);
    dkernel_job job = {&g, &dk, segmented, x, dz, dkernel, ci_tiles, co_tiles, rows, block, accumulate};
    fnn_parallel_ranges(nt, kh * kw * ci_tiles * co_tiles, dkernel_tiles, &job);
    return FNN_OK;
}
