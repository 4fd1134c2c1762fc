/* Optimizer updates with Keras 3's rules over the flat parameter arena: Adam/AdamW, RMSprop and Adagrad (SGD is
 * in optim_sgd.c; the spans, clipping and threads are in optim_internal.h). One pass per step does everything
 * for an element: scale and clip its gradient, decay its weight, update the state, update the weight.
 */
#include "optim_internal.h"

/* ---- Adam / AdamW ------------------------------------------------------------------------------------ */
typedef struct {
    const float *g;
    float *p, *m, *v;
    float lr, wd, clip, alpha, c1, c2, eps;
} adam_args;

INLINE void adam_piece(const void *args, int64_t i0, int64_t count, float scale)
{
    const adam_args *a = args;
    const float *restrict g = a->g + i0;
    float *restrict p = a->p + i0, *restrict m = a->m + i0, *restrict v = a->v + i0;
    const float lr = a->lr, wd = a->wd, clip = a->clip, alpha = a->alpha, c1 = a->c1, c2 = a->c2, eps = a->eps;
    for (int64_t i = 0; i < count; i++) {
        float gi = clipped(g[i], scale, clip);
        float w = p[i] - p[i] * wd * lr;
        float mi = m[i] + (gi - m[i]) * c1;
        float vi = v[i] + (gi * gi - v[i]) * c2;
        m[i] = mi;
        v[i] = vi;
        p[i] = w - (mi * alpha) / (sqrtf(vi) + eps);
    }
}
ISA_VARIANTS(adam_piece)

int fnn_adam_f32(int64_t n, int64_t n_span, const int64_t *span_offsets, const int64_t *span_sizes,
                 const float *span_scales, const float *grads, float *params, float *m, float *v, double lr,
                 double beta_1, double beta_2, double epsilon, int64_t step, double weight_decay,
                 double clipvalue, int n_threads)
{
    spans sp = {n_span, span_offsets, span_sizes, span_scales};
    int64_t total = check_spans(n, &sp);
    if (total < 0 || step < 1 || n_threads < 1 || (total > 0 && (!grads || !params || !m || !v)))
        return FNN_EBADARG;
    /* Keras: beta powers, the bias-corrected rate and 1 - beta are all float32 values. */
    float b1 = (float)beta_1, b2 = (float)beta_2, lr32 = (float)lr;
    float b1_power = powf(b1, (float)step), b2_power = powf(b2, (float)step);
    adam_args a = {grads, params, m, v, lr32, (float)weight_decay, clip_bound(clipvalue),
                   lr32 * sqrtf(1.0f - b2_power) / (1.0f - b1_power), (float)(1.0 - beta_1),
                   (float)(1.0 - beta_2), (float)epsilon};
    run_spans(&sp, total, n_threads, adam_piece_for(fnn_isa_current()), &a);
    return FNN_OK;
}

/* ---- RMSprop -------------------------------------------------------------------------------------------- */
typedef struct {
    const float *g;
    float *p, *vel, *mom, *avg;
    float lr, wd, clip, rho, c_rho, momentum, eps;
} rmsprop_args;

INLINE void rmsprop_loop(const rmsprop_args *a, int64_t i0, int64_t count, float scale, int use_momentum,
                         int centered)
{
    const float *restrict g = a->g + i0;
    float *restrict p = a->p + i0, *restrict vel = a->vel + i0;
    float *restrict mom = use_momentum ? a->mom + i0 : 0, *restrict avg = centered ? a->avg + i0 : 0;
    const float lr = a->lr, wd = a->wd, clip = a->clip, rho = a->rho, c_rho = a->c_rho, eps = a->eps;
    const float momentum = a->momentum;
    for (int64_t i = 0; i < count; i++) {
        float gi = clipped(g[i], scale, clip);
        float w = p[i] - p[i] * wd * lr;
        float vi = rho * vel[i] + c_rho * (gi * gi);
        vel[i] = vi;
        float denominator = vi + eps;
        if (centered) {
            float ai = rho * avg[i] + c_rho * gi;
            avg[i] = ai;
            denominator = vi - ai * ai + eps;
        }
        float increment = (lr * gi) / sqrtf(denominator);
        if (use_momentum) {
            increment = momentum * mom[i] + increment;
            mom[i] = increment;
        }
        p[i] = w - increment;
    }
}

INLINE void rmsprop_piece(const void *args, int64_t i0, int64_t count, float scale)
{
    const rmsprop_args *a = args;
    if (a->mom && a->avg)
        rmsprop_loop(a, i0, count, scale, 1, 1);
    else if (a->mom)
        rmsprop_loop(a, i0, count, scale, 1, 0);
    else if (a->avg)
        rmsprop_loop(a, i0, count, scale, 0, 1);
    else
        rmsprop_loop(a, i0, count, scale, 0, 0);
}
ISA_VARIANTS(rmsprop_piece)

int fnn_rmsprop_f32(int64_t n, int64_t n_span, const int64_t *span_offsets, const int64_t *span_sizes,
                    const float *span_scales, const float *grads, float *params, float *velocity,
                    float *momentum_buf, float *average_grad, double lr, double rho, double momentum,
                    double epsilon, double weight_decay, double clipvalue, int n_threads)
{
    spans sp = {n_span, span_offsets, span_sizes, span_scales};
    int64_t total = check_spans(n, &sp);
    if (total < 0 || n_threads < 1 || (total > 0 && (!grads || !params || !velocity)) ||
        (total > 0 && (momentum > 0.0) != (momentum_buf != 0)))
        return FNN_EBADARG;
    rmsprop_args a = {grads, params, velocity, momentum_buf, average_grad, (float)lr, (float)weight_decay,
                      clip_bound(clipvalue), (float)rho, (float)(1.0 - rho), (float)momentum, (float)epsilon};
    run_spans(&sp, total, n_threads, rmsprop_piece_for(fnn_isa_current()), &a);
    return FNN_OK;
}

/* ---- Adagrad -------------------------------------------------------------------------------------------- */
typedef struct {
    const float *g;
    float *p, *acc;
    float lr, wd, clip, eps;
} adagrad_args;

INLINE void adagrad_piece(const void *args, int64_t i0, int64_t count, float scale)
{
    const adagrad_args *a = args;
    const float *restrict g = a->g + i0;
    float *restrict p = a->p + i0, *restrict acc = a->acc + i0;
    const float lr = a->lr, wd = a->wd, clip = a->clip, eps = a->eps;
    for (int64_t i = 0; i < count; i++) {
        float gi = clipped(g[i], scale, clip);
        float w = p[i] - p[i] * wd * lr;
        float ai = acc[i] + gi * gi;
        acc[i] = ai;
        p[i] = w - (lr * gi) / sqrtf(ai + eps);
    }
}
ISA_VARIANTS(adagrad_piece)

int fnn_adagrad_f32(int64_t n, int64_t n_span, const int64_t *span_offsets, const int64_t *span_sizes,
                    const float *span_scales, const float *grads, float *params, float *accumulator, double lr,
                    double epsilon, double weight_decay, double clipvalue, int n_threads)
{
    spans sp = {n_span, span_offsets, span_sizes, span_scales};
    int64_t total = check_spans(n, &sp);
    if (total < 0 || n_threads < 1 || (total > 0 && (!grads || !params || !accumulator)))
        return FNN_EBADARG;
    adagrad_args a = {grads, params, accumulator, (float)lr, (float)weight_decay, clip_bound(clipvalue),
                      (float)epsilon};
    run_spans(&sp, total, n_threads, adagrad_piece_for(fnn_isa_current()), &a);
    return FNN_OK;
}
