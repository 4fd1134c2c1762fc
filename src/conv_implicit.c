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
 * buffer (their im2col rows) and run as one k-long chain. Threads take whole output rows.
 *
 * Input gradient. dx of a stride-1 convolution is the stride-1 correlation of dz with the kernel flipped in
 * (ky, kx) and transposed in (c_in, c_out), padded by (kh - 1) * dh - pt on top (likewise left): the same
 * forward driver, no dcols, no col2im.
 *
 * Kernel gradient. dW[t][ci, co] = sum over output pixels of x[pixel shifted by t, ci] * dz[pixel, co]: per
 * output row a micro-kernel call with A(i, p) = x[(pixel p) * c + ci0 + i] (rs_a = 1, cs_a = c) and
 * B = dz's row, over the pixels whose input is inside the image (the others contribute zero). Each dW tile
 * chains over output rows in order, so its sum has a fixed order; threads own whole tiles, and sweep the
 * pixels block by block (a block of rows stays in L2 while every tile of the thread reads it).
 */
#include "fnn.h"
#include "act_internal.h"
#include "gemm_internal.h"

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define PARALLEL_MIN_FLOPS 2e6     /* below this, one thread */
#define DKERNEL_BLOCK_BYTES (256 << 10) /* input + dz rows swept at a time by the kernel gradient */

typedef struct {
    int64_t batch, h, w, c, kh, kw, pt, pl, dh, dw, oh, ow, f; /* f: output channels */
} geom;

typedef struct {
    geom g;
    const float *x, *kernel, *bias;
    int act;
    float alpha;
    float *y;
    fnn_gemm_direct dk;
    const float *zeros; /* c zeros: the A rows of a tap in the top/bottom padding */
} fwd_problem;

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t round_up(int64_t x, int64_t unit) { return (x + unit - 1) / unit * unit; }

static const fnn_gemm_kernels *kernels_for(int isa)
{
    switch (isa) {
    case FNN_ISA_AVX512: return &fnn_gemm_kernels_avx512;
    case FNN_ISA_AVX2: return &fnn_gemm_kernels_avx2;
    default: return &fnn_gemm_kernels_generic;
    }
}

/* The direct kernel wasting the fewest columns on n (ties: the wider), as the GEMM fits its direct path. */
static fnn_gemm_direct fit_width(const fnn_gemm_kernels *kr, int64_t n)
{
    if (n <= kr->direct[0].nr || kr->n_direct == 1)
        return kr->direct[0];
    fnn_gemm_direct best = kr->direct[1];
    for (int v = 2; v < kr->n_direct; v++)
        if (round_up(n, kr->direct[v].nr) <= round_up(n, best.nr))
            best = kr->direct[v];
    return best;
}

/* Activations the micro-kernels do not apply in registers run on the finished tile. */
static inline void finish_tile(const fwd_problem *p, float *c, int64_t mr, int64_t nr)
{
    if (p->act != FNN_ACT_LINEAR && p->act != FNN_ACT_RELU && p->act != FNN_ACT_LEAKY_RELU)
        fnn_act_block(mr, nr, c, p->g.f, NULL, p->act, p->alpha);
}

/* The im2col rows of `count` pixels (n, oy, ox0 ..) into buf (kh * kw * c floats each, zeros in the padding). */
static void gather(const geom *g, const float *x, int64_t n, int64_t oy, int64_t ox0, int64_t count, float *buf)
{
    int64_t k = g->kh * g->kw * g->c;
    for (int64_t i = 0; i < count; i++)
        for (int64_t ky = 0; ky < g->kh; ky++) {
            int64_t iy = oy - g->pt + ky * g->dh;
            for (int64_t kx = 0; kx < g->kw; kx++) {
                int64_t ix = ox0 + i - g->pl + kx * g->dw;
                float *d = buf + i * k + (ky * g->kw + kx) * g->c;
                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                    memset(d, 0, (size_t)g->c * sizeof(float));
                else
                    memcpy(d, x + ((n * g->h + iy) * g->w + ix) * g->c, (size_t)g->c * sizeof(float));
            }
        }
}

