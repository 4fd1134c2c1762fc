/* The small-channel convolution tiles for one instruction set. Included by conv_small_generic.c,
 * conv_small_avx2.c and conv_small_avx512.c, each after its `#pragma GCC target` and after defining CS_TABLE
 * (the table to fill) and CS_LANES (floats per vector).
 *
 * Two tile shapes, both holding two output rows in registers so each weight loaded serves both:
 * - pixel tiles (cout <= CS_PIXEL_MAX_COUT): a vector runs along CS_LANES output pixels of a row, one
 *   accumulator per (row, filter); each tap multiplies a shifted row of the planar input copy by one weight.
 *   Few filters so fill every lane (six filters of a 16-wide pixel-major GEMM tile would fill six).
 * - filter tiles (more filters): a vector runs along CS_LANES filters, one accumulator per (row, pixel) for
 *   8 pixels; each tap multiplies a broadcast input value by one vector of packed weights.
 * Every output is the FMA chain over (ky, kx, ci) from zero, then + bias and the activation (the GEMM
 * epilogue's order), whatever tile or thread computes it: the same bits for any thread count and lane count.
 * The 2 x 2 max pool keeps pool.c's rule (row-major scan, strict comparison: the first max wins).
 */
#if !defined(CS_TABLE) || !defined(CS_LANES)
#error "define CS_TABLE and CS_LANES before including conv_small_impl.h"
#endif

#include <string.h>

#include "conv_small.h"

#define INLINE static inline __attribute__((always_inline))
#define CS_PIXELS 8 /* pixels of a filter tile */

typedef float cs_vf __attribute__((vector_size(CS_LANES * 4)));
typedef int32_t cs_vi __attribute__((vector_size(CS_LANES * 4)));

