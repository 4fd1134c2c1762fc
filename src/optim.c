/* Optimizer updates over the flat parameter arena, split into one contiguous part per thread (each
 * element's update is independent, so the result never depends on the thread count). The arithmetic lives
 * in ew_act_impl.h, compiled per instruction set. */
#include <stddef.h>

#include "ew.h"
#include "fnn.h"

struct sgd_job {
    const struct fnn_ew *ew;
    int64_t n, parts;
    float *p, *v;
    const float *g;
    float lr, momentum;
    int nesterov;
};

static void sgd_part(void *ctx, int64_t b)
{
    const struct sgd_job *s = ctx;
    int64_t lo = fnn_ew_split(s->n, b, s->parts), hi = fnn_ew_split(s->n, b + 1, s->parts);
    s->ew->sgd(hi - lo, s->p + lo, s->g + lo, s->v ? s->v + lo : NULL, s->lr, s->momentum, s->nesterov);
}

int fnn_sgd_f32(int64_t n, float *params, const float *grads, float *velocity, float lr, float momentum,
                int nesterov, int n_threads)
{
    if (n < 0)
        return FNN_EBADARG;
    if (n == 0)
        return FNN_OK;
    if (!params || !grads || (momentum != 0.0f && !velocity))
        return FNN_EBADARG;
    int nt = fnn_ew_threads(n_threads, n, FNN_EW_PAR_MIN_CHEAP);
    struct sgd_job job = {fnn_ew_current(), n, nt, params, momentum != 0.0f ? velocity : NULL, grads, lr,
                          momentum, nesterov};
    fnn_ew_parallel(nt, nt, sgd_part, &job);
    return FNN_OK;
}
