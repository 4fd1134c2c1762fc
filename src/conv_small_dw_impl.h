/* Kernel-gradient tiles of the small-channel convolution, included by conv_small_impl.h (same target, same
 * vector type). dW[ky, kx, ci, co] = sum over pixels of x[oy + ky - pt, ox + kx - pl, ci] * dz[oy, ox, co];
 * these add one image's terms for one tap into per-lane float sums (vacc), which conv_small_backward.c
 * folds into doubles every few images.
 * - pixel form (cout <= CS_PIXEL_MAX_COUT): vectors along the pixels of a row, one accumulator per filter.
 * - filter form: vectors along filters, one accumulator per input channel, the input value broadcast. */

/* ---- pixel form ---------------------------------------------------------------------------------------- */
INLINE void pixel_dw_block(const struct cs_geom *g, const float *xpad, const float *dzp, int64_t ky, int64_t kx,
                           int64_t ci, int64_t co0, float *vacc, const int CO)
{
    /* two sets of sums (even and odd vectors of a row): twice the independent FMA chains */
    cs_vf acc[2][CS_PIXEL_MAX_COUT];
    float *out = vacc + (ci * g->cout + co0) * CS_LANES;
    for (int co = 0; co < CO; co++) {
        acc[0][co] = cs_load(out + co * CS_LANES);
        acc[1][co] = (cs_vf){0};
    }
    const int64_t nv = g->wq / CS_LANES, dplane = g->oh * g->wq;
    const float *xrow = xpad + ci * g->plane + ky * g->wp + kx, *drow = dzp + co0 * dplane;
    for (int64_t oy = 0; oy < g->oh; oy++, xrow += g->wp, drow += g->wq)
        for (int64_t v = 0; v < nv; v += 2) {
            cs_vf x0 = cs_load(xrow + v * CS_LANES);
            for (int co = 0; co < CO; co++)
                acc[0][co] += x0 * cs_load(drow + co * dplane + v * CS_LANES);
            if (v + 1 == nv)
                break;
            cs_vf x1 = cs_load(xrow + (v + 1) * CS_LANES);
            for (int co = 0; co < CO; co++)
                acc[1][co] += x1 * cs_load(drow + co * dplane + (v + 1) * CS_LANES);
        }
    for (int co = 0; co < CO; co++) {
        cs_vf total = acc[0][co] + acc[1][co];
        memcpy(out + co * CS_LANES, &total, sizeof total);
    }
}

#define CS_PIXEL_DW_CASE(co)                                                                                       \
    case co:                                                                                                       \
        pixel_dw_block(g, xpad, dzp, ky, kx, ci, co0, vacc, co);                                                   \
        break;

static void pixel_dw(const struct cs_geom *g, const float *xpad, const float *dzp, int64_t ky, int64_t kx,
                     float *vacc)
{
    for (int64_t ci = 0; ci < g->cin; ci++)
        for (int64_t co0 = 0; co0 < g->cout; co0 += CS_PIXEL_MAX_COUT) {
            int64_t left = g->cout - co0;
            switch (left < CS_PIXEL_MAX_COUT ? left : CS_PIXEL_MAX_COUT) {
                CS_PIXEL_DW_CASE(1)
                CS_PIXEL_DW_CASE(2)
                CS_PIXEL_DW_CASE(3)
                CS_PIXEL_DW_CASE(4)
                CS_PIXEL_DW_CASE(5)
                CS_PIXEL_DW_CASE(6)
                CS_PIXEL_DW_CASE(7)
                CS_PIXEL_DW_CASE(8)
            }
        }
}

/* ---- filter form --------------------------------------------------------------------------------------- */
#define CS_DW_CHANNELS 8 /* input channels accumulated together */

INLINE void filter_dw_block(const struct cs_geom *g, const float *xpad, const float *dz, int64_t ky, int64_t kx,
                            int64_t ci0, int64_t cb, float *vacc, const int CI)
{
    const int64_t blocks = (g->cout + CS_LANES - 1) / CS_LANES, cin = g->cin, cout = g->cout;
    const int64_t c0 = cb * CS_LANES, nc = cout - c0 < CS_LANES ? cout - c0 : CS_LANES;
    cs_vf acc[CS_DW_CHANNELS];
    float *out = vacc + (ci0 * blocks + cb) * CS_LANES;
    for (int ci = 0; ci < CI; ci++)
        acc[ci] = cs_load(out + ci * blocks * CS_LANES);
    for (int64_t oy = 0; oy < g->oh; oy++) {
        const float *src = xpad + ((oy + ky) * g->wp + kx) * cin + ci0, *d = dz + oy * g->ow * cout + c0;
        for (int64_t ox = 0; ox < g->ow; ox++, src += cin, d += cout) {
            cs_vf dv = {0};
            if (nc == CS_LANES)
                dv = cs_load(d);
            else
                memcpy(&dv, d, (size_t)nc * sizeof(float));
            for (int ci = 0; ci < CI; ci++)
                acc[ci] += src[ci] * dv;
        }
    }
    for (int ci = 0; ci < CI; ci++)
        memcpy(out + ci * blocks * CS_LANES, &acc[ci], sizeof acc[ci]);
}

#define CS_FILTER_DW_CASE(c)                                                                                       \
    case c:                                                                                                        \
        filter_dw_block(g, xpad, dz, ky, kx, ci0, cb, vacc, c);                                                    \
        break;

static void filter_dw(const struct cs_geom *g, const float *xpad, const float *dz, int64_t ky, int64_t kx,
                      float *vacc)
{
    const int64_t blocks = (g->cout + CS_LANES - 1) / CS_LANES;
    for (int64_t cb = 0; cb < blocks; cb++)
        for (int64_t ci0 = 0; ci0 < g->cin; ci0 += CS_DW_CHANNELS) {
            int64_t left = g->cin - ci0;
            switch (left < CS_DW_CHANNELS ? left : CS_DW_CHANNELS) {
                CS_FILTER_DW_CASE(1)
                CS_FILTER_DW_CASE(2)
                CS_FILTER_DW_CASE(3)
                CS_FILTER_DW_CASE(4)
                CS_FILTER_DW_CASE(5)
                CS_FILTER_DW_CASE(6)
                CS_FILTER_DW_CASE(7)
                CS_FILTER_DW_CASE(8)
            }
        }
}
