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
    int act;         /* FNN_ACT_LINEAR, FNN_ACT_RELU or FNN_ACT_LEAKY_RELU */
    float alpha;
    int pool;        /* 1: a 2 x 2 max pool at stride 2 follows; y is (oh / 2) x (ow / 2) x cout */
    int has_bias;
};

struct cs_kernels {
    int lanes; /* floats per vector in the tiles */
    /* Output rows oy, oy + 1 (rows = 2) or oy alone (rows = 1; never with pool) of one image into y (the
     * image's output). Pixel kernel: xpad is the planar copy (cin planes of g->plane floats, rows of g->wp),
     * w the kernel as given (kh, kw, cin, cout), bias (cout) or unused. Filter kernel: xpad is the NHWC copy
     * (rows of g->wp pixels), wpk the kernel packed per block of `lanes` filters ((kh, kw, cin, lanes),
     * zero-padded), bpk the bias packed the same way. */
    void (*pixel_rows)(const struct cs_geom *g, const float *xpad, const float *w, const float *bias, int64_t oy,
                       int rows, float *y);
    void (*filter_rows)(const struct cs_geom *g, const float *xpad, const float *wpk, const float *bpk,
                        int64_t oy, int rows, float *y);
};

extern const struct cs_kernels fnn_cs_generic, fnn_cs_avx2, fnn_cs_avx512;

#endif
