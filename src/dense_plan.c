/* A chain of Dense layers run as one call: the forward pass (inference), or a whole SGD training step
 * (forward, loss, backward, and the update of every kernel and bias).
 *
 * The arithmetic is the layer-by-layer path's, kernel for kernel: the GEMM (fnn_gemm_f32), the activations,
 * the loss, the bias gradient (fnn_colsum_f32), the kernel update fed by its gradient GEMM (fnn_gemm_sgd_f32)
 * and the bias update (fnn_sgd_decay_clip_f32), in the same order. So the weights, the velocity and the loss
 * are bitwise those of that path.
 *
 * With `team` set and n_threads > 1, one parallel region runs the whole step and every layer is split between
 * the threads by output columns (in whole cache lines): thread t always owns the same columns of each kernel
 * in the forward GEMM and of the first kernel in its update, so at batch 1 each core keeps its share of the
 * largest weights and velocity in its own L2 from step to step. The input gradient of a later layer needs a
 * whole row of its kernel, so there the threads split the kernel by rows (which are the columns of the layer
 * below: no barrier between a layer's input gradient and the next layer down) and update the rows they read.
 * Every kernel call inside the region runs on one thread. Only outputs are ever split, never a sum, and each
 * element's arithmetic does not depend on where its block starts, so the results are the same for any thread
 * count. Without `team`, the layers run one after another, each kernel on n_threads threads. (The Python side
 * uses `team` only below a threshold, 0 for now: on the shared 2-CPU machine the region measured slower.)
 * A training step at batch 1 whose first GEMV is summed in halves takes its own team instead
 * (halves_step_part): the two threads share only the first layer, by rows.
 */
#include "fnn.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Columns are split between threads in units of 16 floats: one 64-byte line per row. */
#define SPLIT_UNIT 16

typedef struct {
    int64_t n_layers, batch;
    const fnn_dense_layer *layers;
    const float *x;
    int loss_kind;
    const int64_t *labels;
    const float *targets, *w;
    float *grad;
    double lr, momentum, weight_decay, clipvalue;
    int nesterov;
    double *loss;
    float *part; /* halves_step_part: the second half of layer 0's GEMV */
} step_job;

/* Columns [lo, hi) of `total` owned by thread t of nt. */
static void share(int64_t total, int t, int nt, int64_t *lo, int64_t *hi)
{
    int64_t units = (total + SPLIT_UNIT - 1) / SPLIT_UNIT;
    *lo = units * t / nt * SPLIT_UNIT;
    *hi = units * (t + 1) / nt * SPLIT_UNIT;
    if (*lo > total)
        *lo = total;
    if (*hi > total)
        *hi = total;
}

static inline void team_barrier(int nt)
{
    if (nt > 1) {
#pragma omp barrier
    }
}

static inline const float *layer_input(const step_job *s, int64_t l)
{
    return l == 0 ? s->x : s->layers[l - 1].y;
}

/* Columns [c0, c1) of layer l's output, as Dense.forward computes them (kernels on `kt` threads). */
static void forward_columns(const step_job *s, int64_t l, int64_t c0, int64_t c1, int kt)
{
    const fnn_dense_layer *d = &s->layers[l];
    int64_t n = d->n_out, rows = s->batch, cols = c1 - c0;
    const float *bias = d->bias ? d->bias + c0 : NULL;
    if (cols <= 0)
        return;
    if (!d->z) {
        fnn_gemm_f32(rows, cols, d->n_in, layer_input(s, l), d->n_in, 0, d->kernel + c0, n, 0, d->y + c0, n, 0, bias,
                     d->act, d->alpha, kt);
    } else {
        fnn_gemm_f32(rows, cols, d->n_in, layer_input(s, l), d->n_in, 0, d->kernel + c0, n, 0, d->z + c0, n, 0, bias,
                     FNN_ACT_LINEAR, 0.0f, kt);
        if (d->act != FNN_DENSE_SOFTMAX)
            fnn_act_forward_f32(rows, cols, d->z + c0, n, NULL, d->y + c0, n, d->act, d->alpha, kt);
    }
}

