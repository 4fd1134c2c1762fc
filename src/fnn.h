/* fastnn's C kernel API.
 *
 * Conventions (DESIGN.md): symbols fnn_<op>_<phase>_f32; sizes first (int64_t), then const inputs, then
 * outputs, n_threads last; every function returns a status code. Kernels know nothing of Python, print nothing
 * and keep no global mutable state except the dispatch table. Arrays are row-major float32 with a leading
 * dimension (elements between the starts of consecutive rows).
 */
#ifndef FNN_H
#define FNN_H

#include <stdint.h>

#define FNN_OK 0
#define FNN_EBADARG 1 /* a size, stride or pointer is invalid */
#define FNN_ENOMEM 2  /* an allocation failed */
#define FNN_EISA 3    /* the requested instruction set is not available on this CPU */

/* Activations applied element-wise (softmax is row-wise and has its own kernels). */
enum fnn_act {
    FNN_ACT_LINEAR = 0,
    FNN_ACT_RELU = 1,
    FNN_ACT_LEAKY_RELU = 2, /* alpha = negative slope */
    FNN_ACT_SIGMOID = 3,
    FNN_ACT_TANH = 4,
    FNN_ACT_GELU = 5 /* exact (erf) form, as Keras' default */
};

/* ---- dispatch.c: runtime CPU dispatch ------------------------------------------------------------ */
enum fnn_isa { FNN_ISA_GENERIC = 0, FNN_ISA_AVX2 = 1, FNN_ISA_AVX512 = 2 };
int fnn_isa_supported(int isa);       /* 1 when this CPU (and OS) can run it */
int fnn_isa_select(int isa);          /* force an ISA; FNN_EISA when unsupported; -1 selects the best */
int fnn_isa_current(void);            /* the ISA in use (selects the best on first call) */
const char *fnn_isa_name(int isa);    /* "generic", "avx2", "avx512" */

/* ---- threads.c ----------------------------------------------------------------------------------- */
int fnn_omp_max_threads(void);        /* omp_get_max_threads() (1 without OpenMP) */
void fnn_omp_set_threads(int n);      /* omp_set_num_threads(n) */
/* Save the caller's MXCSR and set flush-to-zero / denormals-are-zero; restore it afterwards. Every
 * OpenMP region's threads do this so denormals never slow a backward pass, whatever the thread count. */
unsigned fnn_fpu_enter(void);
void fnn_fpu_leave(unsigned saved);
/* Runs fn(ctx, t, lo, hi) on a team of up to nt threads, thread t taking items [total t / team,
 * total (t + 1) / team) of `total`, each with fnn_fpu_enter's mode; nt <= 1 runs on the calling thread with no
 * parallel region at all (entering one costs about a microsecond, a lot at batch 1). */
typedef void (*fnn_range_fn)(void *ctx, int t, int64_t lo, int64_t hi);
void fnn_parallel_ranges(int nt, int64_t total, fnn_range_fn fn, void *ctx);

/* ---- gemm.c: C = op(A) @ op(B) [+ C] [+ bias], then activation -----------------------------------
 * op(A) is m x k (A stored k x m when trans_a), op(B) is k x n (B stored n x k when trans_b).
 * accumulate != 0 adds into C (beta = 1), else C is overwritten (beta = 0, C may hold garbage/NaN).
 * bias (length n, may be NULL) is added to every row; act/act_alpha are applied last (enum fnn_act).
 * Parallel over output tiles only, so the result is bitwise identical for any n_threads. */
int fnn_gemm_f32(int64_t m, int64_t n, int64_t k,
                 const float *a, int64_t lda, int trans_a,
                 const float *b, int64_t ldb, int trans_b,
                 float *c, int64_t ldc, int accumulate,
                 const float *bias, int act, float act_alpha, int n_threads);
/* A single row (m = 1, neither operand transposed) with k >= 512 rows of B is summed in two fixed halves of k,
 * each one chain, then added: fnn_gemv_in_halves(m, k) says whether fnn_gemm_f32 does so on this CPU. To
 * split the halves between threads: fnn_gemv_half_f32 computes half 0 ([0, k/2)) or 1 ([k/2, k)) of
 * c = a @ B (n columns, one thread), and fnn_gemv_halves_finish adds the second into the first (c += part),
 * then the bias and activation, on any range of columns: bitwise what fnn_gemm_f32 gives. */
