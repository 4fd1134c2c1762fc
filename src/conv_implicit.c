/* Stride-1 NHWC convolution as implicit GEMM: the direct GEMM micro-kernels (gemm_internal.h) read the image
 * where it is, so no column matrix is built.
 *
 * Forward. Tap t = (ky, kx) of output pixel (n, oy, ox) reads the c channels of input pixel
 * (n, oy - pt + ky*dh, ox - pl + kx*dw). Along one output row, consecutive pixels read input pixels c floats
 * apart: the micro-kernel's A operand a[i * rs_a + p * cs_a] with rs_a = c, cs_a = 1, against B = the tap's
 * kernel slice (c x filters). The taps run in (ky, kx) order, load_c chaining them, so every output element is
 * one sequential FMA chain over (ky, kx, ch): the chain im2col + GEMM computes (conv.c), hence the same bits.
 * A tap whose input row lies in the top/bottom padding reads a row of zeros (rs_a = 0), as im2col's zero
 * columns. The few pixels whose window crosses the left/right edge are gathered into a small per-thread
 * buffer (their im2col rows, a column of consecutive output rows at a time) and run as one k-long chain.
 * Threads take blocks of output rows as they come free.
 *
 * Input gradient. dx of a stride-1 convolution is the stride-1 correlation of dz with the kernel flipped in
 * (ky, kx) and transposed in (c_in, c_out), padded by (kh - 1) * dh - pt on top (likewise left): the same
 * forward driver, no dcols, no col2im. Given the output of a ReLU that x came from, the tiles are masked by it
 * while in cache: dx is then that ReLU's input gradient.
 *
 * The kernel gradient is in conv_implicit_dkernel.c.
 *
 * On AVX-512 the tiles run on the segmented kernel of conv_implicit_avx512.c (accumulators in registers
 * across a whole chain of segments); elsewhere on one direct GEMM kernel call per segment, chained by load_c.
 */
#include "fnn.h"
#include "act_internal.h"
#include "conv_implicit_internal.h"
#include "pool_internal.h"

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif


typedef struct {
    conv_geom g;
    const float *x, *kernel, *bias;
    int act;
    float alpha;
    float *y;             /* NULL: only the pooled map is wanted */
    float *pooled;        /* the 2 x 2 stride-2 max pool of the output, or NULL */
    int32_t *argmax;      /* with pooled: each max's index in its image of the output, as pool.c (or NULL) */
    const float *relu_y;  /* or NULL: y's shape; y is zeroed where relu_y <= 0 (dx through a ReLU before) */
    double *row_sums;     /* or NULL (act linear): per output row, the column sums of y (f doubles a row) */
    fnn_gemm_direct dk;
    int segmented;      /* run tiles on the AVX-512 segmented kernel (else direct-kernel calls chained) */
    const float *zeros; /* kw * c zeros: the A rows of a tap in the top/bottom padding */
} fwd_problem;

static inline int64_t round_up(int64_t x, int64_t unit) { return (x + unit - 1) / unit * unit; }

/* sums (+)= the tile's stored values in double as fnn_conv_seg_tile_avx512 adds them: sums_ld 0, the column
 * sums (0 + row 0 + row 1 ...) added once; else row i into sums + i * sums_ld. */
static void tile_sums(const float *c, int64_t ldc, int64_t mr, int64_t nr, double *sums, int64_t sums_ld)
{
    if (sums_ld == 0) {
        for (int64_t j = 0; j < nr; j++) {
            double part = 0.0;
            for (int64_t i = 0; i < mr; i++)
                part += c[i * ldc + j];
            sums[j] += part;
        }
        return;
    }
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < nr; j++)
            sums[i * sums_ld + j] += c[i * ldc + j];
}

/* relu_y's part for the tile at c (in y: relu_y goes with dx, never with pooling). */
static inline const float *tile_relu_y(const fwd_problem *p, const float *c)
{
    return p->relu_y ? p->relu_y + (c - p->y) : NULL;
}

/* Activations the micro-kernels do not apply in registers run on the finished tile, and relu_y's mask and
 * the sums when the segmented kernel did not apply them. */
