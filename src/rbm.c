/* Restricted Boltzmann machine kernels: the counter-based random stream, Gibbs sampling of unit states, and
 * the fused contrastive-divergence parameter update (fastnn.unsupervised.RBM drives them).
 *
 * Random numbers: draw i of stream (key, counter) is z = mix64(mix64(key + counter * G) + (i + 1) * G), with
 * G the 64-bit golden-ratio constant and mix64 SplitMix64's finaliser. A draw depends only on (key, counter,
 * i), never on which thread computes it, so samples are bitwise the same for any n_threads.
 * Its top 24 bits give the uniform u = (z >> 40) / 2^24 in [0, 1), exact in float32.
 *
 * The update's sums over the batch (bias gradients) run in double, one column per thread at a time, rows in
 * order; the weight gradients come from the GEMM, which also never splits its reduction. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fnn.h"

#define RBM_GOLDEN 0x9E3779B97F4A7C15ull
#define RBM_PAR_MIN (1 << 15) /* fewer elements than this run on one thread */

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t stream_base(uint64_t key, uint64_t counter)
{
    return mix64(key + counter * RBM_GOLDEN);
}

static inline uint64_t draw(uint64_t base, int64_t i)
{
    return mix64(base + (uint64_t)(i + 1) * RBM_GOLDEN);
}

static inline float uniform24(uint64_t z)
{
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

/* 1.0f when uniform24(z) < p (p in [0, 1]), else 0.0f, without a branch on the random outcome. r = z >> 40
 * converts to float exactly, and for non-negative floats the order of the values is the order of their bit
 * patterns, so r < p 2^24 is compared on integers (the sign bit is dropped so that -0.0 counts as 0). */
static inline float bernoulli24(uint64_t z, float p)
{
    float r = (float)(z >> 40), t = p * 16777216.0f;
    uint32_t rb, tb;
    memcpy(&rb, &r, sizeof rb);
    memcpy(&tb, &t, sizeof tb);
    uint32_t bits = (0u - (uint32_t)(rb < (tb & 0x7FFFFFFFu))) & 0x3F800000u;
    float out;
    memcpy(&out, &bits, sizeof out);
    return out;
}

/* A standard normal from one draw by Box-Muller: u1 in (0, 1] from the top 24 bits, u2 in [0, 1) from the
 * next 24, computed in double. */
static inline float normal24(uint64_t z)
{
    double u1 = (double)((z >> 40) + 1) * (1.0 / 16777216.0);
    double u2 = (double)((z >> 16) & 0xFFFFFFull) * (1.0 / 16777216.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static int rbm_threads(int n_threads, int64_t work)
{
    return (n_threads > 1 && work >= RBM_PAR_MIN) ? n_threads : 1;
}

int fnn_rbm_uniform_f32(int64_t n, uint64_t key, uint64_t counter, float *out, int n_threads)
{
    if (n < 0 || (n > 0 && !out))
        return FNN_EBADARG;
    uint64_t base = stream_base(key, counter);
    int nt = rbm_threads(n_threads, n);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int64_t i = 0; i < n; i++)
        out[i] = uniform24(draw(base, i));
    return FNN_OK;
}

int fnn_rbm_sample_f32(int64_t n, const float *mean, float *out, int gaussian, uint64_t key, uint64_t counter,
                       int n_threads)
{
    if (n < 0 || (n > 0 && (!mean || !out)))
        return FNN_EBADARG;
    uint64_t base = stream_base(key, counter);
    int nt = rbm_threads(n_threads, n);
    if (gaussian) {
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
        for (int64_t i = 0; i < n; i++)
            out[i] = mean[i] + normal24(draw(base, i));
    } else {
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
        for (int64_t i = 0; i < n; i++)
            out[i] = bernoulli24(draw(base, i), mean[i]);
    }
    return FNN_OK;
}

/* out[j] = sum_b a[b, j] - c[b, j] over the batch, in double, rows in order (column j by one thread). */
static void diff_colsums(int64_t batch, int64_t cols, const float *a, const float *c, double *out, int nt)
{
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int64_t j = 0; j < cols; j++) {
        double s = 0.0;
        for (int64_t b = 0; b < batch; b++)
            s += (double)a[b * cols + j] - (double)c[b * cols + j];
        out[j] = s;
    }
}

/* Bias step without decay: inc = momentum inc + lr * sum / batch; bias += inc. */
static void bias_step(int64_t n, const double *sum, double scale, float momentum, float *bias, float *inc)
{
    for (int64_t j = 0; j < n; j++) {
        inc[j] = momentum * inc[j] + (float)(sum[j] * scale);
        bias[j] += inc[j];
    }
}

int fnn_rbm_update_f32(int64_t batch, int64_t n_visible, int64_t n_hidden, const float *v0, const float *h0,
                       const float *vk, const float *hk, float *weights, float *visible_bias, float *hidden_bias,
                       float *weights_inc, float *visible_inc, float *hidden_inc, float learning_rate,
                       float momentum, float weight_decay, float *work, int n_threads)
{
    if (batch < 1 || n_visible < 1 || n_hidden < 1 || n_visible > INT64_MAX / n_hidden || !v0 || !h0 || !vk ||
        !hk || !weights || !visible_bias || !hidden_bias || !weights_inc || !visible_inc || !hidden_inc || !work)
        return FNN_EBADARG;
    int64_t nw = n_visible * n_hidden;
    float *pos = work, *neg = work + nw;
    int status = fnn_gemm_f32(n_visible, n_hidden, batch, v0, n_visible, 1, h0, n_hidden, 0, pos, n_hidden, 0,
                              NULL, FNN_ACT_LINEAR, 0.0f, n_threads);
    if (status == FNN_OK)
        status = fnn_gemm_f32(n_visible, n_hidden, batch, vk, n_visible, 1, hk, n_hidden, 0, neg, n_hidden, 0,
                              NULL, FNN_ACT_LINEAR, 0.0f, n_threads);
    if (status != FNN_OK)
        return status;
    double *sums = malloc((size_t)(n_visible + n_hidden) * sizeof(double));
    if (!sums)
        return FNN_ENOMEM;
    unsigned fpu = fnn_fpu_enter();
    int nt = rbm_threads(n_threads, nw);
    float rate = learning_rate / (float)batch, decay = learning_rate * weight_decay;
    /* inc = momentum inc + lr ((pos - neg) / batch - weight_decay W); W += inc */
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        unsigned tfpu = fnn_fpu_enter();
#pragma omp for schedule(static)
        for (int64_t i = 0; i < n_visible; i++) {
            float *w = weights + i * n_hidden, *inc = weights_inc + i * n_hidden;
            const float *p = pos + i * n_hidden, *q = neg + i * n_hidden;
            for (int64_t j = 0; j < n_hidden; j++) {
                inc[j] = momentum * inc[j] + ((p[j] - q[j]) * rate - decay * w[j]);
                w[j] += inc[j];
            }
        }
        fnn_fpu_leave(tfpu);
    }
    int ntb = rbm_threads(n_threads, batch * (n_visible + n_hidden));
    diff_colsums(batch, n_visible, v0, vk, sums, ntb);
    diff_colsums(batch, n_hidden, h0, hk, sums + n_visible, ntb);
    double scale = (double)learning_rate / (double)batch;
    bias_step(n_visible, sums, scale, momentum, visible_bias, visible_inc);
    bias_step(n_hidden, sums + n_visible, scale, momentum, hidden_bias, hidden_inc);
    fnn_fpu_leave(fpu);
    free(sums);
    return FNN_OK;
}
