/* Serial building blocks shared between kernels (not part of the public C API). */
#ifndef FNN_ACT_INTERNAL_H
#define FNN_ACT_INTERNAL_H

#include <stdint.h>

/* In place on a rows x cols block with leading dimension ldc: c = act(c + bias) (bias may be NULL).
 * Serial: callers run it on a tile they own, e.g. a GEMM epilogue while the tile is still in cache. */
void fnn_act_block(int64_t rows, int64_t cols, float *c, int64_t ldc, const float *bias, int act, float alpha);

#endif
