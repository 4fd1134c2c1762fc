/* Max and average pooling over NHWC images (max pooling's backward passes: pool_max_backward.c).
 *
 * Input x is batch x h x w x c, output y is batch x oh x ow x c. The window of output (oy, ox) covers rows
 * oy * sh - pt + [0, ph) and columns ox * sw - pl + [0, pw); positions outside the image (padding) are
 * ignored: max pooling takes the max of the valid elements and average pooling divides by their count (as
 * TensorFlow does with "same" padding). A window with no valid element gives 0.
 * Forward passes split (image, output row) pairs over threads; the backward pass overwrites dx and splits whole
 * images, adding overlapping windows in a fixed order, so every result is the same for any thread count. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fnn.h"
#include "pool_internal.h"

#define POOL_PAR_MIN 65536 /* input elements below which one thread does the work */
#define AVG_BLOCK 256      /* channels averaged together in one stack buffer of doubles */

struct pool_geom {
    int64_t batch, h, w, c, ph, pw, sh, sw, pt, pl, oh, ow;
};

static int pool_valid(const struct pool_geom *g)
{
    return g->batch >= 0 && g->h >= 1 && g->w >= 1 && g->c >= 1 && g->ph >= 1 && g->pw >= 1 && g->sh >= 1 &&
           g->sw >= 1 && g->pt >= 0 && g->pl >= 0 && g->oh >= 1 && g->ow >= 1;
}

/* The valid part [*y0, *y1) x [*x0, *x1) of output (oy, ox)'s window. */
static void window(const struct pool_geom *g, int64_t oy, int64_t ox, int64_t *y0, int64_t *y1, int64_t *x0,
                   int64_t *x1)
{
    int64_t ty = oy * g->sh - g->pt, tx = ox * g->sw - g->pl;
    *y0 = ty < 0 ? 0 : ty;
    *y1 = ty + g->ph < g->h ? ty + g->ph : g->h;
    *x0 = tx < 0 ? 0 : tx;
    *x1 = tx + g->pw < g->w ? tx + g->pw : g->w;
}

static int pool_threads(int n_threads, const struct pool_geom *g)
{
    return (n_threads > 1 && g->batch * g->h * g->w * g->c >= POOL_PAR_MIN) ? n_threads : 1;
}

/* ---- max pooling ----------------------------------------------------------------------------------------- */
static void select_max(int64_t c, const float *restrict v, int32_t base, float *restrict best,
                       int32_t *restrict arg)
{
    for (int32_t ch = 0; ch < (int32_t)c; ch++) {
        int32_t take = -(int32_t)(v[ch] > best[ch]); /* all ones where v wins: a mask, not a branch */
        best[ch] = v[ch] > best[ch] ? v[ch] : best[ch];
        arg[ch] = (arg[ch] & ~take) | ((base + ch) & take);
    }
}

static void max_row(const struct pool_geom *g, int64_t row, const float *x, float *y, int32_t *argmax)
{
    int64_t oy = row % g->oh, n = row / g->oh, c = g->c;
    const float *img = x + n * g->h * g->w * c;
    for (int64_t ox = 0; ox < g->ow; ox++) {
        int64_t y0, y1, x0, x1, o = (row * g->ow + ox) * c;
        window(g, oy, ox, &y0, &y1, &x0, &x1);
        float *best = y + o;
        int32_t *arg = argmax + o;
        if (y0 >= y1 || x0 >= x1) {
            for (int64_t ch = 0; ch < c; ch++) {
                best[ch] = 0.0f;
                arg[ch] = -1;
            }
            continue;
        }
        int64_t first = (y0 * g->w + x0) * c;
        for (int64_t ch = 0; ch < c; ch++) {
            best[ch] = img[first + ch];
            arg[ch] = (int32_t)(first + ch);
        }
        /* Row-major scan with a strict comparison: ties keep the first element. Branch-free selects let the
         * compiler vectorize over channels. */
        for (int64_t iy = y0; iy < y1; iy++)
            for (int64_t ix = x0; ix < x1; ix++) {
                int32_t base = (int32_t)((iy * g->w + ix) * c);
                select_max(c, img + base, base, best, arg);
            }
    }
}

