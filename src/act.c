/* Activations, softmax, column sums and dropout: argument checks and the split over threads. The arithmetic
 * lives in ew_impl.h, compiled per instruction set; fnn_ew_current() picks the one in use.
 * Element-wise kernels split their elements into one contiguous part per thread; row-wise ones split rows;
 * colsum splits columns. No part reads another's output, so results never depend on the thread count. */
#include <stddef.h>

#include "act_internal.h"
#include "ew.h"
#include "fnn.h"

#define COLSUM_BLOCK 512 /* columns summed together in one stack buffer of doubles */

static int valid_act(int act)
{
    return act >= FNN_ACT_LINEAR && act <= FNN_ACT_GELU;
}

static int64_t act_min_parallel(int act)
{
    return (act == FNN_ACT_SIGMOID || act == FNN_ACT_TANH || act == FNN_ACT_GELU) ? FNN_EW_PAR_MIN_TRANSCEND
                                                                                  : FNN_EW_PAR_MIN_CHEAP;
}

void fnn_act_block(int64_t rows, int64_t cols, float *c, int64_t ldc, const float *bias, int act, float alpha)
{
    if (act == FNN_ACT_LINEAR && !bias)
        return;
    const struct fnn_ew *ew = fnn_ew_current();
    for (int64_t i = 0; i < rows; i++)
        ew->act_forward(cols, c + i * ldc, bias, c + i * ldc, act, alpha);
}

/* ---- activation forward: the rows x cols elements, in row-major order, cut into parts ---------------- */
struct act_fwd_job {
    const struct fnn_ew *ew;
    int64_t rows, cols, ldx, ldy, parts;
    const float *x, *bias;
    float *y;
    int act;
    float alpha;
};

static void act_fwd_part(void *ctx, int64_t b)
{
    const struct act_fwd_job *a = ctx;
    int64_t total = a->rows * a->cols;
    int64_t lo = fnn_ew_split(total, b, a->parts), hi = fnn_ew_split(total, b + 1, a->parts);
    if (!a->bias && a->ldx == a->cols && a->ldy == a->cols) { /* one flat span */
        a->ew->act_forward(hi - lo, a->x + lo, NULL, a->y + lo, a->act, a->alpha);
        return;
    }
    int64_t i = lo / a->cols, j = lo % a->cols;
    while (lo < hi) {
        int64_t len = a->cols - j < hi - lo ? a->cols - j : hi - lo;
        a->ew->act_forward(len, a->x + i * a->ldx + j, a->bias ? a->bias + j : NULL, a->y + i * a->ldy + j,
                           a->act, a->alpha);
        lo += len;
        i++;
        j = 0;
    }
}

int fnn_act_forward_f32(int64_t rows, int64_t cols, const float *x, int64_t ldx, const float *bias, float *y,
                        int64_t ldy, int act, float alpha, int n_threads)
{
    if (rows < 0 || cols < 0 || ldx < cols || ldy < cols || !valid_act(act))
        return FNN_EBADARG;
    if (rows == 0 || cols == 0)
        return FNN_OK;
    if (!x || !y)
        return FNN_EBADARG;
    if (act == FNN_ACT_LINEAR && !bias && x == y && ldx == ldy)
        return FNN_OK;
    int nt = fnn_ew_threads(n_threads, rows * cols, act_min_parallel(act));
    struct act_fwd_job job = {fnn_ew_current(), rows, cols, ldx, ldy, nt, x, bias, y, act, alpha};
    fnn_ew_parallel(nt, nt, act_fwd_part, &job);
    return FNN_OK;
}

/* ---- activation backward --------------------------------------------------------------------------- */
struct act_bwd_job {
    const struct fnn_ew *ew;
    int64_t n, parts;
    const float *x, *y, *dy;
    float *dx;
    int act;
    float alpha;
};

static void act_bwd_part(void *ctx, int64_t b)
{
    const struct act_bwd_job *a = ctx;
    int64_t lo = fnn_ew_split(a->n, b, a->parts), hi = fnn_ew_split(a->n, b + 1, a->parts);
    a->ew->act_backward(hi - lo, a->x ? a->x + lo : NULL, a->y ? a->y + lo : NULL, a->dy + lo, a->dx + lo,
                        a->act, a->alpha);
}

