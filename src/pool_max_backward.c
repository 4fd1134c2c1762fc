/* Max pooling's backward passes over NHWC images: each dy element goes to its argmax (pool.c's forward pass
 * writes the indices), optionally through the ReLU before the pool with that layer's bias gradient.
 *
 * The kernels are not told the pool's geometry; they look at the indices. When every argmax of an image lies
 * in its own output's 2 x 2 block at rows 2 oy + {0, 1}, columns 2 ox + {0, 1} (any 2 x 2 stride-2 pool, and any
 * other whose maxima happen to fall there), the blocks are disjoint, so each dx element receives at most one
 * value: dx is zeroed, then each block written whole, channels in vectors (the value at the argmax, 0 at the
 * other three). Otherwise (overlapping or larger windows, a corrupted index) that image is done by the general
 * scatter: zeros, then each value added at its argmax, one at a time. Both give the same bits: a value is stored as
 * 0.0f + v, the scatter's first addition (it turns -0 into +0 and, with the workers' denormals-are-zero mode,
 * denormals into 0), and the bias sums add in the same order. Whole images are split over threads, so any
 * thread count gives the same result. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fnn.h"

#define BWD_PAR_MIN 65536 /* dx elements below which one thread does the work */
#define POOL_LANES 4      /* channels per vector: SSE2, which every x86-64 has */

typedef float vf __attribute__((vector_size(4 * POOL_LANES)));
typedef int32_t vi __attribute__((vector_size(4 * POOL_LANES)));
typedef double vd __attribute__((vector_size(8 * POOL_LANES)));

static inline vi lane_index(void)
{
    vi k;
    for (int i = 0; i < POOL_LANES; i++)
        k[i] = i;
    return k;
}

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

/* block_scalar for a whole 2 x 2 block, POOL_LANES channels at a time, the same operations lane by lane. */
static inline __attribute__((always_inline)) int block_vector(int relu, int64_t c, int64_t wc, int32_t first,
                                                              const float *restrict g, const float *restrict p,
                                                              const int32_t *restrict arg, float *restrict q0,
                                                              float *restrict q1, double *restrict sum)
{
    vi miss = {0}, none = (vi){0} - 1, e = first + lane_index();
    vf zero = {0};
    int32_t right = (int32_t)c, below = (int32_t)wc, diag = (int32_t)(wc + c);
    int64_t ch = 0;
    for (; ch + POOL_LANES <= c; ch += POOL_LANES, e += POOL_LANES) {
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
            vd acc, add = __builtin_convertvector((vf)((vi)r & keep), vd);
            memcpy(&acc, sum + ch, sizeof acc);
            acc += add;
            memcpy(sum + ch, &acc, sizeof acc);
        }
    }
    int any = 0;
    for (int k = 0; k < POOL_LANES; k++)
        any |= miss[k];
    return any | block_scalar(relu, ch, c, wc, 2, 2, first, g, p, arg, q0, q1, sum);
}

/* Image n by direct writes. Returns 0 when done, else the number of leading image rows the scatter has to
 * zero again (the others are still zero) for an image that needs it. relu: m has pooled and sums. */
static inline __attribute__((always_inline)) int64_t direct_image(int relu, const struct max_bwd *m, int64_t n)
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
        float *q0 = img + 2 * oy * wc, *q1 = q0 + wc;
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

/* Image n: zeros in its first `dirty` rows (the others are zero), then each value added at its argmax.
 * Nonzero when an index is out of range. */
static int scatter_image(const struct max_bwd *m, int64_t n, int64_t dirty)
{
    int64_t c = m->c, in = m->h * m->w * c, out = m->oh * m->ow * c;
    const float *g = m->dy + n * out, *p = m->pooled ? m->pooled + n * out : NULL;
    const int32_t *arg = m->argmax + n * out;
    float *img = m->dx + n * in;
    double *sum = m->sums ? m->sums + n * c : NULL;
    int bad = 0;
    memset(img, 0, (size_t)(dirty * m->w * c) * sizeof(float));
    if (sum)
        memset(sum, 0, (size_t)c * sizeof(double));
    for (int64_t o = 0; o < out; o += c)
        for (int64_t ch = 0; ch < c; ch++) {
            int32_t a = arg[o + ch];
            float v = routed(p != NULL, g, p, o + ch);
            if (a >= in || a < -1) {
                bad = 1;
            } else if (a >= 0) { /* -1: an all-padding window */
                img[a] += v;
                if (sum)
                    sum[ch] += v;
            }
        }
    return bad;
}

static int max_backward(const struct max_bwd *m, int64_t batch, int n_threads)
{
    int nt = (n_threads > 1 && batch * m->h * m->w * m->c >= BWD_PAR_MIN) ? n_threads : 1;
    int bad = 0;
#pragma omp parallel num_threads(nt) if (nt > 1) reduction(| : bad)
    {
        unsigned fpu = fnn_fpu_enter();
#pragma omp for schedule(static)
        for (int64_t n = 0; n < batch; n++) {
            int64_t dirty = m->pooled ? direct_image(1, m, n) : direct_image(0, m, n);
            if (dirty)
                bad |= scatter_image(m, n, dirty);
        }
        fnn_fpu_leave(fpu);
    }
    return bad ? FNN_EBADARG : FNN_OK;
}

static int dims_bad(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t oh, int64_t ow)
{
    return batch < 0 || h < 1 || w < 1 || c < 1 || oh < 1 || ow < 1 || h * w * c > INT32_MAX;
}

int fnn_maxpool2d_backward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t oh, int64_t ow,
                               const float *dy, const int32_t *argmax, float *dx, int n_threads)
{
    if (dims_bad(batch, h, w, c, oh, ow))
        return FNN_EBADARG;
    if (batch == 0)
        return FNN_OK;
    if (!dy || !argmax || !dx)
        return FNN_EBADARG;
    struct max_bwd m = {h, w, c, oh, ow, dy, NULL, argmax, dx, NULL};
    return max_backward(&m, batch, n_threads);
}

/* The backward pass of a max pool fed by a ReLU (y = relu(z) is the pool's input, `pooled` its output): at
 * each window's argmax relu'(z) is pooled > 0, so the ReLU's gradient dz is made here at once, and the bias
 * gradient of the layer before (the column sums of dz) from the pooled positions: each image's sums in double,
 * in element order, then the images in order, so any thread count gives the same bits. */
int fnn_maxpool2d_backward_relu_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t oh, int64_t ow,
                                    const float *dy, const int32_t *argmax, const float *pooled, float *dz,
                                    float *dbias, int n_threads)
{
    if (dims_bad(batch, h, w, c, oh, ow) || !dbias)
        return FNN_EBADARG;
    if (batch == 0) {
        memset(dbias, 0, (size_t)c * sizeof(float));
        return FNN_OK;
    }
    if (!dy || !argmax || !pooled || !dz)
        return FNN_EBADARG;
    double *sums = malloc((size_t)(batch * c) * sizeof(double));
    if (!sums)
        return FNN_ENOMEM;
    struct max_bwd m = {h, w, c, oh, ow, dy, pooled, argmax, dz, sums};
    int st = max_backward(&m, batch, n_threads);
    for (int64_t ch = 0; ch < c; ch++) {
        double total = 0.0;
        for (int64_t n = 0; n < batch; n++)
            total += sums[n * c + ch];
        dbias[ch] = (float)total;
    }
    free(sums);
    return st;
}