int fnn_gemv_in_halves(int64_t m, int64_t k);
int fnn_gemv_half_f32(int64_t n, int64_t k, const float *a, const float *b, int64_t ldb, int half, float *c);
void fnn_gemv_halves_finish(int64_t n, float *c, const float *part, const float *bias, int act, float alpha);

/* ---- act.c: activations ---------------------------------------------------------------------------- */
/* y[i, j] = act(x[i, j] + bias[j]) for a rows x cols block (bias may be NULL); in place when y == x. */
int fnn_act_forward_f32(int64_t rows, int64_t cols, const float *x, int64_t ldx, const float *bias,
                        float *y, int64_t ldy, int act, float alpha, int n_threads);
/* dx = dy * act'(.) given the pre-activation x (needed for gelu; may be NULL for the others) and the
 * output y (may be NULL for linear/leaky_relu/gelu); dx may alias dy. Contiguous n elements. */
int fnn_act_backward_f32(int64_t n, const float *x, const float *y, const float *dy, float *dx,
                         int act, float alpha, int n_threads);
/* Row-wise softmax (numerically stable); y may alias x. */
int fnn_softmax_forward_f32(int64_t rows, int64_t cols, const float *x, float *y, int n_threads);
/* dx = y * (dy - sum_j dy*y) per row; dx may alias dy. */
int fnn_softmax_backward_f32(int64_t rows, int64_t cols, const float *y, const float *dy, float *dx,
                             int n_threads);
/* out[j] (+)= sum_i x[i, j], accumulated in double (bias gradients). */
int fnn_colsum_f32(int64_t rows, int64_t cols, const float *x, int64_t ldx, float *out, int accumulate,
                   int n_threads);
/* Inverted dropout: y = x * mask / (1 - rate), mask[i] in {0, 1} drawn from a counter-based generator
 * keyed by seed (the same seed gives the same mask at any thread count). dx = dy * mask / (1 - rate). */
int fnn_dropout_forward_f32(int64_t n, const float *x, float *y, uint8_t *mask, float rate, uint64_t seed,
                            int n_threads);
int fnn_dropout_backward_f32(int64_t n, const float *dy, const uint8_t *mask, float *dx, float rate,
                             int n_threads);

/* ---- loss.c: losses (value as a double mean over samples, gradient scaled by 1/n) ------------------
 * sample weights w (length n, may be NULL) multiply each sample's loss; the mean divides by n.
 * grad may be NULL when only the value is wanted. */
/* Softmax + cross-entropy fused on logits z (n x c); labels are class indices in [0, c). Writes the
 * gradient (softmax(z) - onehot) * w / n. Returns FNN_EBADARG for a label out of range. */
int fnn_softmax_xent_sparse_f32(int64_t n, int64_t c, const float *z, const int64_t *labels,
                                const float *w, float *grad, double *loss, int n_threads);
/* The same with dense target distributions t (n x c). */
int fnn_softmax_xent_dense_f32(int64_t n, int64_t c, const float *z, const float *t, const float *w,
                               float *grad, double *loss, int n_threads);
/* Mean squared error, mean over the c outputs then over n samples; grad = 2 (p - t) w / (n c). */
int fnn_mse_f32(int64_t n, int64_t c, const float *p, const float *t, const float *w, float *grad,
                double *loss, int n_threads);
/* Binary cross-entropy on logits z (sigmoid fused): grad = (sigmoid(z) - t) w / (n c). */
int fnn_sigmoid_bce_f32(int64_t n, int64_t c, const float *z, const float *t, const float *w,
                        float *grad, double *loss, int n_threads);


/* ---- peak.c: FMA throughput probe ------------------------------------------------------------------
 * Every thread runs `iterations` steps of independent FMA chains (enough to cover latency x throughput)
 * with the current ISA; *flops_done receives the floating-point operations performed (2 per FMA lane). */
int fnn_fma_peak_f32(int64_t iterations, int n_threads, double *flops_done);

