# Declarations of the C kernel API in src/fnn.h, shared by the .pxi parts of _kernels.pyx.
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t

cdef extern from "fnn.h" nogil:
    int FNN_OK, FNN_EBADARG, FNN_ENOMEM, FNN_EISA
    int FNN_ACT_LINEAR, FNN_ACT_RELU, FNN_ACT_LEAKY_RELU, FNN_ACT_SIGMOID, FNN_ACT_TANH, FNN_ACT_GELU
    int FNN_ISA_GENERIC, FNN_ISA_AVX2, FNN_ISA_AVX512

    int fnn_isa_supported(int isa)
    int fnn_isa_select(int isa)
    int fnn_isa_current()
    const char *fnn_isa_name(int isa)

    int fnn_omp_max_threads()
    void fnn_omp_set_threads(int n)

    int fnn_gemm_f32(int64_t m, int64_t n, int64_t k,
                     const float *a, int64_t lda, int trans_a,
                     const float *b, int64_t ldb, int trans_b,
                     float *c, int64_t ldc, int accumulate,
                     const float *bias, int act, float act_alpha, int n_threads)
    int fnn_gemv_in_halves(int64_t m, int64_t k)

    int fnn_act_forward_f32(int64_t rows, int64_t cols, const float *x, int64_t ldx, const float *bias,
                            float *y, int64_t ldy, int act, float alpha, int n_threads)
    int fnn_act_backward_f32(int64_t n, const float *x, const float *y, const float *dy, float *dx,
                             int act, float alpha, int n_threads)
    int fnn_softmax_forward_f32(int64_t rows, int64_t cols, const float *x, float *y, int n_threads)
    int fnn_softmax_backward_f32(int64_t rows, int64_t cols, const float *y, const float *dy, float *dx,
                                 int n_threads)
    int fnn_colsum_f32(int64_t rows, int64_t cols, const float *x, int64_t ldx, float *out, int accumulate,
                       int n_threads)
    int fnn_dropout_forward_f32(int64_t n, const float *x, float *y, uint8_t *mask, float rate, uint64_t seed,
                                int n_threads)
    int fnn_dropout_backward_f32(int64_t n, const float *dy, const uint8_t *mask, float *dx, float rate,
                                 int n_threads)

    int fnn_softmax_xent_sparse_f32(int64_t n, int64_t c, const float *z, const int64_t *labels,
                                    const float *w, float *grad, double *loss, int n_threads)
    int fnn_softmax_xent_dense_f32(int64_t n, int64_t c, const float *z, const float *t, const float *w,
                                   float *grad, double *loss, int n_threads)
    int fnn_mse_f32(int64_t n, int64_t c, const float *p, const float *t, const float *w, float *grad,
                    double *loss, int n_threads)
    int fnn_sigmoid_bce_f32(int64_t n, int64_t c, const float *z, const float *t, const float *w,
                            float *grad, double *loss, int n_threads)


    int fnn_fma_peak_f32(int64_t iterations, int n_threads, double *flops_done)

    int fnn_adam_f32(int64_t n, int64_t n_span, const int64_t *span_offsets, const int64_t *span_sizes,
                     const float *span_scales, const float *grads, float *params, float *m, float *v, double lr,
                     double beta_1, double beta_2, double epsilon, int64_t step, double weight_decay,
                     double clipvalue, int n_threads)
    int fnn_rmsprop_f32(int64_t n, int64_t n_span, const int64_t *span_offsets, const int64_t *span_sizes,
                        const float *span_scales, const float *grads, float *params, float *velocity,
                        float *momentum_buf, float *average_grad, double lr, double rho, double momentum,
                        double epsilon, double weight_decay, double clipvalue, int n_threads)
    int fnn_adagrad_f32(int64_t n, int64_t n_span, const int64_t *span_offsets, const int64_t *span_sizes,
                        const float *span_scales, const float *grads, float *params, float *accumulator,
                        double lr, double epsilon, double weight_decay, double clipvalue, int n_threads)
    int fnn_sgd_decay_clip_f32(int64_t n, int64_t n_span, const int64_t *span_offsets, const int64_t *span_sizes,
                               const float *span_scales, const float *grads, float *params, float *velocity,
                               double lr, double momentum, int nesterov, double weight_decay, double clipvalue,
                               int n_threads)
    int fnn_gemm_sgd_f32(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, int trans_a, const float *b,
                         int64_t ldb, float *params, float *velocity, int64_t ldp, double lr, double momentum,
                         int nesterov, double weight_decay, double clipvalue, int n_threads)
    int fnn_sq_norms_f32(int64_t n, int64_t n_seg, const int64_t *offsets, const int64_t *sizes, const float *x,
                         double *out, int n_threads)
    int fnn_clip_scales_f32(int64_t n_seg, const double *sq_norms, double clipnorm, int is_global, float *scales)

    int fnn_im2col_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh,
                       int64_t sw, int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t oh, int64_t ow,
                       int64_t row0, int64_t rows, const float *x, float *cols, int64_t ldcols, int n_threads)
    int fnn_col2im_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh,
                       int64_t sw, int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t oh, int64_t ow,
                       int64_t row0, int64_t rows, const float *cols, int64_t ldcols, float *dx, int n_threads)
    int fnn_conv2d_forward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh,
                               int64_t sw, int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t oh, int64_t ow,
                               int64_t filters, const float *x, const float *kernel, const float *bias, int act,
                               float act_alpha, float *y, float *cols, int64_t chunk, int n_cols, int n_threads)
    int fnn_maxpool2d_forward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t ph, int64_t pw,
                                  int64_t sh, int64_t sw, int64_t pt, int64_t pl, int64_t oh, int64_t ow,
                                  const float *x, float *y, int32_t *argmax, int n_threads)
    int fnn_maxpool2d_backward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t oh, int64_t ow,
                                   const float *dy, const int32_t *argmax, float *dx, int n_threads)
    int fnn_maxpool2d_backward_relu_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t oh, int64_t ow,
                                        const float *dy, const int32_t *argmax, const float *pooled, float *dz,
                                        float *dbias, int n_threads)
    int fnn_avgpool2d_forward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t ph, int64_t pw,
                                  int64_t sh, int64_t sw, int64_t pt, int64_t pl, int64_t oh, int64_t ow,
                                  const float *x, float *y, int n_threads)
    int fnn_avgpool2d_backward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t ph, int64_t pw,
                                   int64_t sh, int64_t sw, int64_t pt, int64_t pl, int64_t oh, int64_t ow,
                                   const float *dy, float *dx, int n_threads)

    int fnn_batchnorm_stats_f32(int64_t rows, int64_t c, const float *x, double momentum, float *mean, float *var,
                                float *moving_mean, float *moving_var, int n_threads)
    int fnn_batchnorm_forward_f32(int64_t rows, int64_t c, const float *x, const float *mean, const float *var,
                                  const float *gamma, const float *beta, double epsilon, float *y, int n_threads)
    int fnn_batchnorm_backward_f32(int64_t rows, int64_t c, const float *x, const float *dy, const float *mean,
                                   const float *var, const float *gamma, double epsilon, int training,
                                   int accumulate, float *dx, float *dgamma, float *dbeta, int n_threads)

    int fnn_simple_rnn_forward_f32(int64_t batch, int64_t steps, int64_t n_in, int64_t units, const float *x,
                                   const float *kernel, const float *recurrent, const float *bias, const float *h0,
                                   int act, int go_backwards, float *xt, float *gates, float *h_prev, float *h_last,
                                   float *seq, int n_threads)
    int fnn_simple_rnn_backward_f32(int64_t batch, int64_t steps, int64_t n_in, int64_t units, const float *xt,
                                    const float *kernel, const float *recurrent, const float *gates,
                                    const float *h_prev, const float *dseq, const float *dh_last, int act,
                                    int go_backwards, float *dz, float *dxt, float *dx, float *dkernel,
                                    float *drecurrent, float *dbias, int accumulate, int n_threads)
    int fnn_lstm_forward_f32(int64_t batch, int64_t steps, int64_t n_in, int64_t units, const float *x,
                             const float *kernel, const float *recurrent, const float *bias, const float *h0,
                             const float *c0, int act, int rec_act, int go_backwards, float *xt, float *gates,
                             float *h_prev, float *c_prev, float *h_last, float *c_last, float *seq, int n_threads)
    int fnn_lstm_infer_f32(int64_t batch, int64_t steps, int64_t n_in, int64_t units, const float *x,
                           const float *kernel, const float *recurrent, const float *bias, const float *h0,
                           const float *c0, int act, int rec_act, int go_backwards, float *h_last, float *c_last,
                           float *seq, int n_threads)
    int fnn_lstm_backward_f32(int64_t batch, int64_t steps, int64_t n_in, int64_t units, const float *xt,
                              const float *kernel, const float *recurrent, const float *gates, const float *h_prev,
                              const float *c_prev, const float *c_last, const float *dseq, const float *dh_last,
                              int act, int rec_act, int go_backwards, float *dz, float *dxt, float *dx, float *dkernel,
                              float *drecurrent, float *dbias, int accumulate, int n_threads)
    int fnn_gru_forward_f32(int64_t batch, int64_t steps, int64_t n_in, int64_t units, const float *x,
                            const float *kernel, const float *recurrent, const float *bias, const float *h0, int act,
                            int rec_act, int go_backwards, float *xt, float *gates, float *rec_h, float *h_prev,
                            float *h_last, float *seq, int n_threads)
    int fnn_gru_infer_f32(int64_t batch, int64_t steps, int64_t n_in, int64_t units, const float *x,
                          const float *kernel, const float *recurrent, const float *bias, const float *h0, int act,
                          int rec_act, int go_backwards, float *h_last, float *seq, int n_threads)
    int fnn_gru_backward_f32(int64_t batch, int64_t steps, int64_t n_in, int64_t units, const float *xt,
                             const float *kernel, const float *recurrent, const float *gates, const float *rec_h,
                             const float *h_prev, const float *dseq, const float *dh_last, int act, int rec_act,
                             int go_backwards, float *dzx, float *dzr, float *dxt, float *dx, float *dkernel,
                             float *drecurrent, float *dbias, int accumulate, int n_threads)

    int fnn_embedding_forward_f32(int64_t n, int64_t vocab, int64_t dim, const int64_t *ids, const float *table,
                                  float *y, int n_threads)
    int fnn_embedding_backward_f32(int64_t n, int64_t vocab, int64_t dim, const int64_t *ids, const float *dy,
                                   float *dtable, int accumulate, int n_threads)
    int fnn_rbm_uniform_f32(int64_t n, uint64_t key, uint64_t counter, float *out, int n_threads)
    int fnn_rbm_sample_f32(int64_t n, const float *mean, float *out, int gaussian, uint64_t key, uint64_t counter,
                           int n_threads)
    int fnn_rbm_update_f32(int64_t batch, int64_t n_visible, int64_t n_hidden, const float *v0, const float *h0,
                           const float *vk, const float *hk, float *weights, float *visible_bias,
                           float *hidden_bias, float *weights_inc, float *visible_inc, float *hidden_inc,
                           float learning_rate, float momentum, float weight_decay, float *work, int n_threads)

    int FNN_RESIZE_NEAREST, FNN_RESIZE_BILINEAR
    int fnn_resize2d_forward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t oh, int64_t ow, int mode,
                                 const float *x, float *y, int n_threads)
    int fnn_resize2d_backward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t oh, int64_t ow,
                                  int mode, const float *dy, float *dx, int n_threads)

    int FNN_DENSE_SOFTMAX, FNN_DENSE_XENT_SPARSE, FNN_DENSE_XENT_DENSE, FNN_DENSE_BCE_LOGITS, FNN_DENSE_MSE
    ctypedef struct fnn_dense_layer:
        int64_t n_in, n_out
        float *kernel
        float *bias
        float *kernel_vel
        float *bias_vel
        float *bias_grad
        int act
        float alpha
        float *z
        float *y
        float *dz
        float *dx
    int fnn_dense_forward_f32(int64_t n_layers, const fnn_dense_layer *layers, int64_t batch, const float *x,
                              int team, int n_threads)
    int fnn_dense_sgd_step_f32(int64_t n_layers, const fnn_dense_layer *layers, int64_t batch, const float *x,
                               int loss_kind, const int64_t *labels, const float *targets, const float *w,
                               float *grad, double lr, double momentum, int nesterov, double weight_decay,
                               double clipvalue, double *loss, int team, int n_threads)
    int fnn_conv2d_implicit_forward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw,
                                        int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t oh, int64_t ow,
                                        int64_t filters, const float *x, const float *kernel, const float *bias,
                                        int act, float act_alpha, float *y, float *pooled, int32_t *argmax,
                                        int winograd, int n_threads)
    int fnn_conv2d_implicit_backward_data_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t kh,
                                              int64_t kw, int64_t pt, int64_t pl, int64_t dh, int64_t dw,
                                              int64_t oh, int64_t ow, int64_t filters, const float *dz,
                                              const float *kernel, const float *relu_y, float *dx,
                                              float *dx_colsum, int winograd, int n_threads)
    int fnn_conv2d_implicit_backward_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw,
                                         int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t oh, int64_t ow,
                                         int64_t filters, const float *x, const float *dz, const float *kernel,
                                         float *dkernel, int accumulate, const float *relu_y, float *dx,
                                         float *dx_colsum, int winograd, int n_threads)
    int fnn_conv2d_winograd_applies(int64_t c, int64_t kh, int64_t kw, int64_t dh, int64_t dw, int64_t oh,
                                    int64_t ow, int64_t filters)
    int fnn_conv2d_implicit_backward_kernel_f32(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t kh,
                                                int64_t kw, int64_t pt, int64_t pl, int64_t dh, int64_t dw,
                                                int64_t oh, int64_t ow, int64_t filters, const float *x,
                                                const float *dz, float *dkernel, int accumulate, int n_threads)
    int fnn_act_backward_colsum_f32(int64_t rows, int64_t cols, const float *x, const float *y, const float *dy,
                                    float *dz, int act, float alpha, float *dbias, int accumulate, int n_threads)
    int fnn_conv2d_small_forward_f32(int64_t batch, int64_t h, int64_t w, int64_t cin, int64_t kh, int64_t kw,
                                     int64_t pt, int64_t pl, int64_t oh, int64_t ow, int64_t cout, const float *x,
                                     const float *kernel, const float *bias, int act, float act_alpha, float *y,
                                     float *pooled, int32_t *argmax, int n_threads)
    int fnn_conv2d_small_backward_filter_f32(int64_t batch, int64_t h, int64_t w, int64_t cin, int64_t kh,
                                             int64_t kw, int64_t pt, int64_t pl, int64_t oh, int64_t ow,
                                             int64_t cout, const float *x, const float *dz, float *dkernel,
                                             float *dbias, int accumulate, int n_threads)
    int fnn_conv2d_small_backward_input_f32(int64_t batch, int64_t h, int64_t w, int64_t cin, int64_t kh,
                                            int64_t kw, int64_t pt, int64_t pl, int64_t oh, int64_t ow,
                                            int64_t cout, const float *dz, const float *kernel, float *dx,
                                            int n_threads)
    int fnn_all_finite_f32(int64_t n, const float *x)