/* The forward pass of layers l0.. on thread t of nt; a final softmax runs on thread 0 once its input is
 * complete. */
static void forward_layers(const step_job *s, int64_t l0, int t, int nt, int kt)
{
    for (int64_t l = l0; l < s->n_layers; l++) {
        const fnn_dense_layer *d = &s->layers[l];
        int64_t c0, c1;
        share(d->n_out, t, nt, &c0, &c1);
        forward_columns(s, l, c0, c1, kt);
        team_barrier(nt);
        if (d->act == FNN_DENSE_SOFTMAX) {
            if (t == 0)
                fnn_softmax_forward_f32(s->batch, d->n_out, d->z, d->y, kt);
            team_barrier(nt);
        }
    }
}

static void forward_part(const step_job *s, int t, int nt, int kt)
{
    forward_layers(s, 0, t, nt, kt);
}

static double compute_loss(const step_job *s, int kt)
{
    const fnn_dense_layer *last = &s->layers[s->n_layers - 1];
    int64_t n = s->batch, c = last->n_out;
    double loss = NAN;
    switch (s->loss_kind) {
    case FNN_DENSE_XENT_SPARSE:
        fnn_softmax_xent_sparse_f32(n, c, last->y, s->labels, s->w, s->grad, &loss, kt);
        break;
    case FNN_DENSE_XENT_DENSE:
        fnn_softmax_xent_dense_f32(n, c, last->y, s->targets, s->w, s->grad, &loss, kt);
        break;
    case FNN_DENSE_BCE_LOGITS:
        fnn_sigmoid_bce_f32(n, c, last->y, s->targets, s->w, s->grad, &loss, kt);
        break;
    default:
        fnn_mse_f32(n, c, last->y, s->targets, s->w, s->grad, &loss, kt);
    }
    return loss;
}

/* Where a layer's dz is: dy itself for a linear layer. */
static inline const float *layer_dz(const fnn_dense_layer *d, const float *dy)
{
    return d->act == FNN_ACT_LINEAR ? dy : d->dz;
}

/* dz = dy * act'(z) on columns [c0, c1) (dz is dy itself for a linear layer), then the bias gradient and the
 * bias update on those columns. Returns dz. */
static const float *local_backward(const step_job *s, int64_t l, const float *dy, int64_t c0, int64_t c1, int kt)
{
    const fnn_dense_layer *d = &s->layers[l];
    int64_t n = d->n_out, cols = c1 - c0;
    const float *dz = layer_dz(d, dy);
    if (cols <= 0)
        return dz;
    if (d->act != FNN_ACT_LINEAR) {
        if (cols == n) {
            fnn_act_backward_f32(s->batch * n, d->z, d->y, dy, d->dz, d->act, d->alpha, kt);
        } else {
            for (int64_t r = 0; r < s->batch; r++) {
                int64_t at = r * n + c0;
                fnn_act_backward_f32(cols, d->z ? d->z + at : NULL, d->y + at, dy + at, d->dz + at, d->act, d->alpha,
                                     kt);
            }
        }
    }
    if (d->bias) {
        const int64_t zero = 0;
        fnn_colsum_f32(s->batch, cols, dz + c0, n, d->bias_grad + c0, 0, kt);
        fnn_sgd_decay_clip_f32(cols, 1, &zero, &cols, NULL, d->bias_grad + c0, d->bias + c0,
                               d->bias_vel ? d->bias_vel + c0 : NULL, s->lr, s->momentum, s->nesterov,
                               s->weight_decay, s->clipvalue, kt);
    }
    return dz;
}

/* The update of rows [r0, r1) x columns [c0, c1) of layer l's kernel. */
static void update_block(const step_job *s, int64_t l, const float *dz, int64_t r0, int64_t r1, int64_t c0,
                         int64_t c1, int kt)
{
    const fnn_dense_layer *d = &s->layers[l];
    int64_t n = d->n_out;
    if (r1 > r0 && c1 > c0)
        fnn_gemm_sgd_f32(r1 - r0, c1 - c0, s->batch, layer_input(s, l) + r0, d->n_in, 1, dz + c0, n,
                         d->kernel + r0 * n + c0, d->kernel_vel ? d->kernel_vel + r0 * n + c0 : NULL, n, s->lr,
                         s->momentum, s->nesterov, s->weight_decay, s->clipvalue, kt);
}

