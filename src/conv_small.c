/* fnn_conv2d_small_forward_f32: direct NHWC convolution for few channels (stride 1, no dilation), the bias and
 * relu / leaky relu fused, and optionally the 2 x 2 stride-2 max pool that follows (with its argmax for
 * training), so inference never writes the full-resolution map and training never reads it back to pool.
 *
 * Each image is first copied, zero-padded, into a per-thread buffer: planar (one plane per input channel)
 * for the pixel tiles, NHWC for the filter tiles (see conv_small_impl.h); the tiles then read without any
 * bounds test. Work items are (image, pair of output rows); each thread takes a contiguous run of them, so it
 * copies each of its images once. Items write disjoint outputs and every output is computed the same way
 * wherever it falls: the same bits for any thread count.
 */
#include <stdlib.h>
#include <string.h>

#include "conv_small.h"

#define CS_PARALLEL_MIN_MACS 262144 /* below this many multiply-adds, one thread */

static const struct cs_kernels *cs_current(void)
{
    switch (fnn_isa_current()) {
    case FNN_ISA_AVX512: return &fnn_cs_avx512;
    case FNN_ISA_AVX2: return &fnn_cs_avx2;
    default: return &fnn_cs_generic;
    }
}

void fnn_cs_copy_padded(const float *img, int64_t h, int64_t w, int64_t cin, int64_t pt, int64_t pl,
                        int64_t hp, int64_t wp, int planar, float *xpad)
{
    int64_t rows = h < hp - pt ? h : hp - pt, cols = w < wp - pl ? w : wp - pl;
    for (int64_t iy = 0; iy < rows; iy++) {
        const float *src = img + iy * w * cin;
        if (!planar) {
            memcpy(xpad + ((iy + pt) * wp + pl) * cin, src, (size_t)(cols * cin) * sizeof(float));
            continue;
        }
        if (cin == 1) { /* planar and NHWC are the same */
            memcpy(xpad + (iy + pt) * wp + pl, src, (size_t)cols * sizeof(float));
            continue;
        }
        for (int64_t ci = 0; ci < cin; ci++) {
            float *dst = xpad + (ci * hp + iy + pt) * wp + pl;
            for (int64_t ix = 0; ix < cols; ix++)
                dst[ix] = src[ix * cin + ci];
        }
    }
}

struct cs_job {
    const struct cs_kernels *ks;
    const struct cs_geom *g;
    const float *x, *w, *bias;
    float *y, *pooled, *ws;
    int32_t *argmax;
    int64_t h, w_in, pt, pl, hp, groups, items, in_size, y_size, pooled_size, pad_size;
    int by_pixel;
};

/* Work items [lo, hi) (image, pair of output rows) on thread t's padded copy. */
static void run_items(void *ctx, int t, int64_t lo, int64_t hi)
{
    const struct cs_job *j = ctx;
    const struct cs_geom *g = j->g;
    float *xpad = j->ws + t * j->pad_size;
    int64_t copied = -1;
    for (int64_t i = lo; i < hi; i++) {
        int64_t n = i / j->groups, oy = (i % j->groups) * 2;
        int rows = oy + 1 < g->oh ? 2 : 1;
        if (n != copied) {
            fnn_cs_copy_padded(j->x + n * j->in_size, j->h, j->w_in, g->cin, j->pt, j->pl, j->hp, g->wp, j->by_pixel,
                               xpad);
            copied = n;
        }
        struct cs_out o = {j->y ? j->y + n * j->y_size : NULL, j->pooled ? j->pooled + n * j->pooled_size : NULL,
                           j->argmax ? j->argmax + n * j->pooled_size : NULL};
        if (j->by_pixel)
            j->ks->pixel_rows(g, xpad, j->w, j->bias, oy, rows, &o);
        else
            j->ks->filter_rows(g, xpad, j->w, j->bias, oy, rows, &o);
    }
}

int fnn_conv2d_small_forward_f32(int64_t batch, int64_t h, int64_t w, int64_t cin, int64_t kh, int64_t kw,
                                 int64_t pt, int64_t pl, int64_t oh, int64_t ow, int64_t cout, const float *x,
                                 const float *kernel, const float *bias, int act, float act_alpha, float *y,
                                 float *pooled, int32_t *argmax, int n_threads)
{
    if (batch < 0 || h < 1 || w < 1 || cin < 1 || kh < 1 || kw < 1 || pt < 0 || pl < 0 || oh < 1 || ow < 1 ||
        cout < 1 || (pooled && (oh < 2 || ow < 2 || oh * ow * cout > INT32_MAX)) || (argmax && !pooled) ||
        (act != FNN_ACT_LINEAR && act != FNN_ACT_RELU && act != FNN_ACT_LEAKY_RELU))
        return FNN_EBADARG;
    if (batch == 0)
        return FNN_OK;
    if (!x || !kernel || (!y && !pooled))
        return FNN_EBADARG;
    const struct cs_kernels *ks = cs_current();
    const int lanes = ks->lanes, by_pixel = cout <= CS_PIXEL_MAX_COUT;
    const int64_t hp = oh + kh - 1, taps = kh * kw * cin, blocks = (cout + lanes - 1) / lanes;
    /* pixel tiles read whole vectors past the last output pixel: round the row up to a vector */
    const int64_t wp = (by_pixel ? (ow + lanes - 1) / lanes * lanes : ow) + kw - 1;
    /* filter tiles read the kernel and bias in place when whole vectors of filters fit, else a zero-padded copy */
    const int packed = !by_pixel && cout % lanes != 0;
    struct cs_geom g = {cin, kh, kw, oh, ow, cout, wp, hp * wp, 0, packed ? lanes : cout, packed ? taps * lanes : lanes,
                        act, act_alpha, bias != NULL};
    /* pooled only: an odd last row is dropped by the pool and never computed */
    const int64_t groups = y ? (oh + 1) / 2 : oh / 2, items = batch * groups;
    int nt = n_threads < 1 ? 1 : n_threads;
    if ((double)batch * oh * ow * cout * taps < CS_PARALLEL_MIN_MACS)
        nt = 1;
    if (nt > items)
        nt = (int)items;
    /* one zeroed block: a padded image per thread, then (packed) the kernel and bias */
    const int64_t pad_size = hp * wp * cin, pack_size = packed ? blocks * (taps + 1) * lanes : 0;
    float *ws = calloc((size_t)(nt * pad_size + pack_size), sizeof(float));
    if (!ws)
        return FNN_ENOMEM;
    const float *wk = kernel, *bk = bias;
    if (packed) {
        float *wpk = ws + nt * pad_size, *bpk = wpk + blocks * taps * lanes;
        for (int64_t cb = 0; cb < blocks; cb++) {
            int64_t c0 = cb * lanes, nc = cout - c0 < lanes ? cout - c0 : lanes;
            for (int64_t t = 0; t < taps; t++)
                memcpy(wpk + (cb * taps + t) * lanes, kernel + t * cout + c0, (size_t)nc * sizeof(float));
            if (bias)
                memcpy(bpk + c0, bias + c0, (size_t)nc * sizeof(float));
        }
        wk = wpk;
        bk = bpk;
    }
    struct cs_job job = {ks, &g, x, wk, bk, y, pooled, ws, argmax, h, w, pt, pl, hp, groups, items, h * w * cin,
                         oh * ow * cout, (oh / 2) * (ow / 2) * cout, pad_size, by_pixel};
    fnn_parallel_ranges(nt, items, run_items, &job);
    free(ws);
    return FNN_OK;
}
