/* Max pooling's backward passes (pool_max_backward.c): what the driver shares with the direct-write kernels
 * compiled for SSE2 and AVX2 (pool_max_backward_generic.c and _avx2.c, both from pool_max_backward_impl.h).
 * Not part of the public C API. */
#ifndef FNN_POOL_MAX_BACKWARD_H
#define FNN_POOL_MAX_BACKWARD_H

#include <stdint.h>
#include <string.h>

#include "fnn.h"

struct max_bwd {
    int64_t h, w, c, oh, ow;
    const float *dy, *pooled; /* pooled NULL: no ReLU, no sums */
    const int32_t *argmax;
    float *dx;
    double *sums; /* batch x c, each image's sums of the values routed, in element order */
};

/* v where `keep`, else +0. A mask, not a select: with a select the compiler moves v's load (or its conversion)
 * into a branch, which it then cannot vectorise. */
static inline float masked(float v, int keep)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    bits &= -(uint32_t)keep;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* The value routed from one pooled element: dy, or (relu) 0 where the ReLU before the pool had a zero
 * derivative. */
static inline float routed(int relu, const float *g, const float *p, int64_t i)
{
    return relu ? masked(g[i], p[i] > 0.0f) : g[i];
}

struct max_bwd_kernels {
    /* Image n of m by direct writes when every argmax lies in its own 2 x 2 block. Returns 0 when done, else
     * the number of leading image rows the scatter has to zero again (the others are zero) before it does
     * the image. */
    int64_t (*direct_image)(const struct max_bwd *m, int64_t n);
};

extern const struct max_bwd_kernels fnn_max_bwd_generic, fnn_max_bwd_avx2;

#endif
