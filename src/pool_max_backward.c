/* Max pooling's backward passes over NHWC images: each dy element goes to its argmax (pool.c's forward pass
 * writes the indices), optionally through the ReLU before the pool with that layer's bias gradient.
 *
 * The kernels are not told the pool's geometry; they look at the indices. When every argmax of an image lies
 * in its own output's 2 x 2 block at rows 2 oy + {0, 1}, columns 2 ox + {0, 1} (any 2 x 2 stride-2 pool, and
 * any other whose maxima happen to fall there), the blocks are disjoint, so each dx element receives at most
 * one value: dx is zeroed, then each block written whole, channels in vectors (the value at the argmax, 0 at
 * the other three; pool_max_backward_impl.h, compiled for SSE2 and AVX2). Otherwise (overlapping or
 * larger windows, a corrupted index) that image is done by the general scatter: zeros, then each value added
 * at its argmax, one at a time. Both give the same bits: a value is stored as 0.0f + v, the scatter's first
 * addition (it turns -0 into +0 and, with the workers' denormals-are-zero mode, denormals into 0), and the
 * bias sums add in the same order. Whole images are split over threads, so any thread count gives the same
 * result. */
#include <stdlib.h>
#include <string.h>

#include "pool_max_backward.h"

#define BWD_PAR_MIN 65536 /* dx elements below which one thread does the work */
/* Fewer channels than this take the scatter: the direct writes are then all scalar and were 8x slower
 * (lenet's first pool, 6 channels: 235 against 29 us at batch 32, one thread). */
#define DIRECT_MIN_CHANNELS 8

/* AVX-512 CPUs run the AVX2 kernel: with 16 lanes it measured slower in the cnn32 training step (Zen 4, batch
 * 256, one thread: 5.6 against 4.1 ms per step in this kernel; batch 32: 0.68 against 0.65), and 8 lanes beat
 * SSE2's 4 (5.4 ms). */
static const struct max_bwd_kernels *max_bwd_current(void)
{
    return fnn_isa_current() >= FNN_ISA_AVX2 ? &fnn_max_bwd_avx2 : &fnn_max_bwd_generic;
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
    const struct max_bwd_kernels *k = max_bwd_current();
    int bad = 0;
#pragma omp parallel num_threads(nt) if (nt > 1) reduction(| : bad)
    {
        unsigned fpu = fnn_fpu_enter();
#pragma omp for schedule(static)
        for (int64_t n = 0; n < batch; n++) {
            int64_t dirty = m->c >= DIRECT_MIN_CHANNELS ? k->direct_image(m, n) : m->h;
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
