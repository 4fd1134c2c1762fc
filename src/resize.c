/* Resizing NHWC images (UpSampling2D, and the octaves of DeepDream): nearest and bilinear interpolation.
 *
 * x is batch x h x w x c, y is batch x oh x ow x c, any sizes >= 1. Coordinates use half-pixel centres, as
 * TensorFlow's resize (and Keras' UpSampling2D) do: output pixel oy samples input row
 *   src = (oy + 0.5) * h / oh - 0.5
 * nearest takes row min(floor(src + 0.5), h - 1) (for an integer factor s: oy / s, a repeat); bilinear mixes
 * rows max(floor(src), 0) and min(floor(src) + 1, h - 1) with weights 1 - f, f where f = src - floor(src).
 * Columns likewise. Forward passes split output rows over threads; backward passes overwrite dx and split whole
 * images, adding contributions in a fixed order, so results are the same for any thread count. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fnn.h"

#define RESIZE_PAR_MIN 65536 /* output elements below which one thread does the work */

/* One axis' sampling table: the two source indices and the weight of the second, per output index. */
struct taps {
    int64_t *lo, *hi;
    float *frac;
};

static int taps_init(struct taps *t, int64_t in, int64_t out, int mode)
{
    t->lo = malloc((size_t)out * sizeof(int64_t));
    t->hi = malloc((size_t)out * sizeof(int64_t));
    t->frac = malloc((size_t)out * sizeof(float));
    if (!t->lo || !t->hi || !t->frac)
        return FNN_ENOMEM;
    double scale = (double)in / (double)out;
    for (int64_t o = 0; o < out; o++) {
        double src = ((double)o + 0.5) * scale - 0.5;
        if (mode == FNN_RESIZE_NEAREST) {
            int64_t i = (int64_t)floor(src + 0.5);
            t->lo[o] = t->hi[o] = i < in ? i : in - 1;
            t->frac[o] = 0.0f;
        } else {
            double f = floor(src);
            int64_t i = (int64_t)f;
            t->lo[o] = i < 0 ? 0 : i;
            t->hi[o] = i + 1 < in ? i + 1 : in - 1;
            t->frac[o] = (float)(src - f);
        }
    }
    return FNN_OK;
}

static void taps_free(struct taps *t)
{
    free(t->lo);
    free(t->hi);
    free(t->frac);
}

struct resize_geom {
    int64_t batch, h, w, c, oh, ow;
    struct taps ty, tx;
    int nearest;
};

static int geom_init(struct resize_geom *g, int mode)
{
    g->ty.lo = g->ty.hi = g->tx.lo = g->tx.hi = NULL;
    g->ty.frac = g->tx.frac = NULL;
    if (g->batch < 0 || g->h < 1 || g->w < 1 || g->c < 1 || g->oh < 1 || g->ow < 1 ||
        (mode != FNN_RESIZE_NEAREST && mode != FNN_RESIZE_BILINEAR))
        return FNN_EBADARG;
    g->nearest = mode == FNN_RESIZE_NEAREST;
    int status = taps_init(&g->ty, g->h, g->oh, mode);
    if (status == FNN_OK)
        status = taps_init(&g->tx, g->w, g->ow, mode);
    return status;
}

static void geom_free(struct resize_geom *g)
{
    taps_free(&g->ty);
    taps_free(&g->tx);
}

/* Output row (n, oy): y = (1 - fy) * lerp(row lo) + fy * lerp(row hi). */
static void resize_row(const struct resize_geom *g, int64_t row, const float *x, float *y)
{
    int64_t oy = row % g->oh, n = row / g->oh, c = g->c;
    const float *img = x + n * g->h * g->w * c;
    const float *r0 = img + g->ty.lo[oy] * g->w * c, *r1 = img + g->ty.hi[oy] * g->w * c;
    float fy = g->ty.frac[oy];
    float *out = y + row * g->ow * c;
    if (g->nearest) { /* one source pixel: a copy */
        for (int64_t ox = 0; ox < g->ow; ox++, out += c)
            memcpy(out, r0 + g->tx.lo[ox] * c, (size_t)c * sizeof(float));
        return;
    }
    for (int64_t ox = 0; ox < g->ow; ox++, out += c) {
        int64_t a = g->tx.lo[ox] * c, b = g->tx.hi[ox] * c;
        float fx = g->tx.frac[ox];
        for (int64_t ch = 0; ch < c; ch++) {
            float top = r0[a + ch] + fx * (r0[b + ch] - r0[a + ch]);
            float bottom = r1[a + ch] + fx * (r1[b + ch] - r1[a + ch]);
            out[ch] = top + fy * (bottom - top);
        }
    }
}