/* ---- optim_adaptive.c, grad_clip.c: Keras 3 optimizer rules over spans of the parameter arena ----------
 * Each update covers the spans [span_offsets[s], span_offsets[s] + span_sizes[s]) of the n-element arena
 * (sorted, disjoint). In one pass per element: g = grad * span_scales[s] (NULL: 1), clipped to [-clipvalue,
 * clipvalue] (clipvalue <= 0: no clipping); w -= w * weight_decay * lr (decoupled, 0: none); then the rule.
 * Hyperparameters are rounded to float32 as Keras does; state arrays are arena-sized. */
/* Adam (AdamW = Adam with weight_decay): m += (g - m)(1 - beta_1); v += (g^2 - v)(1 - beta_2);
 * w -= m * alpha / (sqrt(v) + epsilon), alpha = lr sqrt(1 - beta_2^step) / (1 - beta_1^step); step >= 1. */
int fnn_adam_f32(int64_t n, int64_t n_span, const int64_t *span_offsets, const int64_t *span_sizes,
                 const float *span_scales, const float *grads, float *params, float *m, float *v, double lr,
                 double beta_1, double beta_2, double epsilon, int64_t step, double weight_decay,
                 double clipvalue, int n_threads);
/* RMSprop: vel = rho vel + (1 - rho) g^2; centered: avg = rho avg + (1 - rho) g, d = vel - avg^2 + epsilon,
 * else d = vel + epsilon; inc = lr g / sqrt(d); with momentum: mom = momentum mom + inc, w -= mom; else
 * w -= inc. momentum_buf is NULL exactly when momentum == 0; average_grad is NULL unless centered. */
int fnn_rmsprop_f32(int64_t n, int64_t n_span, const int64_t *span_offsets, const int64_t *span_sizes,
                    const float *span_scales, const float *grads, float *params, float *velocity,
                    float *momentum_buf, float *average_grad, double lr, double rho, double momentum,
                    double epsilon, double weight_decay, double clipvalue, int n_threads);
/* Adagrad: acc += g^2; w -= lr g / sqrt(acc + epsilon). */
int fnn_adagrad_f32(int64_t n, int64_t n_span, const int64_t *span_offsets, const int64_t *span_sizes,
                    const float *span_scales, const float *grads, float *params, float *accumulator, double lr,
                    double epsilon, double weight_decay, double clipvalue, int n_threads);
/* SGD as Keras: v = momentum v - lr g; p += v (nesterov: p += momentum v - lr g), plus spans, weight decay
 * and clipping; velocity is NULL exactly when momentum == 0. */
int fnn_sgd_decay_clip_f32(int64_t n, int64_t n_span, const int64_t *span_offsets, const int64_t *span_sizes,
                           const float *span_scales, const float *grads, float *params, float *velocity,
                           double lr, double momentum, int nesterov, double weight_decay, double clipvalue,
                           int n_threads);
/* The same SGD step on an m x n weight matrix (row stride ldp) whose gradient G = op(A) @ B (B: k x n, row
 * stride ldb; op(A) = A^T when trans_a) is never stored: each tile of G, computed as fnn_gemm_f32 computes it,
 * updates params/velocity while in L1. Bitwise equal to fnn_gemm_f32 into a buffer then fnn_sgd_decay_clip_f32
 * (scale 1) over it. k >= 1; velocity is NULL exactly when momentum == 0. */
int fnn_gemm_sgd_f32(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, int trans_a, const float *b,
                     int64_t ldb, float *params, float *velocity, int64_t ldp, double lr, double momentum,
                     int nesterov, double weight_decay, double clipvalue, int n_threads);
/* out[s] = sum of x[i]^2 over segment s (elements [offsets[s], offsets[s] + sizes[s]) of x's n), in double;
 * bitwise the same for any n_threads and any instruction set (fixed blocks summed in a fixed order). */
int fnn_sq_norms_f32(int64_t n, int64_t n_seg, const int64_t *offsets, const int64_t *sizes, const float *x,
                     double *out, int n_threads);
/* Gradient scales for clipping by norm c from squared norms (Keras' rules): per segment c / max(norm_s, c), or
 * with `global` one factor c / max(norm, c) of the total norm for all; NaN for a NaN (or infinite global) norm. */
int fnn_clip_scales_f32(int64_t n_seg, const double *sq_norms, double clipnorm, int global, float *scales);