/* Rows [r0, r1) of layer l > 0's kernel: their share of the input gradient (columns r0..r1 of dx), then their
 * update (after the read, as the layer path updates after dx). */
static void kernel_rows(const step_job *s, int64_t l, const float *dz, int64_t r0, int64_t r1, int kt)
{
    const fnn_dense_layer *d = &s->layers[l];
    int64_t n = d->n_out;
    if (r1 <= r0)
        return;
    fnn_gemm_f32(s->batch, r1 - r0, n, dz, n, 0, d->kernel + r0 * n, n, 1, d->dx + r0, d->n_in, 0, NULL,
                 FNN_ACT_LINEAR, 0.0f, kt);
    update_block(s, l, dz, r0, r1, 0, n, kt);
}

/* The backward pass of thread t of nt from the loss gradient, every update included but, unless
 * update_first, that of layer 0's kernel. */
static void backward_layers(const step_job *s, int t, int nt, int kt, int update_first)
{
    const float *dy = s->grad;
    for (int64_t l = s->n_layers - 1;; l--) {
        const fnn_dense_layer *d = &s->layers[l];
        int64_t c0, c1, r0, r1;
        share(d->n_out, t, nt, &c0, &c1);
        const float *dz = local_backward(s, l, dy, c0, c1, kt);
        if (l == 0) {
            if (update_first)
                update_block(s, 0, dz, 0, s->layers[0].n_in, c0, c1, kt); /* the columns of the forward pass */
            return;
        }
        team_barrier(nt); /* dz of all columns, for the rows of dx */
        share(d->n_in, t, nt, &r0, &r1);
        kernel_rows(s, l, dz, r0, r1, kt);
        dy = d->dx; /* columns r0..r1 of the layer below: this thread's own, no barrier */
    }
}

static void step_part(const step_job *s, int t, int nt, int kt)
{
    forward_part(s, t, nt, kt);
    if (t == 0)
        *s->loss = compute_loss(s, kt);
    team_barrier(nt);
    if (isfinite(*s->loss)) /* else the caller raises; nothing was updated */
        backward_layers(s, t, nt, kt, 1);
}

/* A step at batch 1 whose first GEMV is summed in halves (fnn_gemv_in_halves), on a team: threads 0 and 1
 * each compute one half, reading only their half of the first kernel's rows, and later update those rows, so
 * no line of the largest kernel or its velocity moves between the cores. Thread 0 runs the rest alone: the
 * layers above are too small to pay for the barriers a split costs. The same calls as step_part on one
 * thread, so the same bits. */
static void halves_step_part(const step_job *s, int t, int nt, int kt)
{
    (void)kt; /* every call runs on one thread */
    const fnn_dense_layer *d = &s->layers[0];
    float *out = d->z ? d->z : d->y;
    int64_t n = d->n_out, half = d->n_in / 2;
    if (t < 2)
        fnn_gemv_half_f32(n, d->n_in, s->x, d->kernel, n, t, t == 0 ? out : s->part);
    team_barrier(nt);
    if (t == 0) {
        fnn_gemv_halves_finish(n, out, s->part, d->bias, d->z ? FNN_ACT_LINEAR : d->act, d->alpha);
        if (d->z)
            fnn_act_forward_f32(1, n, d->z, n, NULL, d->y, n, d->act, d->alpha, 1);
        forward_layers(s, 1, 0, 1, 1);
        *s->loss = compute_loss(s, 1);
        if (isfinite(*s->loss))
            backward_layers(s, 0, 1, 1, 0);
    }
    team_barrier(nt);
    if (t < 2 && isfinite(*s->loss)) /* layer 0's dz, from the layer above's dx (or the loss gradient) */
        update_block(s, 0, layer_dz(d, s->n_layers > 1 ? s->layers[1].dx : s->grad), t ? half : 0,
                     t ? d->n_in : half, 0, n, 1);
}

