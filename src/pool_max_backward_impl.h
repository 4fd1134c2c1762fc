/* The direct-write kernel of max pooling's backward passes for one instruction set. Included by
 * pool_max_backward_generic.c and _avx2.c, each after its `#pragma GCC target` and after defining
 * MAX_BWD_TABLE (the table to fill) and MAX_BWD_LANES (floats per vector). Vectors run along channels; the
 * same operations lane by lane whatever the width, so every target gives the same bits. */
#if !defined(MAX_BWD_TABLE) || !defined(MAX_BWD_LANES)
#error "define MAX_BWD_TABLE and MAX_BWD_LANES before including pool_max_backward_impl.h"
#endif

#include "pool_max_backward.h"

typedef float vf __attribute__((vector_size(4 * MAX_BWD_LANES)));
typedef int32_t vi __attribute__((vector_size(4 * MAX_BWD_LANES)));

static inline vi lane_index(void)
{
    vi k;
    for (int i = 0; i < MAX_BWD_LANES; i++)
        k[i] = i;
    return k;
}

/* Channels [c0, c) of output (oy, ox)'s block of rows x cols (1 or 2 each: the image's last row or column may
 * cut it) written directly. `first` is the index of the block's top-left element (channel 0); q0 and q1 are
 * its two rows. Returns nonzero when some argmax is neither in the block (same channel) nor -1: the image
 * needs the scatter. */
static inline __attribute__((always_inline)) int block_scalar(int relu, int64_t c0, int64_t c, int64_t wc,
                                                              int rows, int cols, int32_t first,
                                                              const float *restrict g, const float *restrict p,
                                                              const int32_t *restrict arg, float *restrict q0,
                                                              float *restrict q1, double *restrict sum)
{
    int miss = 0;
    int32_t right = (int32_t)c, below = (int32_t)wc, diag = (int32_t)(wc + c);
    for (int32_t ch = (int32_t)c0; ch < (int32_t)c; ch++) {
        int32_t a = arg[ch], e = first + ch;
        float r = routed(relu, g, p, ch), v = 0.0f + r;
        int hit = a == e;
        q0[ch] = a == e ? v : 0.0f;
        if (cols > 1) {
            q0[c + ch] = a == e + right ? v : 0.0f;
            hit |= a == e + right;
        }
        if (rows > 1) {
            q1[ch] = a == e + below ? v : 0.0f;
            hit |= a == e + below;
        }
        if (rows > 1 && cols > 1) {
            q1[c + ch] = a == e + diag ? v : 0.0f;
            hit |= a == e + diag;
        }
        miss |= !hit & (a != -1);
        if (relu)
            sum[ch] += (double)masked(r, a >= 0); /* -1 (an all-padding window) adds nothing: the sum is never -0 */
    }
    return miss;
}

/* block_scalar for a whole 2 x 2 block, MAX_BWD_LANES channels at a time, the same operations lane by lane. */
static inline __attribute__((always_inline)) int block_vector(int relu, int64_t c, int64_t wc, int32_t first,
                                                              const float *restrict g, const float *restrict p,
                                                              const int32_t *restrict arg, float *restrict q0,
                                                              float *restrict q1, double *restrict sum)
{
    vi miss = {0}, none = (vi){0} - 1, e = first + lane_index();
    vf zero = {0};
    int32_t right = (int32_t)c, below = (int32_t)wc, diag = (int32_t)(wc + c);
    int64_t ch = 0;
    for (; ch + MAX_BWD_LANES <= c; ch += MAX_BWD_LANES, e += MAX_BWD_LANES) {
        vi a, keep;
        vf r, pv;
        memcpy(&a, arg + ch, sizeof a);
        memcpy(&r, g + ch, sizeof r);
        if (relu) {
            memcpy(&pv, p + ch, sizeof pv);
            r = (vf)((vi)r & (pv > zero));
        }
        vf v = zero + r;
        vi h0 = a == e, h1 = a == e + right, h2 = a == e + below, h3 = a == e + diag;
        vf v0 = (vf)((vi)v & h0), v1 = (vf)((vi)v & h1), v2 = (vf)((vi)v & h2), v3 = (vf)((vi)v & h3);
        memcpy(q0 + ch, &v0, sizeof v0);
        memcpy(q0 + c + ch, &v1, sizeof v1);
        memcpy(q1 + ch, &v2, sizeof v2);
        memcpy(q1 + c + ch, &v3, sizeof v3);
        miss |= ~(h0 | h1 | h2 | h3 | (a == none));
        if (relu) {
            keep = a >= (vi){0};
            vf add = (vf)((vi)r & keep);
            for (int k = 0; k < MAX_BWD_LANES; k++) /* the compiler makes this vector adds of doubles */
                sum[ch + k] += (double)add[k];
        }
    }
    int any = 0;
    for (int k = 0; k < MAX_BWD_LANES; k++)
        any |= miss[k];
    return any | block_scalar(relu, ch, c, wc, 2, 2, first, g, p, arg, q0, q1, sum);
}

/* max_bwd_kernels.direct_image; relu: m has pooled and sums. */
static inline __attribute__((always_inline)) int64_t direct_image_as(int relu, const struct max_bwd *m, int64_t n)
{
    int64_t h = m->h, w = m->w, c = m->c, oh = m->oh, ow = m->ow, wc = w * c, out = oh * ow * c;
    if (2 * oh > h + 1 || 2 * ow > w + 1) /* some block would start outside the image */
        return h;
    const float *g = m->dy + n * out, *p = relu ? m->pooled + n * out : g; /* p: read only when relu */
    const int32_t *arg = m->argmax + n * out;
    float *img = m->dx + n * h * wc;
    double *sum = relu ? m->sums + n * c : NULL;
    if (relu)
        memset(sum, 0, (size_t)c * sizeof(double));
    /* Zeros first, though every covered element is then written again: on images larger than the cache,
     * memset's string stores skip reading the lines in, which plain stores would do, so this is faster. */
    memset(img, 0, (size_t)(h * wc) * sizeof(float));
    for (int64_t oy = 0; oy < oh; oy++) {
        int rows = 2 * oy + 1 < h ? 2 : 1, miss = 0;
        float *q0 = img + 2 * oy * wc, *q1 = rows == 2 ? q0 + wc : q0; /* no row past the image */
        for (int64_t ox = 0; ox < ow; ox++) {
            int64_t o = (oy * ow + ox) * c, x0 = 2 * ox * c;
            int32_t first = (int32_t)(2 * oy * wc + x0);
            if (rows == 2 && 2 * ox + 1 < w)
                miss |= block_vector(relu, c, wc, first, g + o, p + o, arg + o, q0 + x0, q1 + x0, sum);
            else
                miss |= block_scalar(relu, 0, c, wc, rows, 2 * ox + 1 < w ? 2 : 1, first, g + o, p + o, arg + o,
                                     q0 + x0, q1 + x0, sum);
        }
        if (miss)
            return 2 * oy + rows;
    }
    return 0;
}

static int64_t direct_image(const struct max_bwd *m, int64_t n)
{
    return m->pooled ? direct_image_as(1, m, n) : direct_image_as(0, m, n);
}

const struct max_bwd_kernels MAX_BWD_TABLE = {direct_image};
