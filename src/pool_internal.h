/* Pieces of max pooling (src/pool.c) that other kernels fuse into their epilogues. */
#ifndef FNN_POOL_INTERNAL_H
#define FNN_POOL_INTERNAL_H

#include <stdint.h>

/* The 2 x 2 stride-2 max pool of two consecutive rows of an NHWC map: rows (2 x w pixels of c channels, the
 * second row w * c floats after the first) into y (w / 2 pixels; an odd last pixel is dropped, as "valid"
 * pooling). argmax (optional) gets each max's index within its image, pool.c's rule: `base` (the index of
 * rows[0] in its image) + its offset in rows; the first max wins. */
void fnn_maxpool2x2_rows(int64_t w, int64_t c, const float *rows, float *y, int32_t *argmax, int32_t base);

#endif
