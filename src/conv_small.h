/* Direct convolution for few channels (conv_small.c), stride 1, no dilation, NHWC: the tile kernels compiled
 * once per instruction set (conv_small_avx512.c, conv_small_avx2.c, conv_small_generic.c, all from
 * conv_small_impl.h). conv_small.c checks arguments, makes the padded copies and splits the work over
 * threads. Not part of the public C API. */
#ifndef FNN_CONV_SMALL_H
#define FNN_CONV_SMALL_H

#include <stdint.h>

#include "fnn.h"

#define CS_PIXEL_MAX_COUT 8 /* up to this many filters, vectors run along output pixels; above, along filters */
#define CS_MAX_LANES 16

struct cs_geom {
    int64_t cin, kh, kw, oh, ow, cout;
    int64_t wp;      /* columns of the zero-padded copy of an image (its rows: oh + kh - 1) */
    int64_t plane;   /* floats in one channel plane of the planar copy (pixel kernel) */
    int64_t wq;      /* floats in a row of the planar copy of dz (ow rounded up to a vector) */
    int64_t wstep;   /* filter tiles: floats between the weight vectors of consecutive (ky, kx, ci) */
    int64_t wblock;  /* filter tiles: floats between the first weight vectors of consecutive filter blocks */
    int act;         /* FNN_ACT_LINEAR, FNN_ACT_RELU or FNN_ACT_LEAKY_RELU */
    float alpha;
    int has_bias;
};

/* One image's outputs, each NULL when not wanted: y (oh, ow, cout); after a 2 x 2 max pool at stride 2,
 * pooled (oh / 2, ow / 2, cout) and argmax (the same shape: the index of each max in y's image, as pool.c). */
struct cs_out {
    float *y, *pooled;
    int32_t *argmax;
};

struct cs_kernels {
    int lanes; /* floats per vector in the tiles */
    /* Output rows oy, oy + 1 (rows = 2) or oy alone (rows = 1: y only) of one image into its outputs o. Pixel kernel: xpad is the planar copy (cin planes of g->plane floats, rows of g->wp),
     * w the kernel as given (kh, kw, cin, cout), bias (cout) or unused. Filter kernel: xpad is the NHWC copy
     * (rows of g->wp pixels), wpk the kernel in blocks of `lanes` filters (g->wstep, g->wblock apart: the
     * kernel itself when lanes divides cout, else packed zero-padded per block), bpk the bias the same way. */
    void (*pixel_rows)(const struct cs_geom *g, const float *xpad, const float *w, const float *bias, int64_t oy,
                       int rows, const struct cs_out *o);
    void (*filter_rows)(const struct cs_geom *g, const float *xpad, const float *wpk, const float *bpk,
                        int64_t oy, int rows, const struct cs_out *o);
    /* Kernel gradient of one image, tap (ky, kx), added into vacc: lane sums of x * dz over the image's
     * pixels. Pixel form: xpad planar as above, dzp planar (cout planes of oh rows of g->wq floats, zero past
     * ow), vacc (cin, cout, lanes). Filter form: xpad NHWC as above, dz the image's NHWC gradient, vacc
     * (cin, filter blocks, lanes), lane j of block b being filter b * lanes + j. */
    void (*pixel_dw)(const struct cs_geom *g, const float *xpad, const float *dzp, int64_t ky, int64_t kx,
                     float *vacc);
    void (*filter_dw)(const struct cs_geom *g, const float *xpad, const float *dz, int64_t ky, int64_t kx,
                      float *vacc);
};

/* Image img (h x w x cin, NHWC) into the zero-padded copy xpad (hp rows of wp pixels), at offset (pt, pl):
 * planar (cin planes of hp * wp floats) or NHWC. The padding is written once (a zeroed buffer); each image
 * only overwrites the interior. */
void fnn_cs_copy_padded(const float *img, int64_t h, int64_t w, int64_t cin, int64_t pt, int64_t pl, int64_t hp,
                        int64_t wp, int planar, float *xpad);

extern const struct cs_kernels fnn_cs_generic, fnn_cs_avx2, fnn_cs_avx512;

#endif