/* max_row without the indices (inference): the same strict-comparison scan in the same order, so the same
 * values. Windows inside the image (all but the border ones) skip the clipping. */
static void max_row_values(const struct pool_geom *g, int64_t row, const float *x, float *y)
{
    int64_t oy = row % g->oh, n = row / g->oh, c = g->c, ph = g->ph, pw = g->pw, ld = g->w * c;
    const float *img = x + n * g->h * ld;
    int64_t ty = oy * g->sh - g->pt, inner_lo = (g->pl + g->sw - 1) / g->sw, last = g->w - pw + g->pl;
    int64_t inner_hi = last >= 0 ? last / g->sw + 1 : 0;
    int rows_inside = ty >= 0 && ty + ph <= g->h;
    for (int64_t ox = 0; ox < g->ow; ox++) {
        float *restrict best = y + (row * g->ow + ox) * c;
        if (rows_inside && ox >= inner_lo && ox < inner_hi) {
            const float *v0 = img + ty * ld + (ox * g->sw - g->pl) * c;
            /* channels innermost: contiguous, so the compiler vectorises each tap's comparison */
            memcpy(best, v0, (size_t)c * sizeof(float));
            for (int64_t ky = 0; ky < ph; ky++)
                for (int64_t kx = 0; kx < pw; kx++) {
                    const float *restrict v = v0 + ky * ld + kx * c;
                    for (int64_t ch = 0; ch < c; ch++)
                        best[ch] = v[ch] > best[ch] ? v[ch] : best[ch];
                }
            continue;
        }
        int64_t y0, y1, x0, x1;
        window(g, oy, ox, &y0, &y1, &x0, &x1);
        if (y0 >= y1 || x0 >= x1) {
            memset(best, 0, (size_t)c * sizeof(float));
            continue;
        }
        memcpy(best, img + y0 * ld + x0 * c, (size_t)c * sizeof(float));
        for (int64_t iy = y0; iy < y1; iy++)
            for (int64_t ix = x0; ix < x1; ix++) {
                const float *restrict v = img + iy * ld + ix * c;
                for (int64_t ch = 0; ch < c; ch++)
                    best[ch] = v[ch] > best[ch] ? v[ch] : best[ch];
            }
    }
}

void fnn_maxpool2x2_rows(int64_t w, int64_t c, const float *rows, float *y, int32_t *argmax, int32_t base)
{
    int64_t ld = w * c;
    for (int64_t px = 0; px < w / 2; px++) {
        const float *v = rows + 2 * px * c;
        float *restrict best = y + px * c;
        memcpy(best, v, (size_t)c * sizeof(float));
        if (argmax) {
            int32_t *restrict arg = argmax + px * c, first = base + (int32_t)(2 * px * c);
            for (int32_t ch = 0; ch < (int32_t)c; ch++)
                arg[ch] = first + ch;
            select_max(c, v + c, first + (int32_t)c, best, arg);
            select_max(c, v + ld, first + (int32_t)ld, best, arg);
            select_max(c, v + ld + c, first + (int32_t)(ld + c), best, arg);
            continue;
        }
        for (int64_t k = 1; k < 4; k++) {
            const float *restrict u = v + (k >> 1) * ld + (k & 1) * c;
            for (int64_t ch = 0; ch < c; ch++)
                best[ch] = u[ch] > best[ch] ? u[ch] : best[ch];
        }
    }
}

int fnn_maxpool2d_forward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t ph, int64_t pw,
                              int64_t sh, int64_t sw, int64_t pt, int64_t pl, int64_t oh, int64_t ow,
                              const float *x, float *y, int32_t *argmax, int n_threads)
{
    struct pool_geom g = {batch, h, w, c, ph, pw, sh, sw, pt, pl, oh, ow};
    if (!pool_valid(&g) || h * w * c > INT32_MAX)
        return FNN_EBADARG;
    if (batch == 0)
        return FNN_OK;
    if (!x || !y)
        return FNN_EBADARG;
    int nt = pool_threads(n_threads, &g);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        unsigned fpu = fnn_fpu_enter();
#pragma omp for schedule(static)
        for (int64_t row = 0; row < batch * oh; row++) {
            if (argmax)
                max_row(&g, row, x, y, argmax);
            else
                max_row_values(&g, row, x, y);
        }
        fnn_fpu_leave(fpu);
    }
    return FNN_OK;
}