static int bad_plan(int64_t n_layers, const fnn_dense_layer *layers, int64_t batch, const float *x)
{
    if (n_layers < 1 || !layers || batch < 1 || !x)
        return 1;
    for (int64_t l = 0; l < n_layers; l++) {
        const fnn_dense_layer *d = &layers[l];
        if (d->n_in < 1 || d->n_out < 1 || !d->kernel || !d->y || (l > 0 && d->n_in != layers[l - 1].n_out))
            return 1;
        if (d->act == FNN_DENSE_SOFTMAX ? (l != n_layers - 1 || !d->z)
                                        : (d->act < FNN_ACT_LINEAR || d->act > FNN_ACT_GELU))
            return 1;
    }
    return 0;
}

typedef void (*part_fn)(const step_job *s, int t, int nt, int kt);

/* part(s, t, nt, 1) on each thread of a team of n_threads, or part(s, 0, 1, n_threads) on the caller. */
static void run(part_fn part, const step_job *s, int team, int n_threads)
{
    int nt = n_threads < 1 ? 1 : n_threads;
    if (!team || nt == 1) {
        part(s, 0, 1, nt);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
#ifdef _OPENMP
        part(s, omp_get_thread_num(), omp_get_num_threads(), 1);
#else
        part(s, 0, 1, 1);
#endif
    }
}

int fnn_dense_forward_f32(int64_t n_layers, const fnn_dense_layer *layers, int64_t batch, const float *x, int team,
                          int n_threads)
{
    if (bad_plan(n_layers, layers, batch, x))
        return FNN_EBADARG;
    step_job s = {n_layers, batch, layers, x, 0, NULL, NULL, NULL, NULL, 0.0, 0.0, 0.0, 0.0, 0, NULL, NULL};
    run(forward_part, &s, team, n_threads);
    return FNN_OK;
}

int fnn_dense_sgd_step_f32(int64_t n_layers, const fnn_dense_layer *layers, int64_t batch, const float *x,
                           int loss_kind, const int64_t *labels, const float *targets, const float *w, float *grad,
                           double lr, double momentum, int nesterov, double weight_decay, double clipvalue,
                           double *loss, int team, int n_threads)
{
    if (bad_plan(n_layers, layers, batch, x) || !grad || !loss || loss_kind < FNN_DENSE_XENT_SPARSE
        || loss_kind > FNN_DENSE_MSE || (loss_kind == FNN_DENSE_XENT_SPARSE ? !labels : !targets))
        return FNN_EBADARG;
    for (int64_t l = 0; l < n_layers; l++) {
        const fnn_dense_layer *d = &layers[l];
        int moving = momentum > 0.0;
        if (d->act == FNN_DENSE_SOFTMAX || (d->act != FNN_ACT_LINEAR && !d->dz) || (l > 0 && !d->dx)
            || (d->bias && !d->bias_grad) || moving != (d->kernel_vel != NULL)
            || (d->bias && moving != (d->bias_vel != NULL)))
            return FNN_EBADARG;
    }
    if (loss_kind == FNN_DENSE_XENT_SPARSE) {
        int64_t c = layers[n_layers - 1].n_out;
        for (int64_t i = 0; i < batch; i++)
            if (labels[i] < 0 || labels[i] >= c)
                return FNN_EBADARG;
    }
    step_job s = {n_layers, batch, layers, x, loss_kind, labels, targets, w, grad, lr, momentum, weight_decay,
                  clipvalue, nesterov != 0, loss, NULL};
    *loss = NAN;
    if (team && n_threads > 1 && batch == 1 && fnn_gemv_in_halves(1, layers[0].n_in)) {
        s.part = malloc((size_t)layers[0].n_out * sizeof(float));
        if (!s.part)
            return FNN_ENOMEM;
        run(halves_step_part, &s, team, n_threads);
        free(s.part);
        return FNN_OK;
    }
    run(step_part, &s, team, n_threads);
    return FNN_OK;
}