int fnn_act_backward_f32(int64_t n, const float *x, const float *y, const float *dy, float *dx, int act,
                         float alpha, int n_threads)
{
    if (n < 0 || !valid_act(act))
        return FNN_EBADARG;
    if (n == 0)
        return FNN_OK;
    int needs_y = act == FNN_ACT_SIGMOID || act == FNN_ACT_TANH;
    int needs_x = act == FNN_ACT_GELU;
    int needs_either = act == FNN_ACT_RELU || act == FNN_ACT_LEAKY_RELU;
    if (!dy || !dx || (needs_y && !y) || (needs_x && !x) || (needs_either && !x && !y))
        return FNN_EBADARG;
    if (act == FNN_ACT_LINEAR && dx == dy)
        return FNN_OK;
    int nt = fnn_ew_threads(n_threads, n, act_min_parallel(act));
    struct act_bwd_job job = {fnn_ew_current(), n, nt, x, y, dy, dx, act, alpha};
    fnn_ew_parallel(nt, nt, act_bwd_part, &job);
    return FNN_OK;
}

/* ---- softmax: rows split over threads --------------------------------------------------------------- */
struct softmax_job {
    const struct fnn_ew *ew;
    int64_t rows, cols, parts;
    const float *a, *b; /* forward: x; backward: y, dy */
    float *out;
};

static void softmax_fwd_part(void *ctx, int64_t p)
{
    const struct softmax_job *s = ctx;
    for (int64_t i = p * s->rows / s->parts; i < (p + 1) * s->rows / s->parts; i++)
        s->ew->softmax_forward(s->cols, s->a + i * s->cols, s->out + i * s->cols);
}

static void softmax_bwd_part(void *ctx, int64_t p)
{
    const struct softmax_job *s = ctx;
    for (int64_t i = p * s->rows / s->parts; i < (p + 1) * s->rows / s->parts; i++)
        s->ew->softmax_backward(s->cols, s->a + i * s->cols, s->b + i * s->cols, s->out + i * s->cols);
}

static int row_threads(int n_threads, int64_t rows, int64_t cols, int64_t min_work)
{
    int nt = fnn_ew_threads(n_threads, rows * cols, min_work);
    return rows < nt ? (int)rows : nt;
}

int fnn_softmax_forward_f32(int64_t rows, int64_t cols, const float *x, float *y, int n_threads)
{
    if (rows < 0 || cols < 0)
        return FNN_EBADARG;
    if (rows == 0 || cols == 0)
        return FNN_OK;
    if (!x || !y)
        return FNN_EBADARG;
    int nt = row_threads(n_threads, rows, cols, FNN_EW_PAR_MIN_TRANSCEND);
    struct softmax_job job = {fnn_ew_current(), rows, cols, nt, x, NULL, y};
    fnn_ew_parallel(nt, nt, softmax_fwd_part, &job);
    return FNN_OK;
}

int fnn_softmax_backward_f32(int64_t rows, int64_t cols, const float *y, const float *dy, float *dx,
                             int n_threads)
{
    if (rows < 0 || cols < 0)
        return FNN_EBADARG;
    if (rows == 0 || cols == 0)
        return FNN_OK;
    if (!y || !dy || !dx)
        return FNN_EBADARG;
    int nt = row_threads(n_threads, rows, cols, FNN_EW_PAR_MIN_CHEAP);
    struct softmax_job job = {fnn_ew_current(), rows, cols, nt, y, dy, dx};
    fnn_ew_parallel(nt, nt, softmax_bwd_part, &job);
    return FNN_OK;
}

/* ---- column sums: blocks of columns split over threads ---------------------------------------------- */
struct colsum_job {
    const struct fnn_ew *ew;
    int64_t rows, cols, ldx;
    const float *x;
    float *out;
    int accumulate;
};