/* Output pixels [ox0, ox0 + count) of a row whose windows cross the left or right edge. */
static void edge_tile(const fwd_problem *p, int64_t n, int64_t oy, int64_t ox0, int64_t count, float *yrow,
                      float *buf)
{
    const geom *g = &p->g;
    int64_t k = g->kh * g->kw * g->c;
    gather(g, p->x, n, oy, ox0, count, buf);
    for (int64_t j = 0; j < g->f; j += p->dk.nr) {
        int64_t nr = min64(p->dk.nr, g->f - j);
        fnn_tile_epilogue ep = {0, p->bias ? p->bias + j : NULL, p->act, p->alpha};
        float *c = yrow + ox0 * g->f + j;
        p->dk.fn(k, buf, k, 1, p->kernel + j, g->f, c, g->f, count, nr, &ep);
        finish_tile(p, c, count, nr);
    }
}

/* Output pixels [ox0, ox0 + count) of a row whose windows lie inside the image width: tap after tap. */
static void interior_tile(const fwd_problem *p, int64_t n, int64_t oy, int64_t ox0, int64_t count, float *yrow)
{
    const geom *g = &p->g;
    int64_t taps = g->kh * g->kw;
    for (int64_t j = 0; j < g->f; j += p->dk.nr) {
        int64_t nr = min64(p->dk.nr, g->f - j);
        float *c = yrow + ox0 * g->f + j;
        for (int64_t t = 0; t < taps; t++) {
            int64_t ky = t / g->kw, kx = t % g->kw, iy = oy - g->pt + ky * g->dh;
            int inside = iy >= 0 && iy < g->h;
            const float *a = inside ? p->x + ((n * g->h + iy) * g->w + ox0 - g->pl + kx * g->dw) * g->c : p->zeros;
            int last = t == taps - 1;
            fnn_tile_epilogue ep = {t > 0, last && p->bias ? p->bias + j : NULL, last ? p->act : FNN_ACT_LINEAR,
                                    p->alpha};
            p->dk.fn(g->c, a, inside ? g->c : 0, 1, p->kernel + t * g->c * g->f + j, g->f, c, g->f, count, nr, &ep);
        }
        finish_tile(p, c, count, nr);
    }
}

static void forward_row(const fwd_problem *p, int64_t n, int64_t oy, float *buf)
{
    const geom *g = &p->g;
    int64_t mr = p->dk.mr, ow = g->ow;
    /* Pixels [lo, hi) have every kx tap inside the width. */
    int64_t lo = min64(max64(g->pl, 0), ow), hi = min64(max64(g->w + g->pl - (g->kw - 1) * g->dw, lo), ow);
    float *yrow = p->y + (n * g->oh + oy) * ow * g->f;
    for (int64_t ox = 0; ox < lo; ox += mr)
        edge_tile(p, n, oy, ox, min64(mr, lo - ox), yrow, buf);
    for (int64_t ox = hi; ox < ow; ox += mr)
        edge_tile(p, n, oy, ox, min64(mr, ow - ox), yrow, buf);
    /* Interior tiles of balanced heights: 30 pixels as 10 + 10 + 10 rather than 12 + 12 + 6. */
    int64_t span = hi - lo, tiles = (span + mr - 1) / mr;
    for (int64_t s = 0; s < tiles; s++) {
        int64_t a = lo + span * s / tiles, b = lo + span * (s + 1) / tiles;
        interior_tile(p, n, oy, a, b - a, yrow);
    }
}

static int threads_for(double flops, int n_threads, int64_t units)
{
    int nt = n_threads < 1 ? 1 : n_threads;
    if (flops < PARALLEL_MIN_FLOPS)
        nt = 1;
    return units < nt ? (int)(units > 0 ? units : 1) : nt;
}