static inline void finish_tile(const fwd_problem *p, float *c, int64_t ldc, int64_t mr, int64_t nr, double *sums,
                               int64_t sums_ld)
{
    if (p->act != FNN_ACT_LINEAR && p->act != FNN_ACT_RELU && p->act != FNN_ACT_LEAKY_RELU)
        fnn_act_block(mr, nr, c, ldc, NULL, p->act, p->alpha);
    if (p->relu_y && !p->segmented) {
        const float *m = tile_relu_y(p, c);
        for (int64_t i = 0; i < mr; i++)
            for (int64_t j = 0; j < nr; j++)
                c[i * ldc + j] = m[i * ldc + j] > 0.0f ? c[i * ldc + j] : 0.0f;
    }
    if (sums && !p->segmented)
        tile_sums(c, ldc, mr, nr, sums, sums_ld);
}

/* The im2col row of output pixel (n, oy, ox) into d (kh * kw * c floats, zeros in the padding). */
static void gather(const conv_geom *g, const float *x, int64_t n, int64_t oy, int64_t ox, float *d)
{
    for (int64_t ky = 0; ky < g->kh; ky++) {
        int64_t iy = oy - g->pt + ky * g->dh;
        for (int64_t kx = 0; kx < g->kw; kx++, d += g->c) {
            int64_t ix = ox - g->pl + kx * g->dw;
            if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                memset(d, 0, (size_t)g->c * sizeof(float));
            else
                memcpy(d, x + ((n * g->h + iy) * g->w + ix) * g->c, (size_t)g->c * sizeof(float));
        }
    }
}

/* Column ox, whose windows cross the left or right edge, of `count` consecutive output rows from r0 (stored
 * from yrows on): their im2col rows are gathered into buf and run as one k-long chain each (output pixels
 * ow * f floats apart). */
static void edge_tile(const fwd_problem *p, int64_t r0, int64_t count, int64_t ox, float *buf, float *yrows)
{
    const conv_geom *g = &p->g;
    int64_t k = g->kh * g->kw * g->c, ldc = g->ow * g->f;
    for (int64_t i = 0; i < count; i++)
        gather(g, p->x, (r0 + i) / g->oh, (r0 + i) % g->oh, ox, buf + i * k);
    for (int64_t j = 0; j < g->f; j += p->dk.nr) {
        int64_t nr = conv_min64(p->dk.nr, g->f - j);
        fnn_tile_epilogue ep = {0, p->bias ? p->bias + j : NULL, p->act, p->alpha};
        float *c = yrows + ox * g->f + j;
        fnn_conv_seg seg = {buf, p->kernel + j, k, k};
        double *sums = p->row_sums ? p->row_sums + r0 * g->f + j : NULL; /* a row a pixel */
        conv_tile_chain(p->segmented, &p->dk, 1, &seg, 1, g->f, c, ldc, count, nr, &ep, tile_relu_y(p, c), sums,
                        g->f);
        finish_tile(p, c, ldc, count, nr, sums, g->f);
    }
}

/* Output pixels [ox0, ox0 + count) of a row whose windows lie inside the image width: tap after tap. Without
 * column dilation a kernel row's taps read kw * c consecutive floats per pixel (the (kx, ch) order of the
 * columns), so they run as one segment per kernel row. */
static void interior_tile(const fwd_problem *p, int64_t n, int64_t oy, int64_t ox0, int64_t count, float *yrow,
                          fnn_conv_seg *seg, double *row_sums)
{
    const conv_geom *g = &p->g;
    int64_t per_row = g->dw == 1 ? 1 : g->kw, n_seg = g->kh * per_row, kc = g->kw * g->c / per_row;
    for (int64_t s = 0; s < n_seg; s++) {
        int64_t ky = s / per_row, kx = s % per_row, iy = oy - g->pt + ky * g->dh;
        int inside = iy >= 0 && iy < g->h;
        seg[s].a = inside ? p->x + ((n * g->h + iy) * g->w + ox0 - g->pl + kx * g->dw) * g->c : p->zeros;
        seg[s].rs_a = inside ? g->c : 0;
        seg[s].kc = kc;
    }
    for (int64_t j = 0; j < g->f; j += p->dk.nr) {
        int64_t nr = conv_min64(p->dk.nr, g->f - j);
        float *c = yrow + ox0 * g->f + j;
        for (int64_t s = 0; s < n_seg; s++)
            seg[s].b = p->kernel + s * kc * g->f + j;
        fnn_tile_epilogue ep = {0, p->bias ? p->bias + j : NULL, p->act, p->alpha};
        double *sums = row_sums ? row_sums + j : NULL; /* all pixels in one row */
        conv_tile_chain(p->segmented, &p->dk, n_seg, seg, 1, g->f, c, g->f, count, nr, &ep, tile_relu_y(p, c),
                        sums, 0);
        finish_tile(p, c, g->f, count, nr, sums, 0);
    }
}