/* ---- im2col.c: NHWC convolution columns (output grid oh x ow, formulas in im2col.c) --------------------
 * Rows [row0, row0 + rows) of the column matrix: row r = (n * oh + oy) * ow + ox, kh * kw * c columns in
 * (ky, kx, ch) order; cols[r, (ky*kw + kx)*c + ch] = x[n, oy*sh - pt + ky*dh, ox*sw - pl + kx*dw, ch] (0 in the
 * padding). col2im adds such rows back into dx (dx += ...), the adjoint of im2col. */
int fnn_im2col_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh,
                   int64_t sw, int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t oh, int64_t ow,
                   int64_t row0, int64_t rows, const float *x, float *cols, int64_t ldcols, int n_threads);
int fnn_col2im_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh,
                   int64_t sw, int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t oh, int64_t ow,
                   int64_t row0, int64_t rows, const float *cols, int64_t ldcols, float *dx, int n_threads);
/* Conv2D forward, y[r, f] = act(sum over (ky, kx, ch) of x[...] * kernel[ky, kx, ch, f] + bias[f]) for the
 * rows r of im2col's column matrix (the same geometry), kernel (kh * kw * c) x filters, y rows x filters,
 * bias NULL or of length filters, act as fnn_gemm_f32. im2col + GEMM chunk by chunk (chunk rows each, in
 * the caller's workspace cols of n_cols x chunk x (kh * kw * c) floats, one block per thread): bitwise the
 * same as fnn_im2col_f32 then fnn_gemm_f32, for any n_threads. */
int fnn_conv2d_forward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh,
                           int64_t sw, int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t oh, int64_t ow,
                           int64_t filters, const float *x, const float *kernel, const float *bias, int act,
                           float act_alpha, float *y, float *cols, int64_t chunk, int n_cols, int n_threads);

/* ---- pool.c: NHWC max/average pooling, windows ph x pw at strides sh, sw, top/left padding pt, pl -------
 * Padding is ignored: max over the valid elements, average divided by their count (TensorFlow's rule).
 * argmax[n, oy, ox, ch] = index of the max within image n ((iy * w + ix) * c + ch; first on ties, -1 for an
 * all-padding window; argmax may be NULL in the forward pass: values only). Backward passes overwrite dx. */
int fnn_maxpool2d_forward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t ph, int64_t pw,
                              int64_t sh, int64_t sw, int64_t pt, int64_t pl, int64_t oh, int64_t ow,
                              const float *x, float *y, int32_t *argmax, int n_threads);
int fnn_maxpool2d_backward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t oh, int64_t ow,
                               const float *dy, const int32_t *argmax, float *dx, int n_threads);
/* Max pool backward through the ReLU before it (pooled = the pool's output): dz = relu'(z) * (dy routed to each
 * argmax), and dbias = the column sums of dz (over batch x h x w, per channel). */
int fnn_maxpool2d_backward_relu_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t oh, int64_t ow,
                                    const float *dy, const int32_t *argmax, const float *pooled, float *dz,
                                    float *dbias, int n_threads);
int fnn_avgpool2d_forward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t ph, int64_t pw,
                              int64_t sh, int64_t sw, int64_t pt, int64_t pl, int64_t oh, int64_t ow,
                              const float *x, float *y, int n_threads);
int fnn_avgpool2d_backward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t ph, int64_t pw,
                               int64_t sh, int64_t sw, int64_t pt, int64_t pl, int64_t oh, int64_t ow,
                               const float *dy, float *dx, int n_threads);

/* ---- norm.c: batch normalization over the rows of x (rows, c), channels last ------------------------------
 * Per-channel sums in double over fixed row blocks: bitwise the same for any n_threads.
 * stats: mean and biased variance of each channel; when moving_mean/moving_var are given (both or neither),
 * moving = moving * momentum + stat * (1 - momentum). rows >= 1.
 * forward: y = (x - mean) * gamma / sqrt(var + epsilon) + beta (gamma NULL = 1, beta NULL = 0).
 * backward: dbeta = sum dy, dgamma = sum dy * xhat (overwritten, or added to with accumulate; either may be
 * NULL); dx (NULL to skip) = the batch-statistics gradient when training, else the affine map's gradient. */
int fnn_batchnorm_stats_f32(int64_t rows, int64_t c, const float *x, double momentum, float *mean, float *var,
                            float *moving_mean, float *moving_var, int n_threads);