/* The forward driver, for any pads (negative ones too: the input-gradient correlation may have them). */
static int conv_run(const geom *g, const float *x, const float *kernel, const float *bias, int act, float alpha,
                    float *y, int n_threads)
{
    fwd_problem p = {*g, x, kernel, bias, act, alpha, y, fit_width(kernels_for(fnn_isa_current()), g->f), NULL};
    int64_t k = g->kh * g->kw * g->c, rows = g->batch * g->oh, per_thread = round_up(p.dk.mr * k, 16);
    int nt = threads_for(2.0 * rows * g->ow * k * g->f, n_threads, rows);
    float *zeros = calloc((size_t)g->c, sizeof(float));
    float *buf = malloc((size_t)(per_thread * nt) * sizeof(float));
    if (!zeros || !buf) {
        free(zeros);
        free(buf);
        return FNN_ENOMEM;
    }
    p.zeros = zeros;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        unsigned fpu = fnn_fpu_enter();
        int t = 0, count = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        count = omp_get_num_threads();
#endif
        for (int64_t r = rows * t / count; r < rows * (t + 1) / count; r++)
            forward_row(&p, r / g->oh, r % g->oh, buf + t * per_thread);
        fnn_fpu_leave(fpu);
    }
    free(zeros);
    free(buf);
    return FNN_OK;
}

static int geom_bad(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t pt,
                    int64_t pl, int64_t dh, int64_t dw, int64_t oh, int64_t ow, int64_t filters)
{
    return batch < 0 || h < 1 || w < 1 || c < 1 || kh < 1 || kw < 1 || pt < 0 || pl < 0 || dh < 1 || dw < 1
           || oh < 1 || ow < 1 || filters < 1;
}

int fnn_conv2d_implicit_forward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw,
                                    int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t oh, int64_t ow,
                                    int64_t filters, const float *x, const float *kernel, const float *bias,
                                    int act, float act_alpha, float *y, int n_threads)
{
    if (geom_bad(batch, h, w, c, kh, kw, pt, pl, dh, dw, oh, ow, filters) || act < FNN_ACT_LINEAR
        || act > FNN_ACT_GELU)
        return FNN_EBADARG;
    if (batch == 0)
        return FNN_OK;
    if (!x || !kernel || !y)
        return FNN_EBADARG;
    geom g = {batch, h, w, c, kh, kw, pt, pl, dh, dw, oh, ow, filters};
    return conv_run(&g, x, kernel, bias, act, act_alpha, y, n_threads);
}

int fnn_conv2d_implicit_backward_data_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw,
                                          int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t oh, int64_t ow,
                                          int64_t filters, const float *dz, const float *kernel, float *dx,
                                          int n_threads)
{
    if (geom_bad(batch, h, w, c, kh, kw, pt, pl, dh, dw, oh, ow, filters))
        return FNN_EBADARG;
    if (batch == 0)
        return FNN_OK;
    if (!dz || !kernel || !dx)
        return FNN_EBADARG;
    /* flipped[kh-1-ky, kw-1-kx, co, ci] = kernel[ky, kx, ci, co] */
    float *flipped = malloc((size_t)(kh * kw * c * filters) * sizeof(float));
    if (!flipped)
        return FNN_ENOMEM;
    for (int64_t t = 0; t < kh * kw; t++) {
        const float *src = kernel + t * c * filters;
        float *dst = flipped + (kh * kw - 1 - t) * c * filters;
        for (int64_t ci = 0; ci < c; ci++)
            for (int64_t co = 0; co < filters; co++)
                dst[co * c + ci] = src[ci * filters + co];
    }
    geom g = {batch, oh, ow, filters, kh, kw, (kh - 1) * dh - pt, (kw - 1) * dw - pl, dh, dw, h, w, c};
    int status = conv_run(&g, dz, flipped, NULL, FNN_ACT_LINEAR, 0.0f, dx, n_threads);
    free(flipped);
    return status;
}

