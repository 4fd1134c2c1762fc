/* im2col and col2im for NHWC convolution (DESIGN.md: convolution by im2col + GEMM, in chunks of rows).
 *
 * Input x is batch x h x w x c. The output grid is oh x ow, with
 *   oh = (h + pad_top + pad_bottom - dh * (kh - 1) - 1) / sh + 1   (likewise ow),
 * chosen by the caller (only the top/left pads are needed here; bottom/right follow from oh, ow).
 * The column matrix has one row per output pixel, r = (n * oh + oy) * ow + ox, and kh * kw * c columns in
 * (ky, kx, ch) order, the order of a Keras kernel (kh, kw, c_in, c_out) reshaped to (kh * kw * c_in, c_out):
 *   cols[r, (ky * kw + kx) * c + ch] = x[n, oy * sh - pt + ky * dh, ox * sw - pl + kx * dw, ch], 0 outside.
 * Both kernels work on rows [row0, row0 + rows) of that matrix, so callers bound the workspace by chunks. */
#include <immintrin.h>

#include "fnn.h"

/* The copy loops below must stay inline moves, not become memcpy calls of a few bytes each. */
#pragma GCC optimize("no-tree-loop-distribute-patterns")
#ifdef _OPENMP
#include <omp.h>
#endif

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

/* dst[0 .. count) = src[0 .. count) in 16-byte moves (the last one overlapping), inline: the runs of a column
 * row are short (kw * c floats: 5 for a 5x5 kernel on one channel), too short for a memcpy call to pay. */
static inline void copy_floats(float *restrict dst, const float *restrict src, int64_t count)
{
    if (count < 4) {
        for (int64_t q = 0; q < count; q++)
            dst[q] = src[q];
        return;
    }
    int64_t q = 0;
    for (; q + 4 <= count; q += 4)
        _mm_storeu_ps(dst + q, _mm_loadu_ps(src + q));
    if (q < count)
        _mm_storeu_ps(dst + count - 4, _mm_loadu_ps(src + count - 4));
}

/* copy_floats of `count` runs of `run` floats, dst ld and src step apart; common short runs (kw * c) get a
 * copy unrolled for their length. */
static inline void copy_runs(float *dst, int64_t ld, const float *src, int64_t step, int64_t count, int64_t run)
{
    switch (run) {
#define RUN(len)                                                                                             \
    case len:                                                                                                \
        for (int64_t i = 0; i < count; i++)                                                                  \
            copy_floats(dst + i * ld, src + i * step, len);                                                  \
        return;
        RUN(3) RUN(5) RUN(6) RUN(9) RUN(15) RUN(18) RUN(27) RUN(30)
#undef RUN
    default:
        for (int64_t i = 0; i < count; i++)
            copy_floats(dst + i * ld, src + i * step, run);
    }
}

static inline void zero_floats(float *dst, int64_t count)
{
    for (int64_t q = 0; q < count; q++)
        dst[q] = 0.0f;
}

/* One kernel row (ky at image row iy) of the column row of pixel ox, checking each kx against the width. */
static void im2col_edge(const struct conv_geom *g, const float *src, int64_t ox, float *d)
{
    int64_t c = g->c, ix0 = ox * g->sw - g->pl;
    for (int64_t kx = 0; kx < g->kw; kx++) {
        int64_t ix = ix0 + kx * g->dw;
        if (ix < 0 || ix >= g->w)
            zero_floats(d + kx * c, c);
        else
            copy_floats(d + kx * c, src + ix * c, c);
    }
}

/* Column rows of pixels (n, oy, ox0 .. ox1 - 1) into dst (row ld apart), kernel row by kernel row: the
 * pixels whose window lies inside the image width, all but a few, copy without any check. */
static void im2col_segment(const struct conv_geom *g, int64_t n, int64_t oy, int64_t ox0, int64_t ox1,
                           const float *x, float *dst, int64_t ld)
{
    int64_t c = g->c, run = g->kw * c, sw = g->sw;
    int64_t last = g->w - 1 + g->pl - (g->kw - 1) * g->dw; /* ox * sw may go up to this */
    int64_t lo = (g->pl + sw - 1) / sw, hi = last >= 0 ? last / sw + 1 : 0;
    lo = lo < ox0 ? ox0 : lo > ox1 ? ox1 : lo;
    hi = hi > ox1 ? ox1 : hi < lo ? lo : hi;
    for (int64_t ky = 0; ky < g->kh; ky++) {
        int64_t iy = oy * g->sh - g->pt + ky * g->dh;
        float *d = dst + ky * run - ox0 * ld; /* d + ox * ld: pixel ox's run */
        if (iy < 0 || iy >= g->h) {
            for (int64_t ox = ox0; ox < ox1; ox++)
                zero_floats(d + ox * ld, run);
            continue;
        }
        const float *src = x + (n * g->h + iy) * g->w * c;
        for (int64_t ox = ox0; ox < lo; ox++)
            im2col_edge(g, src, ox, d + ox * ld);
        if (g->dw == 1) {
            copy_runs(d + lo * ld, ld, src + (lo * sw - g->pl) * c, sw * c, hi - lo, run);
        } else {
            for (int64_t ox = lo; ox < hi; ox++)
                for (int64_t kx = 0; kx < g->kw; kx++)
                    copy_floats(d + ox * ld + kx * c, src + (ox * sw - g->pl + kx * g->dw) * c, c);
        }
        for (int64_t ox = hi; ox < ox1; ox++)
            im2col_edge(g, src, ox, d + ox * ld);
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
        int t = 0, count = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        count = omp_get_num_threads();
#endif
        /* Rows [lo, hi) of this thread, one image row of output pixels (or its part) at a time. */
        int64_t lo = rows * t / count, hi = rows * (t + 1) / count;
        for (int64_t i = lo; i < hi;) {
            int64_t r = row0 + i, ox = r % ow, oy = r / ow % oh, n = r / ow / oh;
            int64_t end = ox + (hi - i) < ow ? ox + (hi - i) : ow;
            im2col_segment(&g, n, oy, ox, end, x, cols + i * ldcols, ldcols);
            i += end - ox;
        }
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
