/* fnn_act_backward_colsum_f32: a layer's activation gradient and its bias gradient in one pass over dz.
 *
 * dz = dy * act'(.) (as fnn_act_backward_f32) and dbias (+)= the column sums of dz, block of rows by block of
 * rows: each block's dz is summed while it is still in cache, instead of a second pass over all of dz from
 * memory. The rows are cut into blocks of a fixed size (not a per-thread share), each block's column sums
 * kept in double, and the blocks' sums added in block order: the same bits for any thread count.
 */
#include <stdlib.h>
#include <string.h>

#include "ew.h"
#include "fnn.h"

#define ROW_BLOCK_ELEMS 32768 /* rows * cols of a block: 128 KB of dz, in L2 for its column sums */

struct act_colsum_job {
    const struct fnn_ew *ew;
    int64_t rows, cols, block;
    const float *x, *y, *dy;
    float *dz;
    int act;
    float alpha;
    double *sums; /* cols per block */
};

static void act_colsum_part(void *ctx, int64_t b)
{
    const struct act_colsum_job *j = ctx;
    int64_t r0 = b * j->block, rows = j->rows - r0 < j->block ? j->rows - r0 : j->block, off = r0 * j->cols;
    if (j->act != FNN_ACT_LINEAR || j->dz != j->dy)
        j->ew->act_backward(rows * j->cols, j->x ? j->x + off : NULL, j->y ? j->y + off : NULL, j->dy + off,
                            j->dz + off, j->act, j->alpha);
    double *acc = j->sums + b * j->cols;
    memset(acc, 0, (size_t)j->cols * sizeof(double));
    j->ew->colsum(rows, j->cols, j->dz + off, j->cols, acc);
}

int fnn_act_backward_colsum_f32(int64_t rows, int64_t cols, const float *x, const float *y, const float *dy,
                                float *dz, int act, float alpha, float *dbias, int accumulate, int n_threads)
{
    if (rows < 0 || cols < 1 || act < FNN_ACT_LINEAR || act > FNN_ACT_GELU)
        return FNN_EBADARG;
    if (!dbias || (rows > 0 && (!dy || !dz)))
        return FNN_EBADARG;
    int needs_x = act == FNN_ACT_GELU, needs_y = act == FNN_ACT_SIGMOID || act == FNN_ACT_TANH;
    if (rows > 0 && ((needs_x && !x) || (needs_y && !y) || ((act == FNN_ACT_RELU || act == FNN_ACT_LEAKY_RELU)
                                                            && !x && !y)))
        return FNN_EBADARG;
    int64_t block = ROW_BLOCK_ELEMS / cols > 0 ? ROW_BLOCK_ELEMS / cols : 1;
    int64_t n_blocks = (rows + block - 1) / block;
    double *sums = malloc((size_t)(n_blocks > 0 ? n_blocks : 1) * (size_t)cols * sizeof(double));
    if (!sums)
        return FNN_ENOMEM;
    struct act_colsum_job job = {fnn_ew_current(), rows, cols, block, x, y, dy, dz, act, alpha, sums};
    int nt = fnn_ew_threads(n_threads, rows * cols, FNN_EW_PAR_MIN_CHEAP);
    fnn_ew_parallel(n_blocks < nt ? (int)n_blocks : nt, n_blocks, act_colsum_part, &job);
    for (int64_t c = 0; c < cols; c++) {
        double acc = accumulate ? (double)dbias[c] : 0.0;
        for (int64_t b = 0; b < n_blocks; b++)
            acc += sums[b * cols + c];
        dbias[c] = (float)acc;
    }
    free(sums);
    return FNN_OK;
}