/* One dW tile (tap t, input channels [ci0, ci0 + mr), filters [co0, co0 + nr)) over output rows [r0, r1). */
static void dkernel_tile(const geom *g, const fnn_gemm_direct *dk, const float *x, const float *dz, float *dw,
                         int64_t t, int64_t ci0, int64_t mr, int64_t co0, int64_t nr, int64_t r0, int64_t r1)
{
    int64_t ky = t / g->kw, kx = t % g->kw;
    int64_t ox0 = max64(0, g->pl - kx * g->dw), ox1 = min64(g->ow, g->w + g->pl - kx * g->dw);
    if (ox1 <= ox0)
        return;
    float *c = dw + (t * g->c + ci0) * g->f + co0;
    fnn_tile_epilogue ep = {1, NULL, FNN_ACT_LINEAR, 0.0f};
    for (int64_t r = r0; r < r1; r++) {
        int64_t n = r / g->oh, oy = r % g->oh, iy = oy - g->pt + ky * g->dh;
        if (iy < 0 || iy >= g->h)
            continue;
        const float *a = x + ((n * g->h + iy) * g->w + ox0 - g->pl + kx * g->dw) * g->c + ci0;
        const float *b = dz + (r * g->ow + ox0) * g->f + co0;
        dk->fn(ox1 - ox0, a, 1, g->c, b, g->f, c, g->f, mr, nr, &ep);
    }
}

int fnn_conv2d_implicit_backward_kernel_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t kh,
                                            int64_t kw, int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t oh,
                                            int64_t ow, int64_t filters, const float *x, const float *dz,
                                            float *dkernel, int accumulate, int n_threads)
{
    if (geom_bad(batch, h, w, c, kh, kw, pt, pl, dh, dw, oh, ow, filters))
        return FNN_EBADARG;
    if (!dkernel || (batch > 0 && (!x || !dz)))
        return FNN_EBADARG;
    geom g = {batch, h, w, c, kh, kw, pt, pl, dh, dw, oh, ow, filters};
    fnn_gemm_direct dk = fit_width(kernels_for(fnn_isa_current()), filters);
    int64_t ci_tiles = (c + dk.mr - 1) / dk.mr, co_tiles = (filters + dk.nr - 1) / dk.nr;
    int64_t tiles = kh * kw * ci_tiles * co_tiles, rows = batch * oh;
    int64_t block = max64(1, DKERNEL_BLOCK_BYTES / (int64_t)sizeof(float) / (w * c + ow * filters));
    int nt = threads_for(2.0 * rows * ow * kh * kw * c * filters, n_threads, tiles);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        unsigned fpu = fnn_fpu_enter();
        int t = 0, count = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        count = omp_get_num_threads();
#endif
        int64_t first = tiles * t / count, end = tiles * (t + 1) / count;
        /* tile index -> (tap, input-channel tile, filter tile); its mr x nr block of dW starts at zero */
#define TILE_COORDS(i)                                                                                    \
    int64_t tap = (i) / (ci_tiles * co_tiles), ci0 = (i) / co_tiles % ci_tiles * dk.mr,                   \
            co0 = (i) % co_tiles * dk.nr, mr = min64(dk.mr, c - ci0), nr = min64(dk.nr, filters - co0)
        if (!accumulate)
            for (int64_t i = first; i < end; i++) {
                TILE_COORDS(i);
                for (int64_t q = 0; q < mr; q++)
                    memset(dkernel + (tap * c + ci0 + q) * filters + co0, 0, (size_t)nr * sizeof(float));
            }
        for (int64_t r0 = 0; r0 < rows; r0 += block)
            for (int64_t i = first; i < end; i++) {
                TILE_COORDS(i);
                dkernel_tile(&g, &dk, x, dz, dkernel, tap, ci0, mr, co0, nr, r0, min64(rows, r0 + block));
            }
#undef TILE_COORDS
        fnn_fpu_leave(fpu);
    }
    return FNN_OK;
}