int fnn_batchnorm_forward_f32(int64_t rows, int64_t c, const float *x, const float *mean, const float *var,
                              const float *gamma, const float *beta, double epsilon, float *y, int n_threads);
int fnn_batchnorm_backward_f32(int64_t rows, int64_t c, const float *x, const float *dy, const float *mean,
                               const float *var, const float *gamma, double epsilon, int training,
                               int accumulate, float *dx, float *dgamma, float *dbeta, int n_threads);

#include "fnn_recurrent.h" /* rnn.c, lstm.c, gru.c: recurrent layers */

/* ---- embedding.c: y[i] = table[ids[i]] for n ids into a (vocab, dim) table; FNN_EBADARG for an id outside
 * [0, vocab). Backward: dtable[ids[i]] += dy[i] (dtable zeroed first unless accumulate), in id order. */
int fnn_embedding_forward_f32(int64_t n, int64_t vocab, int64_t dim, const int64_t *ids, const float *table,
                              float *y, int n_threads);
int fnn_embedding_backward_f32(int64_t n, int64_t vocab, int64_t dim, const int64_t *ids, const float *dy,
                               float *dtable, int accumulate, int n_threads);

/* ---- rbm.c: restricted Boltzmann machines (formulas in rbm.c) ---------------------------------------------
 * Draw i of the random stream (key, counter) depends only on (key, counter, i): bitwise the same for any
 * n_threads. uniform: out[i] = u_i in [0, 1) (24 bits). sample: Bernoulli out[i] = (u_i < mean[i]), or with
 * gaussian out[i] = mean[i] + a standard normal (Box-Muller from the same draw); out may alias mean. */
int fnn_rbm_uniform_f32(int64_t n, uint64_t key, uint64_t counter, float *out, int n_threads);
int fnn_rbm_sample_f32(int64_t n, const float *mean, float *out, int gaussian, uint64_t key, uint64_t counter,
                       int n_threads);
/* One contrastive-divergence step for a batch: data v0 (batch, n_visible) with hidden probabilities h0
 * (batch, n_hidden), chain end vk, hk. With g = (v0^T h0 - vk^T hk) / batch:
 *   weights_inc = momentum weights_inc + learning_rate (g - weight_decay weights); weights += weights_inc
 *   visible_inc = momentum visible_inc + learning_rate mean_b(v0 - vk); visible_bias += visible_inc
 *   hidden_inc  = momentum hidden_inc + learning_rate mean_b(h0 - hk); hidden_bias += hidden_inc
 * weights (n_visible, n_hidden); work holds 2 n_visible n_hidden floats. */
int fnn_rbm_update_f32(int64_t batch, int64_t n_visible, int64_t n_hidden, const float *v0, const float *h0,
                       const float *vk, const float *hk, float *weights, float *visible_bias, float *hidden_bias,
                       float *weights_inc, float *visible_inc, float *hidden_inc, float learning_rate,
                       float momentum, float weight_decay, float *work, int n_threads);

/* ---- resize.c: NHWC image resizing (UpSampling2D, image octaves), half-pixel centres as TensorFlow --------
 * y (batch, oh, ow, c) from x (batch, h, w, c), any sizes >= 1; mode FNN_RESIZE_NEAREST or FNN_RESIZE_BILINEAR
 * (formulas in resize.c). The backward pass overwrites dx with the adjoint. */
#define FNN_RESIZE_NEAREST 0
#define FNN_RESIZE_BILINEAR 1
int fnn_resize2d_forward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t oh, int64_t ow, int mode,
                             const float *x, float *y, int n_threads);
int fnn_resize2d_backward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t oh, int64_t ow, int mode,
                              const float *dy, float *dx, int n_threads);

/* ---- dense_plan.c: a chain of Dense layers in one call ----------------------------------------------------
 * Layer l computes y = act(x @ kernel + bias) for a batch of rows: kernel n_in x n_out (row-major), x the
 * batch's input (layer 0) or the layer below's y. z (batch x n_out) holds the pre-activation when act is not
 * applied in the GEMM epilogue (gelu, FNN_DENSE_SOFTMAX; z may be y for softmax), else NULL. For a training
 * step: dz (batch x n_out, NULL when act is linear), dx (batch x n_in, NULL for layer 0), bias_grad (where the
 * bias gradient is left), and the velocities (NULL exactly when momentum == 0). bias NULL: no bias. */
