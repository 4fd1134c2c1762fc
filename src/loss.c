/* Losses: argument checks, sample weights, the mean over samples and the split over threads. The per-sample
 * arithmetic lives in ew_loss_impl.h, compiled per instruction set.
 *
 * The mean is summed in double over fixed blocks of rows whose count depends only on n (at most LOSS_BLOCKS):
 * each block's partial sum is formed row after row, then the partials are added in block order. Threads
 * take whole blocks, so the value is bitwise the same for any thread count. */
#include <stddef.h>

#include "ew.h"
#include "fnn.h"

#define LOSS_BLOCKS 64

enum loss_kind { LOSS_XENT_SPARSE, LOSS_XENT_DENSE, LOSS_MSE, LOSS_BCE };

struct loss_job {
    const struct fnn_ew *ew;
    enum loss_kind kind;
    int64_t n, c, blocks;
    const float *z, *t, *w;
    const int64_t *labels;
    float *grad;
    double grad_scale; /* the gradient of one unweighted sample's term in the mean: 1/n, 2/(n c), 1/(n c) */
    double partial[LOSS_BLOCKS];
};

static void loss_block(void *ctx, int64_t b)
{
    struct loss_job *j = ctx;
    const struct fnn_ew *ew = j->ew;
    int64_t c = j->c;
    double sum = 0.0;
    for (int64_t i = b * j->n / j->blocks; i < (b + 1) * j->n / j->blocks; i++) {
        double w = j->w ? (double)j->w[i] : 1.0;
        float gscale = (float)(w * j->grad_scale);
        const float *z = j->z + i * c, *t = j->t ? j->t + i * c : NULL;
        float *g = j->grad ? j->grad + i * c : NULL;
        double l;
        switch (j->kind) {
        case LOSS_XENT_SPARSE: l = ew->xent_sparse(c, z, j->labels[i], gscale, g); break;
        case LOSS_XENT_DENSE: l = ew->xent_dense(c, z, t, gscale, g); break;
        case LOSS_MSE: l = ew->mse(c, z, t, gscale, g); break;
        default: l = ew->bce(c, z, t, gscale, g); break;
        }
        sum += w * l;
    }
    j->partial[b] = sum;
}

static int run_loss(enum loss_kind kind, int64_t n, int64_t c, const float *z, const float *t,
                    const int64_t *labels, const float *w, float *grad, double *loss, double grad_scale,
                    int n_threads)
{
    struct loss_job job = {fnn_ew_current(), kind, n, c, n < LOSS_BLOCKS ? n : LOSS_BLOCKS, z, t, w, labels,
                           grad, grad_scale, {0}};
    int nt = fnn_ew_threads(n_threads, n * c,
                            kind == LOSS_MSE ? FNN_EW_PAR_MIN_CHEAP : FNN_EW_PAR_MIN_TRANSCEND);
    fnn_ew_parallel(nt, job.blocks, loss_block, &job);
    double total = 0.0;
    for (int64_t b = 0; b < job.blocks; b++)
        total += job.partial[b];
    *loss = total / (double)n;
    return FNN_OK;
}

static int bad_sizes(int64_t n, int64_t c, const float *z, const double *loss)
{
    return n < 1 || c < 1 || !z || !loss;
}

int fnn_softmax_xent_sparse_f32(int64_t n, int64_t c, const float *z, const int64_t *labels, const float *w,
                                float *grad, double *loss, int n_threads)
{
    if (bad_sizes(n, c, z, loss) || !labels)
        return FNN_EBADARG;
    for (int64_t i = 0; i < n; i++) /* before anything is written */
        if (labels[i] < 0 || labels[i] >= c)
            return FNN_EBADARG;
    return run_loss(LOSS_XENT_SPARSE, n, c, z, NULL, labels, w, grad, loss, 1.0 / (double)n, n_threads);
}

int fnn_softmax_xent_dense_f32(int64_t n, int64_t c, const float *z, const float *t, const float *w,
                               float *grad, double *loss, int n_threads)
{
    if (bad_sizes(n, c, z, loss) || !t)
        return FNN_EBADARG;
    return run_loss(LOSS_XENT_DENSE, n, c, z, t, NULL, w, grad, loss, 1.0 / (double)n, n_threads);
}

int fnn_mse_f32(int64_t n, int64_t c, const float *p, const float *t, const float *w, float *grad,
                double *loss, int n_threads)
{
    if (bad_sizes(n, c, p, loss) || !t)
        return FNN_EBADARG;
    return run_loss(LOSS_MSE, n, c, p, t, NULL, w, grad, loss, 2.0 / ((double)n * (double)c), n_threads);
}

int fnn_sigmoid_bce_f32(int64_t n, int64_t c, const float *z, const float *t, const float *w, float *grad,
                        double *loss, int n_threads)
{
    if (bad_sizes(n, c, z, loss) || !t)
        return FNN_EBADARG;
    return run_loss(LOSS_BCE, n, c, z, t, NULL, w, grad, loss, 1.0 / ((double)n * (double)c), n_threads);
}
