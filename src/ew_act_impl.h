/* Activations, softmax, column sums, dropout and the SGD step for one instruction set (part of ew_impl.h).
 * One loop per case, each simple enough for GCC to vectorise. relu is max(x, 0) with NaN -> 0, bitwise as
 * the GEMM epilogue's in-register version; leaky_relu passes NaN through; their gradients at 0 are 0 and
 * alpha (as TensorFlow's); gelu is the exact x * Phi(x). */

static void ew_act_forward(int64_t n, const float *x, const float *bias, float *y, int act, float alpha)
{
    if (bias) {
        for (int64_t j = 0; j < n; j++)
            y[j] = x[j] + bias[j];
        x = y;
    }
    switch (act) {
    case FNN_ACT_RELU:
        for (int64_t j = 0; j < n; j++)
            y[j] = x[j] > 0.0f ? x[j] : 0.0f;
        break;
    case FNN_ACT_LEAKY_RELU:
        for (int64_t j = 0; j < n; j++)
            y[j] = x[j] * vm_select(x[j] < 0.0f, alpha, 1.0f);
        break;
    case FNN_ACT_SIGMOID:
        for (int64_t j = 0; j < n; j++)
            y[j] = vm_sigmoidf(x[j]);
        break;
    case FNN_ACT_TANH:
        for (int64_t j = 0; j < n; j++)
            y[j] = vm_tanhf(x[j]);
        break;
    case FNN_ACT_GELU:
        for (int64_t j = 0; j < n; j++)
            y[j] = x[j] * vm_normcdf(x[j]);
        break;
    default:
        if (y != x)
            for (int64_t j = 0; j < n; j++)
                y[j] = x[j];
    }
}

static void ew_act_backward(int64_t n, const float *x, const float *y, const float *dy, float *dx, int act,
                            float alpha)
{
    switch (act) {
    case FNN_ACT_RELU: {
        const float *s = y ? y : x; /* y > 0 exactly where x > 0 */
        for (int64_t j = 0; j < n; j++)
            dx[j] = vm_select(s[j] > 0.0f, dy[j], 0.0f);
        break;
    }
    case FNN_ACT_LEAKY_RELU: {
        const float *s = x ? x : y; /* y has x's sign when alpha >= 0 */
        for (int64_t j = 0; j < n; j++)
            dx[j] = dy[j] * vm_select(s[j] > 0.0f, 1.0f, alpha);
        break;
    }
    case FNN_ACT_SIGMOID:
        for (int64_t j = 0; j < n; j++)
            dx[j] = dy[j] * y[j] * (1.0f - y[j]);
        break;
    case FNN_ACT_TANH:
        for (int64_t j = 0; j < n; j++)
            dx[j] = dy[j] * (1.0f - y[j] * y[j]);
        break;
    case FNN_ACT_GELU:
        /* d/dx x Phi(x) = Phi(x) + x phi(x) */
        for (int64_t j = 0; j < n; j++)
            dx[j] = dy[j] * (vm_normcdf(x[j]) + x[j] * vm_normpdf(x[j]));
        break;
    default:
        if (dx != dy)
            for (int64_t j = 0; j < n; j++)
                dx[j] = dy[j];
    }
}

/* y = exp(x - max) / sum; y may alias x. */
static void ew_softmax_forward(int64_t c, const float *x, float *y)
{
    float m = ew_max(c, x);
    ew_exp_shifted(c, x, m, y);
    float inv = (float)(1.0 / ew_sum(c, y));
    for (int64_t j = 0; j < c; j++)
        y[j] *= inv;
}

/* dx = y * (dy - sum_j dy y); dx may alias dy (the sum is taken first). */
static void ew_softmax_backward(int64_t c, const float *y, const float *dy, float *dx)
{
    float s = (float)ew_dot(c, dy, y);
    for (int64_t j = 0; j < c; j++)
        dx[j] = y[j] * (dy[j] - s);
}

static void ew_colsum(int64_t rows, int64_t cols, const float *x, int64_t ldx, double *acc)
{
    for (int64_t i = 0; i < rows; i++) {
        const float *row = x + i * ldx;
        for (int64_t j = 0; j < cols; j++)
            acc[j] += (double)row[j];
    }
}

/* Keep element i when the top 32 bits of a SplitMix64-style mix of (key, i) reach threshold: a
 * counter-based draw, so element i's fate depends only on the seed and i, never on who computes it. */
static void ew_dropout_forward(int64_t start, int64_t n, const float *x, float *y, uint8_t *mask, uint64_t key,
                               uint64_t threshold, float scale)
{
    for (int64_t j = 0; j < n; j++) {
        uint64_t z = key + (uint64_t)(start + j + 1) * 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        int keep = (z >> 32) >= threshold;
        mask[j] = (uint8_t)keep;
        y[j] = x[j] * (keep ? scale : 0.0f);
    }
}

static void ew_dropout_backward(int64_t n, const float *dy, const uint8_t *mask, float *dx, float scale)
{
    for (int64_t j = 0; j < n; j++)
        dx[j] = dy[j] * (mask[j] ? scale : 0.0f);
}