#define FNN_DENSE_SOFTMAX (-1) /* row-wise; only as the last layer of a forward pass */
typedef struct {
    int64_t n_in, n_out;
    float *kernel, *bias, *kernel_vel, *bias_vel, *bias_grad;
    int act;
    float alpha;
    float *z, *y, *dz, *dx;
} fnn_dense_layer;
enum fnn_dense_loss { /* the loss of a step, on the last layer's y (logits for the first three) */
    FNN_DENSE_XENT_SPARSE = 0, /* fnn_softmax_xent_sparse_f32, labels */
    FNN_DENSE_XENT_DENSE = 1,  /* fnn_softmax_xent_dense_f32, targets */
    FNN_DENSE_BCE_LOGITS = 2,  /* fnn_sigmoid_bce_f32, targets */
    FNN_DENSE_MSE = 3          /* fnn_mse_f32, targets */
};
/* The forward pass of n_layers layers on x (batch x n_in of layer 0) into each layer's y. team != 0 with
 * n_threads > 1: one parallel region, every layer split by output columns; else layer after layer, each kernel
 * on n_threads. The same bits either way, and the same as fnn_gemm_f32 and the activation kernels layer by
 * layer. */
int fnn_dense_forward_f32(int64_t n_layers, const fnn_dense_layer *layers, int64_t batch, const float *x, int team,
                          int n_threads);
/* One SGD training step (Keras' rule, as fnn_sgd_decay_clip_f32): the forward pass, the loss (*loss, its
 * gradient into grad, batch x n_out of the last layer; w: sample weights or NULL), and, when the loss is
 * finite, the backward pass updating every kernel (fnn_gemm_sgd_f32) and bias. A non-finite loss leaves the
 * weights untouched. Bitwise the same as those kernels called layer by layer, for any team and n_threads. */
int fnn_dense_sgd_step_f32(int64_t n_layers, const fnn_dense_layer *layers, int64_t batch, const float *x,
                           int loss_kind, const int64_t *labels, const float *targets, const float *w, float *grad,
                           double lr, double momentum, int nesterov, double weight_decay, double clipvalue,
                           double *loss, int team, int n_threads);
/* ---- conv_implicit.c: stride-1 NHWC convolution as implicit GEMM (no column matrix) -----------------
 * Geometry as im2col.c with strides 1: x batch x h x w x c, output grid oh x ow, kernel (kh*kw*c) x filters.
 * forward: y (batch*oh*ow x filters) = act(conv + bias), bitwise what im2col + fnn_gemm_f32 give; pooled (or
 *   NULL; oh, ow even): y max-pooled 2 x 2 at stride 2, argmax (or NULL) as fnn_maxpool2d_forward_f32's; y may
 *   be NULL when pooled is given (the full-resolution map is then never written).
 * backward_data: dx (batch x h x w x c) = the gradient of the convolution for dz (batch*oh*ow x filters),
 *   zeroed where relu_y (x's shape, or NULL) <= 0: given the ReLU output x is, the ReLU's input gradient;
 *   dx_colsum (c floats, or NULL) = the sums of dx per channel (in double, image row by image row, the rows
 *   in order: the same bits for any n_threads), that ReLU's layer's bias gradient.
 * backward_kernel: dkernel (kh*kw*c x filters) (+)= the kernel gradient for x and dz. Any n_threads: same bits.
 * winograd (forward, backward_data): run as Winograd F(2x2, 3x3) where fnn_conv2d_winograd_applies (for
 *   backward_data, to the correlation it runs: c and filters, h and w swapped with filters, oh and ow), else
 *   as said: rounding differs from the direct chain's (relative errors of about 1e-6); bits the same for any
 *   n_threads. */
/* backward: dkernel (or NULL) as backward_kernel and dx (or NULL) as backward_data, in chunks of images whose
 * maps stay in cache from one to the other when both are given; the same bits as the two calls. */