/* ---- average pooling ------------------------------------------------------------------------------------- */
static void avg_row(const struct pool_geom *g, int64_t row, const float *x, float *y)
{
    int64_t oy = row % g->oh, n = row / g->oh, c = g->c;
    const float *img = x + n * g->h * g->w * c;
    double acc[AVG_BLOCK];
    for (int64_t ox = 0; ox < g->ow; ox++) {
        int64_t y0, y1, x0, x1;
        window(g, oy, ox, &y0, &y1, &x0, &x1);
        int64_t count = (y1 > y0 && x1 > x0) ? (y1 - y0) * (x1 - x0) : 0;
        float *out = y + (row * g->ow + ox) * c;
        for (int64_t c0 = 0; c0 < c; c0 += AVG_BLOCK) {
            int64_t nc = c - c0 < AVG_BLOCK ? c - c0 : AVG_BLOCK;
            for (int64_t j = 0; j < nc; j++)
                acc[j] = 0.0;
            for (int64_t iy = y0; iy < y1; iy++)
                for (int64_t ix = x0; ix < x1; ix++) {
                    const float *v = img + (iy * g->w + ix) * c + c0;
                    for (int64_t j = 0; j < nc; j++)
                        acc[j] += v[j];
                }
            for (int64_t j = 0; j < nc; j++)
                out[c0 + j] = count ? (float)(acc[j] / (double)count) : 0.0f;
        }
    }
}

int fnn_avgpool2d_forward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t ph, int64_t pw,
                              int64_t sh, int64_t sw, int64_t pt, int64_t pl, int64_t oh, int64_t ow,
                              const float *x, float *y, int n_threads)
{
    struct pool_geom g = {batch, h, w, c, ph, pw, sh, sw, pt, pl, oh, ow};
    if (!pool_valid(&g))
        return FNN_EBADARG;
    if (batch == 0)
        return FNN_OK;
    if (!x || !y)
        return FNN_EBADARG;
    int nt = pool_threads(n_threads, &g);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        unsigned fpu = fnn_fpu_enter();
#pragma omp for schedule(static)
        for (int64_t row = 0; row < batch * oh; row++)
            avg_row(&g, row, x, y);
        fnn_fpu_leave(fpu);
    }
    return FNN_OK;
}

static void avg_backward_image(const struct pool_geom *g, const float *dy, float *img)
{
    int64_t c = g->c;
    memset(img, 0, (size_t)(g->h * g->w * c) * sizeof(float));
    for (int64_t oy = 0; oy < g->oh; oy++)
        for (int64_t ox = 0; ox < g->ow; ox++) {
            int64_t y0, y1, x0, x1;
            window(g, oy, ox, &y0, &y1, &x0, &x1);
            if (y0 >= y1 || x0 >= x1)
                continue;
            float scale = 1.0f / (float)((y1 - y0) * (x1 - x0));
            const float *gr = dy + (oy * g->ow + ox) * c;
            for (int64_t iy = y0; iy < y1; iy++)
                for (int64_t ix = x0; ix < x1; ix++) {
                    float *d = img + (iy * g->w + ix) * c;
                    for (int64_t ch = 0; ch < c; ch++)
                        d[ch] += gr[ch] * scale;
                }
        }
}

int fnn_avgpool2d_backward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t ph, int64_t pw,
                               int64_t sh, int64_t sw, int64_t pt, int64_t pl, int64_t oh, int64_t ow,
                               const float *dy, float *dx, int n_threads)
{
    struct pool_geom g = {batch, h, w, c, ph, pw, sh, sw, pt, pl, oh, ow};
    if (!pool_valid(&g))
        return FNN_EBADARG;
    if (batch == 0)
        return FNN_OK;
    if (!dy || !dx)
        return FNN_EBADARG;
    int nt = pool_threads(n_threads, &g);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        unsigned fpu = fnn_fpu_enter();
#pragma omp for schedule(static)
        for (int64_t n = 0; n < batch; n++)
            avg_backward_image(&g, dy + n * oh * ow * c, dx + n * h * w * c);
        fnn_fpu_leave(fpu);
    }
    return FNN_OK;
}
