/* fastnn's C kernel API, recurrent layers (included by fnn.h, whose conventions hold). */
#ifndef FNN_RECURRENT_H
#define FNN_RECURRENT_H

#include <stdint.h>

/* ---- rnn.c, lstm.c, gru.c: recurrent layers over (batch, steps, n_in) sequences, Keras weight layouts ------
 * x, seq, dseq and dx are batch-major (batch, steps, w). What forward saves for backward is time-major, row
 * (t, b) at (t * batch + b) * w, indexed by input time t: `xt` (steps, batch, n_in), x reordered; `gates`
 * (steps, batch, G * units), the activated gates (G = 1 SimpleRNN, 4 LSTM i f c o, 3 GRU z r h); `h_prev`,
 * `c_prev` (steps, batch, units), the states entering each time step. `h_last`, `c_last` (batch, units) receive
 * the final states. Step s reads time t = s, or t = steps - 1 - s with go_backwards; `seq` (NULL to skip)
 * receives the output of step s at (b, s). h0, c0 are the initial states (batch, units), NULL for zeros. act
 * and rec_act are FNN_ACT_LINEAR, _RELU, _SIGMOID or _TANH; bias may be NULL. Backward takes the gradients of
 * seq (dseq) and/or of h_last (dh_last), either may be NULL; dz (steps, batch, G * units) is its workspace, and
 * dxt (steps, batch, n_in) another when dx (batch, steps, n_in) is wanted (both NULL to skip); the weight
 * gradients are overwritten, or added to with accumulate (any may be NULL). One GEMM projects all steps; per
 * step one recurrent GEMM and one fused pass; weight gradients as merged GEMMs over all steps. Threads split
 * the batch, so results are bitwise identical for any n_threads. */
int fnn_simple_rnn_forward_f32(int64_t batch, int64_t steps, int64_t n_in, int64_t units, const float *x,
                               const float *kernel, const float *recurrent, const float *bias, const float *h0,
                               int act, int go_backwards, float *xt, float *gates, float *h_prev, float *h_last,
                               float *seq, int n_threads);
int fnn_simple_rnn_backward_f32(int64_t batch, int64_t steps, int64_t n_in, int64_t units, const float *xt,
                                const float *kernel, const float *recurrent, const float *gates,
                                const float *h_prev, const float *dseq, const float *dh_last, int act,
                                int go_backwards, float *dz, float *dxt, float *dx, float *dkernel,
                                float *drecurrent, float *dbias, int accumulate, int n_threads);
int fnn_lstm_forward_f32(int64_t batch, int64_t steps, int64_t n_in, int64_t units, const float *x,
                         const float *kernel, const float *recurrent, const float *bias, const float *h0,
                         const float *c0, int act, int rec_act, int go_backwards, float *xt, float *gates,
                         float *h_prev, float *c_prev, float *h_last, float *c_last, float *seq, int n_threads);
/* Inference: the outputs of fnn_lstm_forward_f32 (h_last, c_last and seq) without saving anything, each step's
 * gates and states kept in cache. The same bits as forward for any n_threads, except a single-row batch with
 * n_in >= 512 (forward projects its steps together; one row at a time sums long rows in two halves). */
int fnn_lstm_infer_f32(int64_t batch, int64_t steps, int64_t n_in, int64_t units, const float *x,
                       const float *kernel, const float *recurrent, const float *bias, const float *h0,
                       const float *c0, int act, int rec_act, int go_backwards, float *h_last, float *c_last,
                       float *seq, int n_threads);
int fnn_lstm_backward_f32(int64_t batch, int64_t steps, int64_t n_in, int64_t units, const float *xt,
                          const float *kernel, const float *recurrent, const float *gates, const float *h_prev,
                          const float *c_prev, const float *c_last, const float *dseq, const float *dh_last,
                          int act, int rec_act, int go_backwards, float *dz, float *dxt, float *dx, float *dkernel,
                          float *drecurrent, float *dbias, int accumulate, int n_threads);
/* GRU (reset_after): bias (2, 3 units) or NULL; rec_h (steps, batch, units) saves h_{t-1} @ R_h + b_rec_h;
 * backward's workspaces dzx, dzr are (steps, batch, 3 units); dbias (2, 3 units). */
int fnn_gru_forward_f32(int64_t batch, int64_t steps, int64_t n_in, int64_t units, const float *x,
                        const float *kernel, const float *recurrent, const float *bias, const float *h0, int act,
                        int rec_act, int go_backwards, float *xt, float *gates, float *rec_h, float *h_prev,
                        float *h_last, float *seq, int n_threads);
/* Inference, as fnn_lstm_infer_f32: h_last and seq, nothing saved. */
int fnn_gru_infer_f32(int64_t batch, int64_t steps, int64_t n_in, int64_t units, const float *x,
                      const float *kernel, const float *recurrent, const float *bias, const float *h0, int act,
                      int rec_act, int go_backwards, float *h_last, float *seq, int n_threads);
int fnn_gru_backward_f32(int64_t batch, int64_t steps, int64_t n_in, int64_t units, const float *xt,
                         const float *kernel, const float *recurrent, const float *gates, const float *rec_h,
                         const float *h_prev, const float *dseq, const float *dh_last, int act, int rec_act,
                         int go_backwards, float *dzx, float *dzr, float *dxt, float *dx, float *dkernel,
                         float *drecurrent, float *dbias, int accumulate, int n_threads);

#endif