/* Output rows [r0, r1) (r = n * oh + oy) into dst (row r at dst + (r - r0) * ow * f). */
static void forward_rows(const fwd_problem *p, int64_t r0, int64_t r1, float *dst, float *buf, fnn_conv_seg *seg)
{
    const conv_geom *g = &p->g;
    int64_t mr = p->dk.mr, ow = g->ow;
    /* Pixels [lo, hi) have every kx tap inside the width. */
    int64_t lo = conv_min64(conv_max64(g->pl, 0), ow);
    int64_t hi = conv_min64(conv_max64(g->w + g->pl - (g->kw - 1) * g->dw, lo), ow);
    /* Interior tiles of balanced heights: 30 pixels as 10 + 10 + 10 rather than 12 + 12 + 6. */
    int64_t span = hi - lo, tiles = (span + mr - 1) / mr;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t s = 0; s < tiles; s++) {
            int64_t a = lo + span * s / tiles, b = lo + span * (s + 1) / tiles;
            interior_tile(p, r / g->oh, r % g->oh, a, b - a, dst + (r - r0) * ow * g->f, seg,
                          p->row_sums ? p->row_sums + r * g->f : NULL);
        }
    for (int64_t ox = 0; ox < ow; ox++) { /* the edge columns, [0, lo) and [hi, ow) */
        if (ox == lo)
            ox = hi;
        if (ox >= ow)
            break;
        for (int64_t r = r0; r < r1; r += mr)
            edge_tile(p, r, conv_min64(mr, r1 - r), ox, buf, dst + (r - r0) * ow * g->f);
    }
}

/* The pooled rows of output rows [r0, r1) (even r0 and r1; oh even, so no pair straddles two images), the
 * output rows in src as forward_rows wrote them. */
static void pool_rows(const fwd_problem *p, int64_t r0, int64_t r1, const float *src)
{
    const conv_geom *g = &p->g;
    int64_t row = g->ow * g->f, prow = row / 2;
    for (int64_t r = r0; r < r1; r += 2)
        fnn_maxpool2x2_rows(g->ow, g->f, src + (r - r0) * row, p->pooled + r / 2 * prow,
                            p->argmax ? p->argmax + r / 2 * prow : NULL, (int32_t)(r % g->oh * row));
}

/* The forward driver, for any pads (negative ones too: the input-gradient correlation may have them). With
 * pooled, blocks hold whole pairs of rows, pooled as soon as they are made (from a per-thread block of rows
 * in cache when y is NULL, so the full-resolution map is never written). */
