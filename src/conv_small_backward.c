/* Backward passes of the small-channel convolution (stride 1, no dilation, NHWC), for the same shapes as
 * fnn_conv2d_small_forward_f32.
 *
 * Kernel gradient: threads split the taps (ky, kx), each going through every image, so each output has one
 * owner and one summation order whatever the thread count. An image's terms for a tap are added into
 * per-lane float sums; every CS_DW_IMAGES images (counted from the first image of the batch, not per
 * thread) those are folded into doubles, lane by lane in order.
 * Input gradient: the forward kernel itself on dz, with the kernel flipped in space and its channel axes
 * swapped, padded by (kh - 1 - pt, kw - 1 - pl): dx[iy, ix, ci] = sum of dz[iy + pt - ky, ix + pl - kx, co] *
 * kernel[ky, kx, ci, co].
 */
#include <stdlib.h>
#include <string.h>

#include "conv_small.h"

#define CS_DW_IMAGES 16
#define CS_DW_PARALLEL_MIN_MACS 262144

static const struct cs_kernels *cs_current(void)
{
    switch (fnn_isa_current()) {
    case FNN_ISA_AVX512: return &fnn_cs_avx512;
    case FNN_ISA_AVX2: return &fnn_cs_avx2;
    default: return &fnn_cs_generic;
    }
}

/* dz of one image (oh x ow x cout) into cout planes of oh rows of wq floats (the columns past ow stay 0). */
static void planar_dz(const float *dz, int64_t oh, int64_t ow, int64_t cout, int64_t wq, float *dzp)
{
    for (int64_t co = 0; co < cout; co++)
        for (int64_t oy = 0; oy < oh; oy++) {
            float *restrict dst = dzp + (co * oh + oy) * wq;
            const float *restrict src = dz + oy * ow * cout + co;
            for (int64_t ox = 0; ox < ow; ox++)
                dst[ox] = src[ox * cout];
        }
}

/* dacc[tap] += the lane sums in vacc[tap], then vacc[tap] = 0, for taps [lo, hi). */
static void fold(const struct cs_geom *g, int by_pixel, int lanes, int64_t lo, int64_t hi, int64_t vt, float *vacc,
                 double *dacc)
{
    const int64_t cin = g->cin, cout = g->cout, blocks = (cout + lanes - 1) / lanes;
    for (int64_t tap = lo; tap < hi; tap++) {
        float *v = vacc + tap * vt;
        double *d = dacc + tap * cin * cout;
        for (int64_t ci = 0; ci < cin; ci++) {
            if (by_pixel) {
                for (int64_t co = 0; co < cout; co++) {
                    const float *l = v + (ci * cout + co) * lanes;
                    for (int j = 0; j < lanes; j++)
                        d[ci * cout + co] += l[j];
                }
                continue;
            }
            /* filter form: lane j of block b is filter b * lanes + j, so vacc's rows are the filters in order */
            const float *l = v + ci * blocks * lanes;
            for (int64_t co = 0; co < cout; co++)
                d[ci * cout + co] += l[co];
        }
        memset(v, 0, (size_t)vt * sizeof(float));
    }
}

struct dw_job {
    const struct cs_kernels *ks;
    const struct cs_geom *g, *g_ones;
    const float *x, *dz, *ones;
    float *dkernel, *dbias, *ws, *vacc, *vacc_bias;
    double *dacc, *dacc_bias;
    int64_t batch, h, w, pt, pl, hp, per_thread, vt, vt_bias;
    int accumulate, by_pixel;
};

/* The gradient of taps [lo, hi) over the whole batch, on thread t's copies; the thread of tap 0 also sums the
 * bias gradient, as the gradient of a one-channel 1 x 1 kernel over an image of ones. */
static void dw_taps(void *ctx, int t, int64_t lo, int64_t hi)
{
    const struct dw_job *j = ctx;
    const int bias = j->dbias && lo == 0 && lo < hi;
    const struct cs_geom *g = j->g;
    const int64_t cin = g->cin, cout = g->cout, oh = g->oh, ow = g->ow, kw = g->kw;
    float *xpad = j->ws + t * j->per_thread, *dzp = xpad + j->hp * g->wp * cin;
    for (int64_t n = 0; n < j->batch && lo < hi; n++) {
        const float *dzn = j->dz + n * oh * ow * cout;
        fnn_cs_copy_padded(j->x + n * j->h * j->w * cin, j->h, j->w, cin, j->pt, j->pl, j->hp, g->wp, j->by_pixel,
                           xpad);
        if (j->by_pixel)
            planar_dz(dzn, oh, ow, cout, g->wq, dzp);
        for (int64_t tap = lo; tap < hi; tap++) {
            if (j->by_pixel)
                j->ks->pixel_dw(g, xpad, dzp, tap / kw, tap % kw, j->vacc + tap * j->vt);
            else
                j->ks->filter_dw(g, xpad, dzn, tap / kw, tap % kw, j->vacc + tap * j->vt);
        }
        if (bias && j->by_pixel)
            j->ks->pixel_dw(j->g_ones, j->ones, dzp, 0, 0, j->vacc_bias);
        else if (bias)
            j->ks->filter_dw(j->g_ones, j->ones, dzn, 0, 0, j->vacc_bias);
        if (n % CS_DW_IMAGES == CS_DW_IMAGES - 1 || n == j->batch - 1) {
            fold(g, j->by_pixel, j->ks->lanes, lo, hi, j->vt, j->vacc, j->dacc);
            if (bias)
                fold(j->g_ones, j->by_pixel, j->ks->lanes, 0, 1, j->vt_bias, j->vacc_bias, j->dacc_bias);
        }
    }
    for (int64_t i = lo * cin * cout; i < hi * cin * cout; i++)
        j->dkernel[i] = j->accumulate ? j->dkernel[i] + (float)j->dacc[i] : (float)j->dacc[i];
    for (int64_t co = 0; bias && co < cout; co++)
        j->dbias[co] = j->accumulate ? j->dbias[co] + (float)j->dacc_bias[co] : (float)j->dacc_bias[co];
}

