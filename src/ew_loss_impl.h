/* Per-sample losses and their gradients for one instruction set (part of ew_impl.h). Each returns the
 * sample's loss in double and, when grad is not NULL, writes d(loss)/d(input) * gscale into grad. Logits
 * are shifted by their maximum (softmax) or split by sign (sigmoid), so any finite logit, +-1e4 included,
 * gives a finite loss and gradient. */

#define EW_CHUNK 256 /* scratch for exp values when no gradient row is there to hold them */

/* sum_j exp(z[j] - m) in double, using grad (when not NULL) to keep the exp values. */
static double ew_sum_exp(int64_t c, const float *z, float m, float *grad)
{
    if (grad) {
        ew_exp_shifted(c, z, m, grad);
        return ew_sum(c, grad);
    }
    float e[EW_CHUNK];
    double s = 0.0;
    for (int64_t j = 0; j < c; j += EW_CHUNK) {
        int64_t len = c - j < EW_CHUNK ? c - j : EW_CHUNK;
        ew_exp_shifted(len, z + j, m, e);
        s += ew_sum(len, e);
    }
    return s;
}

/* -log softmax(z)[label]; gradient softmax(z) - onehot(label). At the label, p - 1 = -(sum of the other
 * exps) / s, taken in double: a confident p ~ 1 would otherwise lose its digits to cancellation. */
static double ew_xent_sparse(int64_t c, const float *z, int64_t label, float gscale, float *grad)
{
    float m = ew_max(c, z);
    double s = ew_sum_exp(c, z, m, grad);
    if (grad) {
        double others = s - (double)grad[label];
        float f = (float)((double)gscale / s);
        for (int64_t j = 0; j < c; j++)
            grad[j] *= f;
        grad[label] = (float)(-(double)gscale * others / s);
    }
    return ((double)m - (double)z[label]) + log(s);
}

/* -sum_j t[j] log softmax(z)[j] = sum(t) logsumexp(z) - sum_j t[j] z[j]; its exact gradient is
 * softmax(z) sum(t) - t (softmax(z) - t when the targets sum to 1). */
static double ew_xent_dense(int64_t c, const float *z, const float *t, float gscale, float *grad)
{
    float m = ew_max(c, z);
    double s = ew_sum_exp(c, z, m, grad);
    double st = ew_sum(c, t);
    if (grad) {
        float f = (float)((double)gscale * st / s);
        for (int64_t j = 0; j < c; j++)
            grad[j] = grad[j] * f - t[j] * gscale;
    }
    return st * ((double)m + log(s)) - ew_dot(c, t, z);
}

/* mean_j (p[j] - t[j])^2; gradient 2 (p - t) / c, with the 2 / c folded into gscale by the caller. */
static double ew_mse(int64_t c, const float *p, const float *t, float gscale, float *grad)
{
    double lane[EW_LANES] = {0}, tail = 0.0;
    int64_t j = 0;
    for (; j + EW_LANES <= c; j += EW_LANES)
        for (int k = 0; k < EW_LANES; k++) {
            double d = (double)p[j + k] - (double)t[j + k];
            lane[k] += d * d;
        }
    for (; j < c; j++) {
        double d = (double)p[j] - (double)t[j];
        tail += d * d;
    }
    if (grad)
        for (j = 0; j < c; j++)
            grad[j] = (p[j] - t[j]) * gscale;
    return ew_lanes_total(lane, tail) / (double)c;
}

/* mean_j of max(z, 0) - z t + log(1 + exp(-|z|)), the cross-entropy of sigmoid(z) against t;
 * gradient (sigmoid(z) - t) / c, with the 1 / c folded into gscale by the caller. */
static double ew_bce(int64_t c, const float *z, const float *t, float gscale, float *grad)
{
    float e[EW_CHUNK], soft[EW_CHUNK];
    double lane[EW_LANES] = {0}, tail = 0.0;
    for (int64_t j0 = 0; j0 < c; j0 += EW_CHUNK) {
        int64_t len = c - j0 < EW_CHUNK ? c - j0 : EW_CHUNK;
        const float *zc = z + j0, *tc = t + j0;
        for (int64_t j = 0; j < len; j++)
            e[j] = vm_expf(-__builtin_fabsf(zc[j]));
        for (int64_t j = 0; j < len; j++)
            soft[j] = vm_log1pf_unit(e[j]);
        if (grad) /* sigmoid(z) = 1 / (1 + e) for z >= 0, e / (1 + e) below */
            for (int64_t j = 0; j < len; j++)
                grad[j0 + j] = (vm_select(zc[j] >= 0.0f, 1.0f, e[j]) / (1.0f + e[j]) - tc[j]) * gscale;
        int64_t j = 0;
        for (; j + EW_LANES <= len; j += EW_LANES)
            for (int k = 0; k < EW_LANES; k++) {
                double zj = (double)zc[j + k];
                lane[k] += (zj > 0.0 ? zj : 0.0) - zj * (double)tc[j + k] + (double)soft[j + k];
            }
        for (; j < len; j++) {
            double zj = (double)zc[j];
            tail += (zj > 0.0 ? zj : 0.0) - zj * (double)tc[j] + (double)soft[j];
        }
    }
    return ew_lanes_total(lane, tail) / (double)c;
}