static int conv_run(const conv_geom *g, const float *x, const float *kernel, const float *bias, int act, float alpha,
                    float *y, float *pooled, int32_t *argmax, const float *relu_y, double *row_sums,
                    int winograd, int n_threads)
{
    int isa = fnn_isa_current();
    fwd_problem p = {*g,     x,      kernel, bias,     act, alpha, y,
                     pooled, argmax, relu_y, row_sums, fnn_gemm_fit_width(fnn_gemm_kernels_for(isa), g->f),
                     0,      NULL};
    p.segmented = conv_segmented_for(isa, &p.dk);
    winograd = winograd && conv_winograd_fits(isa, &p.dk, g);
    int64_t k = g->kh * g->kw * g->c, rows = g->batch * g->oh, per_thread = round_up(p.dk.mr * k, 16);
    int nt = conv_threads_for(2.0 * rows * g->ow * k * g->f, n_threads, rows);
    /* Rows per block: an edge tile's height (mr), fewer when that would leave a thread idle; Winograd blocks
     * hold pairs of rows, about CONV_WINOGRAD_TILES tiles. */
    int64_t block = conv_max64(1, conv_min64(winograd ? 2 * ((CONV_WINOGRAD_TILES + g->ow / 2 - 1) / (g->ow / 2))
                                                      : p.dk.mr,
                                             rows / (4 * nt)));
    if (pooled || winograd)
        block = round_up(block, 2);
    if (winograd)
        per_thread = round_up(fnn_conv_winograd_work(g), 16);
    int64_t n_blocks = (rows + block - 1) / block, own_rows = pooled && !y ? round_up(block * g->ow * g->f, 16) : 0;
    float *zeros = calloc((size_t)(g->kw * g->c), sizeof(float)); /* >= c: Winograd's padding too */
    float *buf = malloc((size_t)((per_thread + own_rows) * nt) * sizeof(float));
    fnn_conv_seg *segs = malloc((size_t)(g->kh * g->kw * nt) * sizeof(fnn_conv_seg));
    float *u = winograd ? malloc((size_t)(16 * g->c * g->f) * sizeof(float)) : NULL;
    if (!zeros || !buf || !segs || (winograd && !u)) {
        free(zeros);
        free(buf);
        free(segs);
        free(u);
        return FNN_ENOMEM;
    }
    p.zeros = zeros;
    conv_winograd wp = {*g, x, u, bias, zeros, act, alpha, relu_y, row_sums, p.dk};
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        unsigned fpu = fnn_fpu_enter();
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        /* Blocks of rows are independent and give the same bytes on any thread: taken as threads come free
         * (a thread the OS holds back costs its blocks, not half the layer). */
        float *gather_buf = buf + t * (per_thread + own_rows), *block_rows = gather_buf + per_thread;
        if (winograd) { /* the transformed kernel, shared out: the blocks wait for all of it */
            int team = 1;
#ifdef _OPENMP
            team = omp_get_num_threads();
#endif
            int64_t vectors = g->c * g->f / 16;
            fnn_conv_winograd_kernel_avx512(g->c, g->f, kernel, u, vectors * t / team, vectors * (t + 1) / team);
#pragma omp barrier
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t i = 0; i < n_blocks; i++) {
            int64_t r0 = i * block, r1 = conv_min64(rows, r0 + block);
            float *dst = y ? y + r0 * g->ow * g->f : block_rows;
            if (winograd)
                fnn_conv_winograd_rows_avx512(&wp, r0, r1, dst, gather_buf);
            else
                forward_rows(&p, r0, r1, dst, gather_buf, segs + t * g->kh * g->kw);
            if (pooled)
                pool_rows(&p, r0, r1, dst);
        }
        fnn_fpu_leave(fpu);
    }
    free(zeros);
    free(buf);
    free(segs);
    free(u);
    return FNN_OK;
}

int fnn_conv2d_winograd_applies(int64_t c, int64_t kh, int64_t kw, int64_t dh, int64_t dw, int64_t oh, int64_t ow,
                                 int64_t filters)
{
    conv_geom g = {1, oh, ow, c, kh, kw, 0, 0, dh, dw, oh, ow, filters};
    int isa = fnn_isa_current();
    fnn_gemm_direct dk = fnn_gemm_fit_width(fnn_gemm_kernels_for(isa), filters);
    return conv_winograd_fits(isa, &dk, &g);
}

int fnn_conv2d_implicit_forward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw,
                                    int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t oh, int64_t ow,
                                    int64_t filters, const float *x, const float *kernel, const float *bias,
                                    int act, float act_alpha, float *y, float *pooled, int32_t *argmax,
                                    int winograd, int n_threads)
{
    if (conv_geom_bad(batch, h, w, c, kh, kw, pt, pl, dh, dw, oh, ow, filters) || act < FNN_ACT_LINEAR
        || act > FNN_ACT_GELU || (argmax && !pooled)
        || (pooled && (oh % 2 || ow % 2 || oh * ow * filters > INT32_MAX)))
        return FNN_EBADARG;
    if (batch == 0)
        return FNN_OK;
    if (!x || !kernel || (!y && !pooled))
        return FNN_EBADARG;
    conv_geom g = {batch, h, w, c, kh, kw, pt, pl, dh, dw, oh, ow, filters};
    return conv_run(&g, x, kernel, bias, act, act_alpha, y, pooled, argmax, NULL, NULL, winograd, n_threads);
}

/* flipped[kh-1-ky, kw-1-kx, co, ci] = kernel[ky, kx, ci, co], or NULL when out of memory. */
static float *flipped_kernel(int64_t kh, int64_t kw, int64_t c, int64_t filters, const float *kernel)
{
    float *flipped = malloc((size_t)(kh * kw * c * filters) * sizeof(float));
    for (int64_t t = 0; flipped && t < kh * kw; t++) {
        const float *src = kernel + t * c * filters;
        float *dst = flipped + (kh * kw - 1 - t) * c * filters;
        for (int64_t ci = 0; ci < c; ci++)
            for (int64_t co = 0; co < filters; co++)
                dst[co * c + ci] = src[ci * filters + co];
    }
    return flipped;
}

/* The input gradient of images [n0, n1) (the correlation of dz with the flipped kernel), each image row's
 * sums (its tiles' in a fixed order: interior, then edge columns, whatever the blocks) into row_sums. */