INLINE cs_vf cs_load(const float *p)
{
    cs_vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

INLINE cs_vf cs_select(cs_vi take, cs_vf a, cs_vf b) /* take ? a : b, lane by lane */
{
    return (cs_vf)(((cs_vi)a & take) | ((cs_vi)b & ~take));
}

INLINE cs_vf cs_act(cs_vf x, int act, float alpha)
{
    const cs_vf zero = {0};
    if (act == FNN_ACT_RELU)
        return cs_select(x > zero, x, zero); /* NaN -> 0, as the GEMM epilogue */
    if (act == FNN_ACT_LEAKY_RELU)
        return cs_select(x > zero, x, x * alpha);
    return x;
}

/* The max of v[0..3] (a 2 x 2 window scanned row-major) with strict comparisons, so the first max wins, as in
 * pool.c; *arg gets its index: first, first + dx, first + dy, first + dx + dy for v[0], v[1], v[2], v[3]. */
INLINE cs_vf cs_vmax4_arg(const cs_vf v[4], cs_vi first, int32_t dx, int32_t dy, cs_vi *arg)
{
    cs_vf m = v[0];
    cs_vi at = first;
    const cs_vi step[4] = {first, first + dx, first + dy, first + dx + dy};
    for (int k = 1; k < 4; k++) {
        cs_vi take = v[k] > m;
        m = cs_select(take, v[k], m);
        at = (step[k] & take) | (at & ~take);
    }
    *arg = at;
    return m;
}

/* ---- pixel tiles ------------------------------------------------------------------------------------------- */
/* The even and odd lanes of a vector in its low half: the two columns of each 2 x 2 pool window. */
#if CS_LANES == 16
#define CS_IOTA {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
#define CS_EVEN {0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14}
#define CS_ODD {1, 3, 5, 7, 9, 11, 13, 15, 1, 3, 5, 7, 9, 11, 13, 15}
#elif CS_LANES == 8
#define CS_IOTA {0, 1, 2, 3, 4, 5, 6, 7}
#define CS_EVEN {0, 2, 4, 6, 0, 2, 4, 6}
#define CS_ODD {1, 3, 5, 7, 1, 3, 5, 7}
#else
#define CS_IOTA {0, 1, 2, 3}
#define CS_EVEN {0, 2, 0, 2}
#define CS_ODD {1, 3, 1, 3}
#endif

/* Rows oy (and oy + 1 when R = 2), pixels [ox0, ox0 + CS_LANES), filters [co0, co0 + CO) into t[r][co][lane];
 * with a pool (R = 2), the maxima of pooled pixels ox0 / 2 + [0, CS_LANES / 2) into p[co][lane] and, when
 * o->argmax, their indices ((iy * ow + ix) * cout + channel, as pool.c) into pi[co][lane]. */
INLINE void pixel_tile(const struct cs_geom *g, const float *xpad, const float *w, const float *bias, int64_t oy,
                       int64_t ox0, int64_t co0, const struct cs_out *o, float t[2][CS_PIXEL_MAX_COUT][CS_LANES],
                       float p[CS_PIXEL_MAX_COUT][CS_LANES], int32_t pi[CS_PIXEL_MAX_COUT][CS_LANES], const int R,
                       const int CO, const int ONE_CHANNEL)
{
    cs_vf acc[2][CS_PIXEL_MAX_COUT];
    for (int r = 0; r < R; r++)
        for (int co = 0; co < CO; co++)
            acc[r][co] = (cs_vf){0};
    const int64_t wp = g->wp, cin = g->cin, cout = g->cout;
    for (int64_t ky = 0; ky < g->kh; ky++)
        for (int64_t kx = 0; kx < g->kw; kx++) {
            const float *src = xpad + (oy + ky) * wp + ox0 + kx;
            const float *wt = w + (ky * g->kw + kx) * cin * cout + co0;
            for (int64_t ci = 0; ci < (ONE_CHANNEL ? 1 : cin); ci++, src += g->plane, wt += cout) {
                cs_vf x0 = cs_load(src), x1 = R > 1 ? cs_load(src + wp) : x0;
                for (int co = 0; co < CO; co++) {
                    acc[0][co] += x0 * wt[co];
                    if (R > 1)
                        acc[1][co] += x1 * wt[co];
                }
            }
        }
    for (int r = 0; r < R; r++)
        for (int co = 0; co < CO; co++) {
            cs_vf v = g->has_bias ? acc[r][co] + bias[co0 + co] : acc[r][co];
            acc[r][co] = cs_act(v, g->act, g->alpha);
            if (o->y)
                memcpy(t[r][co], &acc[r][co], sizeof acc[r][co]);
        }
    if (R > 1 && o->pooled) { /* pool.c's scan order: (0, 0), (0, 1), (1, 0), (1, 1) */
        const cs_vi even = CS_EVEN, odd = CS_ODD, lane = CS_IOTA;
        for (int co = 0; co < CO; co++) {
            cs_vf v[4] = {__builtin_shuffle(acc[0][co], even), __builtin_shuffle(acc[0][co], odd),
                          __builtin_shuffle(acc[1][co], even), __builtin_shuffle(acc[1][co], odd)};
            cs_vi first = (int32_t)((oy * g->ow + ox0) * cout + co0 + co) + lane * (int32_t)(2 * cout);
            cs_vi arg;
            cs_vf m = cs_vmax4_arg(v, first, (int32_t)cout, (int32_t)(g->ow * cout), &arg);
            memcpy(p[co], &m, sizeof m);
            if (o->argmax)
                memcpy(pi[co], &arg, sizeof arg);
        }
    }
}

INLINE void pixel_rows_co(const struct cs_geom *g, const float *xpad, const float *w, const float *bias, int64_t oy,
                          int64_t co0, const struct cs_out *o, const int R, const int CO, const int ONE_CHANNEL)
{
    float t[2][CS_PIXEL_MAX_COUT][CS_LANES], p[CS_PIXEL_MAX_COUT][CS_LANES];
    int32_t pi[CS_PIXEL_MAX_COUT][CS_LANES];
    const int64_t ow = g->ow, cout = g->cout;
    for (int64_t ox0 = 0; ox0 < ow; ox0 += CS_LANES) {
        pixel_tile(g, xpad, w, bias, oy, ox0, co0, o, t, p, pi, R, CO, ONE_CHANNEL);
        if (R > 1 && o->pooled) {
            int64_t pw = ow / 2, q0 = ox0 / 2, nq = pw - q0 < CS_LANES / 2 ? pw - q0 : CS_LANES / 2;
            int64_t at = ((oy / 2) * pw + q0) * cout + co0;
            for (int64_t j = 0; j < nq; j++, at += cout)
                for (int co = 0; co < CO; co++) {
                    o->pooled[at + co] = p[co][j];
                    if (o->argmax)
                        o->argmax[at + co] = pi[co][j];
                }
        }
        if (!o->y)
            continue;
        int64_t n = ow - ox0 < CS_LANES ? ow - ox0 : CS_LANES;
        for (int r = 0; r < R; r++) {
            float *dst = o->y + ((oy + r) * ow + ox0) * cout + co0;
            for (int64_t j = 0; j < n; j++, dst += cout)
                for (int co = 0; co < CO; co++)
                    dst[co] = t[r][co][j];
        }
    }
}

/* one input channel (a grey image): no channel loop around each tap */
#define CS_PIXEL_CASE(co)                                                                                          \
    case co:                                                                                                       \
        if (rows == 2 && g->cin == 1)                                                                              \
            pixel_rows_co(g, xpad, w, bias, oy, co0, o, 2, co, 1);                                                 \
        else if (rows == 2)                                                                                        \
            pixel_rows_co(g, xpad, w, bias, oy, co0, o, 2, co, 0);                                                 \
        else                                                                                                       \
            pixel_rows_co(g, xpad, w, bias, oy, co0, o, 1, co, 0);                                                 \
        break;

static void pixel_rows(const struct cs_geom *g, const float *xpad, const float *w, const float *bias, int64_t oy,
                       int rows, const struct cs_out *o)
{
    for (int64_t co0 = 0; co0 < g->cout; co0 += CS_PIXEL_MAX_COUT) {
        int64_t left = g->cout - co0;
        switch (left < CS_PIXEL_MAX_COUT ? left : CS_PIXEL_MAX_COUT) {
            CS_PIXEL_CASE(1)
            CS_PIXEL_CASE(2)
            CS_PIXEL_CASE(3)
            CS_PIXEL_CASE(4)
            CS_PIXEL_CASE(5)
            CS_PIXEL_CASE(6)
            CS_PIXEL_CASE(7)
            CS_PIXEL_CASE(8)
        }
    }
}

/* ---- filter tiles ------------------------------------------------------------------------------------------ */
/* Rows oy (and oy + 1), pixels [ox0, ox0 + P), filters [cb * CS_LANES, + CS_LANES), into o's outputs (the
 * pool needs R = 2; it covers pixel pairs, an odd last pixel of the row going to y only). */
INLINE void filter_tile(const struct cs_geom *g, const float *xpad, const float *wpk, const float *bpk, int64_t oy,
                        int64_t ox0, int64_t cb, const struct cs_out *o, const int R, const int P)
{
    cs_vf acc[2][CS_PIXELS];
    for (int r = 0; r < R; r++)
        for (int p = 0; p < P; p++)
            acc[r][p] = (cs_vf){0};
    const int64_t cin = g->cin, row = g->wp * cin;
    const float *wv = wpk + cb * g->wblock;
    for (int64_t ky = 0; ky < g->kh; ky++)
        for (int64_t kx = 0; kx < g->kw; kx++) {
            const float *src = xpad + (oy + ky) * row + (ox0 + kx) * cin;
            for (int64_t ci = 0; ci < cin; ci++, src++, wv += g->wstep) {
                cs_vf wt = cs_load(wv);
                for (int p = 0; p < P; p++) {
                    acc[0][p] += src[p * cin] * wt;
                    if (R > 1)
                        acc[1][p] += src[row + p * cin] * wt;
                }
            }
        }
    cs_vf b = g->has_bias ? cs_load(bpk + cb * CS_LANES) : (cs_vf){0};
    for (int r = 0; r < R; r++)
        for (int p = 0; p < P; p++)
            acc[r][p] = cs_act(g->has_bias ? acc[r][p] + b : acc[r][p], g->act, g->alpha);
    const int64_t cout = g->cout, ow = g->ow, c0 = cb * CS_LANES, nc = cout - c0 < CS_LANES ? cout - c0 : CS_LANES;
    const size_t bytes = (size_t)nc * sizeof(float);
    if (R > 1 && o->pooled) {
        const cs_vi lane = CS_IOTA;
        int64_t at = ((oy / 2) * (ow / 2) + ox0 / 2) * cout + c0;
        for (int q = 0; q < P / 2; q++, at += cout) {
            cs_vf v[4] = {acc[0][2 * q], acc[0][2 * q + 1], acc[1][2 * q], acc[1][2 * q + 1]};
            cs_vi first = (int32_t)((oy * ow + ox0 + 2 * q) * cout + c0) + lane, arg;
            cs_vf m = cs_vmax4_arg(v, first, (int32_t)cout, (int32_t)(ow * cout), &arg);
            memcpy(o->pooled + at, &m, nc == CS_LANES ? sizeof m : bytes);
            if (o->argmax)
                memcpy(o->argmax + at, &arg, nc == CS_LANES ? sizeof arg : bytes);
        }
    }
    if (!o->y)
        return;
    for (int r = 0; r < R; r++) {
        float *dst = o->y + ((oy + r) * ow + ox0) * cout + c0;
        for (int p = 0; p < P; p++, dst += cout)
            memcpy(dst, &acc[r][p], nc == CS_LANES ? sizeof acc[r][p] : bytes);
    }
}

#define CS_FILTER_CASE(p)                                                                                          \
    case p:                                                                                                        \
        if (rows == 2)                                                                                             \
            filter_tile(g, xpad, wpk, bpk, oy, ox0, cb, o, 2, p);                                                  \
        else                                                                                                       \
            filter_tile(g, xpad, wpk, bpk, oy, ox0, cb, o, 1, p);                                                  \
        break;

static void filter_rows(const struct cs_geom *g, const float *xpad, const float *wpk, const float *bpk, int64_t oy,
                        int rows, const struct cs_out *o)
{
    /* pooled only: just the columns a pool window covers (an odd last column is dropped, as "valid" pooling) */
    const int64_t width = o->y ? g->ow : g->ow / 2 * 2, blocks = (g->cout + CS_LANES - 1) / CS_LANES;
    for (int64_t cb = 0; cb < blocks; cb++)
        for (int64_t ox0 = 0; ox0 < width; ox0 += CS_PIXELS) {
            switch (width - ox0 < CS_PIXELS ? width - ox0 : CS_PIXELS) {
                CS_FILTER_CASE(1)
                CS_FILTER_CASE(2)
                CS_FILTER_CASE(3)
                CS_FILTER_CASE(4)
                CS_FILTER_CASE(5)
                CS_FILTER_CASE(6)
                CS_FILTER_CASE(7)
                CS_FILTER_CASE(8)
            }
        }
}

#include "conv_small_dw_impl.h"

const struct cs_kernels CS_TABLE = {CS_LANES, pixel_rows, filter_rows, pixel_dw, filter_dw};
