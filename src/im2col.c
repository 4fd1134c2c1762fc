/* im2col and col2im for NHWC convolution (DESIGN.md: convolution by im2col + GEMM, in chunks of rows).
 *
 * Input x is batch x h x w x c. The output grid is oh x ow, with
 *   oh = (h + pad_top + pad_bottom - dh * (kh - 1) - 1) / sh + 1   (likewise ow),
 * chosen by the caller (only the top/left pads are needed here; bottom/right follow from oh, ow).
 * The column matrix has one row per output pixel, r = (n * oh + oy) * ow + ox, and kh * kw * c columns in
 * (ky, kx, ch) order, the order of a Keras kernel (kh, kw, c_in, c_out) reshaped to (kh * kw * c_in, c_out):
 *   cols[r, (ky * kw + kx) * c + ch] = x[n, oy * sh - pt + ky * dh, ox * sw - pl + kx * dw, ch], 0 outside.
 * Both kernels work on rows [row0, row0 + rows) of that matrix, so callers bound the workspace by chunks. */
#include <string.h>

#include "fnn.h"

#define IM2COL_PAR_MIN 65536 /* column elements below which one thread does the work */

struct conv_geom {
    int64_t batch, h, w, c, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow;
};

static int geom_valid(const struct conv_geom *g, int64_t row0, int64_t rows, int64_t ldcols)
{
    if (g->batch < 0 || g->h < 1 || g->w < 1 || g->c < 1 || g->kh < 1 || g->kw < 1 || g->sh < 1 || g->sw < 1 ||
        g->dh < 1 || g->dw < 1 || g->pt < 0 || g->pl < 0 || g->oh < 1 || g->ow < 1 || row0 < 0 || rows < 0)
        return 0;
    return row0 + rows <= g->batch * g->oh * g->ow && ldcols >= g->kh * g->kw * g->c;
}

static void im2col_row(const struct conv_geom *g, int64_t r, const float *x, float *dst)
{
    int64_t ox = r % g->ow, t = r / g->ow, oy = t % g->oh, n = t / g->oh;
    const float *img = x + n * g->h * g->w * g->c;
    int64_t c = g->c, ix0 = ox * g->sw - g->pl;
    for (int64_t ky = 0; ky < g->kh; ky++) {
        int64_t iy = oy * g->sh - g->pt + ky * g->dh;
        float *d = dst + ky * g->kw * c;
        if (iy < 0 || iy >= g->h) {
            memset(d, 0, (size_t)(g->kw * c) * sizeof(float));
            continue;
        }
        const float *src = img + iy * g->w * c;
        if (g->dw == 1 && ix0 >= 0 && ix0 + g->kw <= g->w) { /* the whole kernel row is one contiguous run */
            memcpy(d, src + ix0 * c, (size_t)(g->kw * c) * sizeof(float));
            continue;
        }
        for (int64_t kx = 0; kx < g->kw; kx++) {
            int64_t ix = ix0 + kx * g->dw;
            if (ix < 0 || ix >= g->w)
                memset(d + kx * c, 0, (size_t)c * sizeof(float));
            else
                memcpy(d + kx * c, src + ix * c, (size_t)c * sizeof(float));
        }
    }
}

static void col2im_row(const struct conv_geom *g, int64_t r, const float *src, float *dx)
{
    int64_t ox = r % g->ow, t = r / g->ow, oy = t % g->oh, n = t / g->oh;
    float *img = dx + n * g->h * g->w * g->c;
    int64_t c = g->c;
    for (int64_t ky = 0; ky < g->kh; ky++) {
        int64_t iy = oy * g->sh - g->pt + ky * g->dh;
        if (iy < 0 || iy >= g->h)
            continue;
        for (int64_t kx = 0; kx < g->kw; kx++) {
            int64_t ix = ox * g->sw - g->pl + kx * g->dw;
            if (ix < 0 || ix >= g->w)
                continue;
            float *d = img + (iy * g->w + ix) * c;
            const float *s = src + (ky * g->kw + kx) * c;
            for (int64_t ch = 0; ch < c; ch++)
                d[ch] += s[ch];
        }
    }
}

int fnn_im2col_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh,
                   int64_t sw, int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t oh, int64_t ow,
                   int64_t row0, int64_t rows, const float *x, float *cols, int64_t ldcols, int n_threads)
{
    struct conv_geom g = {batch, h, w, c, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow};
    if (!geom_valid(&g, row0, rows, ldcols))
        return FNN_EBADARG;
    if (rows == 0)
        return FNN_OK;
    if (!x || !cols)
        return FNN_EBADARG;
    int nt = (n_threads > 1 && rows * kh * kw * c >= IM2COL_PAR_MIN) ? n_threads : 1;
    /* Rows are independent: any split gives the same bytes. */
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        unsigned fpu = fnn_fpu_enter();
#pragma omp for schedule(static)
        for (int64_t i = 0; i < rows; i++)
            im2col_row(&g, row0 + i, x, cols + i * ldcols);
        fnn_fpu_leave(fpu);
    }
    return FNN_OK;
}

int fnn_col2im_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh,
                   int64_t sw, int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t oh, int64_t ow,
                   int64_t row0, int64_t rows, const float *cols, int64_t ldcols, float *dx, int n_threads)
{
    struct conv_geom g = {batch, h, w, c, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow};
    if (!geom_valid(&g, row0, rows, ldcols))
        return FNN_EBADARG;
    if (rows == 0)
        return FNN_OK;
    if (!cols || !dx)
        return FNN_EBADARG;
    /* Overlapping windows add into the same pixels, so work is split by image only: each image's rows are
     * added by one thread in row order, the same order for any thread count. */
    int64_t per_image = oh * ow, first = row0 / per_image, last = (row0 + rows - 1) / per_image;
    int nt = (n_threads > 1 && last > first && rows * kh * kw * c >= IM2COL_PAR_MIN) ? n_threads : 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        unsigned fpu = fnn_fpu_enter();
#pragma omp for schedule(static)
        for (int64_t n = first; n <= last; n++) {
            int64_t lo = n * per_image > row0 ? n * per_image : row0;
            int64_t hi = (n + 1) * per_image < row0 + rows ? (n + 1) * per_image : row0 + rows;
            for (int64_t r = lo; r < hi; r++)
                col2im_row(&g, r, cols + (r - row0) * ldcols, dx);
        }
        fnn_fpu_leave(fpu);
    }
    return FNN_OK;
}