static int data_rows(const conv_geom *f, int64_t n0, int64_t n1, const float *dz, const float *flipped,
                     const float *relu_y, float *dx, double *row_sums, int winograd, int n_threads)
{
    conv_geom g = {n1 - n0, f->oh, f->ow, f->f, f->kh, f->kw, (f->kh - 1) * f->dh - f->pt,
                   (f->kw - 1) * f->dw - f->pl, f->dh, f->dw, f->h, f->w, f->c};
    int64_t in = f->h * f->w * f->c;
    return conv_run(&g, dz + n0 * f->oh * f->ow * f->f, flipped, NULL, FNN_ACT_LINEAR, 0.0f, dx + n0 * in, NULL,
                    NULL, relu_y ? relu_y + n0 * in : NULL, row_sums ? row_sums + n0 * f->h * f->c : NULL,
                    winograd, n_threads);
}

/* dx_colsum[ch] = the row sums in row order. */
static void colsum_from_rows(int64_t rows, int64_t c, const double *row_sums, float *dx_colsum)
{
    for (int64_t ch = 0; ch < c; ch++) {
        double total = 0.0;
        for (int64_t r = 0; r < rows; r++)
            total += row_sums[r * c + ch];
        dx_colsum[ch] = (float)total;
    }
}

int fnn_conv2d_implicit_backward_data_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw,
                                          int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t oh, int64_t ow,
                                          int64_t filters, const float *dz, const float *kernel,
                                          const float *relu_y, float *dx, float *dx_colsum, int winograd,
                                          int n_threads)
{
    return fnn_conv2d_implicit_backward_f32(batch, h, w, c, kh, kw, pt, pl, dh, dw, oh, ow, filters, NULL, dz,
                                            kernel, NULL, 0, relu_y, dx, dx_colsum, winograd, n_threads);
}

int fnn_conv2d_implicit_backward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw,
                                     int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t oh, int64_t ow,
                                     int64_t filters, const float *x, const float *dz, const float *kernel,
                                     float *dkernel, int accumulate, const float *relu_y, float *dx,
                                     float *dx_colsum, int winograd, int n_threads)
{
    if (conv_geom_bad(batch, h, w, c, kh, kw, pt, pl, dh, dw, oh, ow, filters) || (dx_colsum && !dx))
        return FNN_EBADARG;
    if (batch == 0 && !dkernel)
        return FNN_OK;
    if (batch > 0 && (!dz || (dx && !kernel) || (dkernel && !x)))
        return FNN_EBADARG;
    conv_geom g = {batch, h, w, c, kh, kw, pt, pl, dh, dw, oh, ow, filters};
    float *flipped = batch > 0 && dx ? flipped_kernel(kh, kw, c, filters, kernel) : NULL;
    double *row_sums = dx_colsum ? calloc((size_t)(batch * h * c + 1), sizeof(double)) : NULL;
    int status = (batch > 0 && dx && !flipped) || (dx_colsum && !row_sums) ? FNN_ENOMEM : FNN_OK;
    /* Images a chunk: with both gradients, their x, dz and dx stay in L3 from one pass to the other (cnn32's
     * second convolution at B256 has 33 MB maps). A kernel-gradient chunk continues its tiles' chains, so the
     * bits are those of one pass. */
    int64_t per_image = (h * w * c * 2 + oh * ow * filters) * (int64_t)sizeof(float);
    int64_t chunk = dkernel && dx ? conv_max64(1, CONV_BACKWARD_CHUNK_BYTES / per_image) : conv_max64(batch, 1);
    for (int64_t n0 = 0; status == FNN_OK && n0 < conv_max64(batch, 1); n0 += chunk) {
        int64_t n1 = conv_min64(batch, n0 + chunk);
        if (dkernel)
            status = fnn_conv2d_implicit_backward_kernel_f32(
                n1 - n0, h, w, c, kh, kw, pt, pl, dh, dw, oh, ow, filters, x ? x + n0 * h * w * c : NULL,
                dz ? dz + n0 * oh * ow * filters : NULL, dkernel, accumulate || n0 > 0, n_threads);
        if (status == FNN_OK && dx && n1 > n0)
            status = data_rows(&g, n0, n1, dz, flipped, relu_y, dx, row_sums, winograd, n_threads);
    }
    if (status == FNN_OK && dx_colsum)
        colsum_from_rows(batch * h, c, row_sums, dx_colsum);
    free(row_sums);
    free(flipped);
    return status;
}