/* dx[n] += the adjoint of resize_row for every output row of image n, in row order. */
static void resize_image_backward(const struct resize_geom *g, int64_t n, const float *dy, float *dx)
{
    int64_t c = g->c;
    float *img = dx + n * g->h * g->w * c;
    for (int64_t oy = 0; oy < g->oh; oy++) {
        float *r0 = img + g->ty.lo[oy] * g->w * c, *r1 = img + g->ty.hi[oy] * g->w * c;
        float fy = g->ty.frac[oy];
        const float *d = dy + (n * g->oh + oy) * g->ow * c;
        if (g->nearest) {
            for (int64_t ox = 0; ox < g->ow; ox++, d += c) {
                float *dst = r0 + g->tx.lo[ox] * c;
                for (int64_t ch = 0; ch < c; ch++)
                    dst[ch] += d[ch];
            }
            continue;
        }
        for (int64_t ox = 0; ox < g->ow; ox++, d += c) {
            int64_t a = g->tx.lo[ox] * c, b = g->tx.hi[ox] * c;
            float fx = g->tx.frac[ox];
            float w00 = (1.0f - fy) * (1.0f - fx), w01 = (1.0f - fy) * fx, w10 = fy * (1.0f - fx), w11 = fy * fx;
            for (int64_t ch = 0; ch < c; ch++) {
                r0[a + ch] += w00 * d[ch];
                r0[b + ch] += w01 * d[ch];
                r1[a + ch] += w10 * d[ch];
                r1[b + ch] += w11 * d[ch];
            }
        }
    }
}

static int resize_threads(int n_threads, const struct resize_geom *g)
{
    return (n_threads > 1 && g->batch * g->oh * g->ow * g->c >= RESIZE_PAR_MIN) ? n_threads : 1;
}

int fnn_resize2d_forward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t oh, int64_t ow, int mode,
                             const float *x, float *y, int n_threads)
{
    struct resize_geom g = {batch, h, w, c, oh, ow};
    int status = geom_init(&g, mode);
    if (status == FNN_OK && batch > 0 && (!x || !y))
        status = FNN_EBADARG;
    if (status == FNN_OK && batch > 0) {
        int nt = resize_threads(n_threads, &g);
#pragma omp parallel num_threads(nt) if (nt > 1)
        {
            unsigned fpu = fnn_fpu_enter();
#pragma omp for schedule(static)
            for (int64_t row = 0; row < batch * oh; row++)
                resize_row(&g, row, x, y);
            fnn_fpu_leave(fpu);
        }
    }
    geom_free(&g);
    return status;
}

int fnn_resize2d_backward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t oh, int64_t ow, int mode,
                              const float *dy, float *dx, int n_threads)
{
    struct resize_geom g = {batch, h, w, c, oh, ow};
    int status = geom_init(&g, mode);
    if (status == FNN_OK && batch > 0 && (!dy || !dx))
        status = FNN_EBADARG;
    if (status == FNN_OK && batch > 0) {
        int nt = resize_threads(n_threads, &g);
        memset(dx, 0, (size_t)(batch * h * w * c) * sizeof(float));
#pragma omp parallel num_threads(nt) if (nt > 1 && batch > 1)
        {
            unsigned fpu = fnn_fpu_enter();
#pragma omp for schedule(static)
            for (int64_t n = 0; n < batch; n++)
                resize_image_backward(&g, n, dy, dx);
            fnn_fpu_leave(fpu);
        }
    }
    geom_free(&g);
    return status;
}