static void colsum_part(void *ctx, int64_t b)
{
    const struct colsum_job *c = ctx;
    double acc[COLSUM_BLOCK];
    int64_t j0 = b * COLSUM_BLOCK;
    int64_t len = c->cols - j0 < COLSUM_BLOCK ? c->cols - j0 : COLSUM_BLOCK;
    for (int64_t j = 0; j < len; j++)
        acc[j] = c->accumulate ? (double)c->out[j0 + j] : 0.0;
    c->ew->colsum(c->rows, len, c->x + j0, c->ldx, acc);
    for (int64_t j = 0; j < len; j++)
        c->out[j0 + j] = (float)acc[j];
}

int fnn_colsum_f32(int64_t rows, int64_t cols, const float *x, int64_t ldx, float *out, int accumulate,
                   int n_threads)
{
    if (rows < 0 || cols < 0 || ldx < cols)
        return FNN_EBADARG;
    if (cols == 0)
        return FNN_OK;
    if (!out || (rows > 0 && !x))
        return FNN_EBADARG;
    int64_t blocks = (cols + COLSUM_BLOCK - 1) / COLSUM_BLOCK;
    int nt = fnn_ew_threads(n_threads, rows * cols, FNN_EW_PAR_MIN_CHEAP);
    struct colsum_job job = {fnn_ew_current(), rows, cols, ldx, x, out, accumulate};
    fnn_ew_parallel(blocks < nt ? (int)blocks : nt, blocks, colsum_part, &job);
    return FNN_OK;
}

/* ---- dropout ------------------------------------------------------------------------------------------ */
struct dropout_job {
    const struct fnn_ew *ew;
    int64_t n, parts;
    const float *x;
    float *y;
    uint8_t *mask;
    const uint8_t *mask_in;
    uint64_t key, threshold;
    float scale;
};

static void dropout_fwd_part(void *ctx, int64_t b)
{
    const struct dropout_job *d = ctx;
    int64_t lo = fnn_ew_split(d->n, b, d->parts), hi = fnn_ew_split(d->n, b + 1, d->parts);
    d->ew->dropout_forward(lo, hi - lo, d->x + lo, d->y + lo, d->mask + lo, d->key, d->threshold, d->scale);
}

static void dropout_bwd_part(void *ctx, int64_t b)
{
    const struct dropout_job *d = ctx;
    int64_t lo = fnn_ew_split(d->n, b, d->parts), hi = fnn_ew_split(d->n, b + 1, d->parts);
    d->ew->dropout_backward(hi - lo, d->x + lo, d->mask_in + lo, d->y + lo, d->scale);
}

/* The seed goes through the SplitMix64 finaliser, so neighbouring seeds give unrelated masks. */
static uint64_t dropout_key(uint64_t seed)
{
    uint64_t z = seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int fnn_dropout_forward_f32(int64_t n, const float *x, float *y, uint8_t *mask, float rate, uint64_t seed,
                            int n_threads)
{
    if (n < 0 || !(rate >= 0.0f && rate < 1.0f))
        return FNN_EBADARG;
    if (n == 0)
        return FNN_OK;
    if (!x || !y || !mask)
        return FNN_EBADARG;
    int nt = fnn_ew_threads(n_threads, n, FNN_EW_PAR_MIN_CHEAP);
    /* keep when the draw's top 32 bits are >= rate * 2^32: probability 1 - rate */
    struct dropout_job job = {fnn_ew_current(), n, nt, x, y, mask, NULL, dropout_key(seed),
                              (uint64_t)((double)rate * 4294967296.0), 1.0f / (1.0f - rate)};
    fnn_ew_parallel(nt, nt, dropout_fwd_part, &job);
    return FNN_OK;
}

int fnn_dropout_backward_f32(int64_t n, const float *dy, const uint8_t *mask, float *dx, float rate,
                             int n_threads)
{
    if (n < 0 || !(rate >= 0.0f && rate < 1.0f))
        return FNN_EBADARG;
    if (n == 0)
        return FNN_OK;
    if (!dy || !mask || !dx)
        return FNN_EBADARG;
    int nt = fnn_ew_threads(n_threads, n, FNN_EW_PAR_MIN_CHEAP);
    struct dropout_job job = {fnn_ew_current(), n, nt, dy, dx, NULL, mask, 0, 0, 1.0f / (1.0f - rate)};
    fnn_ew_parallel(nt, nt, dropout_bwd_part, &job);
    return FNN_OK;
}