int fnn_conv2d_small_backward_filter_f32(int64_t batch, int64_t h, int64_t w, int64_t cin, int64_t kh,
                                         int64_t kw, int64_t pt, int64_t pl, int64_t oh, int64_t ow,
                                         int64_t cout, const float *x, const float *dz, float *dkernel,
                                         float *dbias, int accumulate, int n_threads)
{
    if (batch < 0 || h < 1 || w < 1 || cin < 1 || kh < 1 || kw < 1 || pt < 0 || pl < 0 || oh < 1 || ow < 1 ||
        cout < 1)
        return FNN_EBADARG;
    if (!dkernel || (batch > 0 && (!x || !dz)))
        return FNN_EBADARG;
    const struct cs_kernels *ks = cs_current();
    const int lanes = ks->lanes, by_pixel = cout <= CS_PIXEL_MAX_COUT;
    const int64_t taps = kh * kw, hp = oh + kh - 1, wq = (ow + lanes - 1) / lanes * lanes;
    const int64_t wp = (by_pixel ? wq : ow) + kw - 1, blocks = (cout + lanes - 1) / lanes;
    const int64_t vt = cin * (by_pixel ? cout : blocks) * lanes; /* lane sums of one tap */
    struct cs_geom g = {cin, kh, kw, oh, ow, cout, wp, hp * wp, wq, 0, 0, FNN_ACT_LINEAR, 0.0f, 0};
    int nt = n_threads < 1 ? 1 : n_threads;
    if ((double)batch * oh * ow * cout * taps * cin < CS_DW_PARALLEL_MIN_MACS)
        nt = 1;
    if (nt > taps)
        nt = (int)taps;
    const int64_t per_thread = hp * wp * cin + (by_pixel ? cout * oh * wq : 0);
    /* the bias pseudo-tap: a one-channel image of ones (oh rows of wp) and its lane sums */
    struct cs_geom g_ones = g;
    g_ones.cin = 1;
    g_ones.plane = oh * wp;
    const int64_t vt_bias = (by_pixel ? cout : blocks) * lanes, ones_size = dbias ? oh * wp + vt_bias : 0;
    float *ws = calloc((size_t)(nt * per_thread + taps * vt + ones_size), sizeof(float));
    double *dacc = calloc((size_t)(taps * cin * cout + cout), sizeof(double));
    if (!ws || !dacc) {
        free(ws);
        free(dacc);
        return FNN_ENOMEM;
    }
    float *vacc = ws + nt * per_thread, *ones = vacc + taps * vt, *vacc_bias = ones + oh * wp;
    for (int64_t i = 0; dbias && i < oh * wp; i++)
        ones[i] = 1.0f;
    struct dw_job job = {ks, &g, &g_ones, x, dz, ones, dkernel, dbias, ws, vacc, vacc_bias, dacc,
                         dacc + taps * cin * cout, batch, h, w, pt, pl, hp, per_thread, vt, vt_bias, accumulate,
                         by_pixel};
    fnn_parallel_ranges(nt, taps, dw_taps, &job);
    free(ws);
    free(dacc);
    return FNN_OK;
}

int fnn_conv2d_small_backward_input_f32(int64_t batch, int64_t h, int64_t w, int64_t cin, int64_t kh,
                                        int64_t kw, int64_t pt, int64_t pl, int64_t oh, int64_t ow, int64_t cout,
                                        const float *dz, const float *kernel, float *dx, int n_threads)
{
    if (kh < 1 || kw < 1 || cin < 1 || cout < 1 || pt < 0 || pl < 0 || pt >= kh || pl >= kw || !kernel)
        return FNN_EBADARG;
    float *flipped = malloc((size_t)(kh * kw * cin * cout) * sizeof(float));
    if (!flipped)
        return FNN_ENOMEM;
    for (int64_t ky = 0; ky < kh; ky++)
        for (int64_t kx = 0; kx < kw; kx++)
            for (int64_t ci = 0; ci < cin; ci++)
                for (int64_t co = 0; co < cout; co++)
                    flipped[((ky * kw + kx) * cout + co) * cin + ci] =
                        kernel[(((kh - 1 - ky) * kw + (kw - 1 - kx)) * cin + ci) * cout + co];
    int status = fnn_conv2d_small_forward_f32(batch, oh, ow, cout, kh, kw, kh - 1 - pt, kw - 1 - pl, h, w, cin, dz,
                                              flipped, NULL, FNN_ACT_LINEAR, 0.0f, dx, NULL, NULL, n_threads);
    free(flipped);
    return status;
}