int fnn_conv2d_implicit_backward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw,
                                     int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t oh, int64_t ow,
                                     int64_t filters, const float *x, const float *dz, const float *kernel,
                                     float *dkernel, int accumulate, const float *relu_y, float *dx,
                                     float *dx_colsum, int winograd, int n_threads);
int fnn_conv2d_winograd_applies(int64_t c, int64_t kh, int64_t kw, int64_t dh, int64_t dw, int64_t oh, int64_t ow,
                                 int64_t filters);
int fnn_conv2d_implicit_forward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw,
                                    int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t oh, int64_t ow,
                                    int64_t filters, const float *x, const float *kernel, const float *bias,
                                    int act, float act_alpha, float *y, float *pooled, int32_t *argmax,
                                    int winograd, int n_threads);
int fnn_conv2d_implicit_backward_data_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw,
                                          int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t oh, int64_t ow,
                                          int64_t filters, const float *dz, const float *kernel,
                                          const float *relu_y, float *dx, float *dx_colsum, int winograd,
                                          int n_threads);
int fnn_conv2d_implicit_backward_kernel_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t kh,
                                            int64_t kw, int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t oh,
                                            int64_t ow, int64_t filters, const float *x, const float *dz,
                                            float *dkernel, int accumulate, int n_threads);

/* ---- act_colsum.c: dz = dy * act'(.) (x, y as fnn_act_backward_f32; rows x cols, contiguous) and
 * dbias (+)= the column sums of dz (in double, fixed blocks of rows: the same bits for any n_threads). */
int fnn_act_backward_colsum_f32(int64_t rows, int64_t cols, const float *x, const float *y, const float *dy,
                                float *dz, int act, float alpha, float *dbias, int accumulate, int n_threads);
/* ---- conv_small.c: direct Conv2D forward for few channels (stride 1, no dilation), NHWC ----------------
 * y = act(conv(x, kernel) + bias) for x (batch, h, w, cin), kernel (kh, kw, cin, cout) as Keras, bias NULL
 * or (cout), top/left zero padding pt, pl, output grid oh x ow (input row oy + ky - pt, column ox + kx - pl);
 * act FNN_ACT_LINEAR, RELU or LEAKY_RELU. Outputs, each NULL when not wanted (not both y and pooled): y
 * (batch, oh, ow, cout); pooled, y after a 2 x 2 max pool at stride 2 ((batch, oh / 2, ow / 2, cout)), and
 * argmax (its shape, needs pooled) the index of each max in its image of y, both as pool.c.
 * Each output is the FMA chain over (ky, kx, ci) then bias and act: the same bits for any n_threads. */
int fnn_conv2d_small_forward_f32(int64_t batch, int64_t h, int64_t w, int64_t cin, int64_t kh, int64_t kw,
                                 int64_t pt, int64_t pl, int64_t oh, int64_t ow, int64_t cout, const float *x,
                                 const float *kernel, const float *bias, int act, float act_alpha, float *y,
                                 float *pooled, int32_t *argmax, int n_threads);
/* Its backward passes, for the same shapes: dkernel (kh, kw, cin, cout) = (accumulate ? dkernel : 0) + sum over
 * the batch of x * dz (dz the gradient of the pre-activation output, (batch, oh, ow, cout); double sums of
 * per-image float sums), and the same for dbias (cout) = the sum of dz when dbias is not NULL; dx (batch, h,
 * w, cin) = the gradient of the input, overwritten (pt < kh, pl < kw). The same bits for any n_threads. */
int fnn_conv2d_small_backward_filter_f32(int64_t batch, int64_t h, int64_t w, int64_t cin, int64_t kh,
                                         int64_t kw, int64_t pt, int64_t pl, int64_t oh, int64_t ow,
                                         int64_t cout, const float *x, const float *dz, float *dkernel,
                                         float *dbias, int accumulate, int n_threads);
int fnn_conv2d_small_backward_input_f32(int64_t batch, int64_t h, int64_t w, int64_t cin, int64_t kh,
                                        int64_t kw, int64_t pt, int64_t pl, int64_t oh, int64_t ow, int64_t cout,
                                        const float *dz, const float *kernel, float *dx, int n_threads);

/* ---- finite.c: 1 when all n floats of x are finite (no NaN, no infinity), else 0; 1 for n <= 0. -------- */
int fnn_all_finite_f32(int64_t n, const float *x);

#endif
