/* The element-wise kernel set for one instruction set. Included by ew_generic.c, ew_avx2.c and ew_avx512.c,
 * each after its `#pragma GCC target` and after defining EW_TABLE (the table to fill) and EW_VECTOR_BYTES
 * (the target's vector width). Every function is static, so each file gets its own copy compiled for its
 * target.
 *
 * Reductions keep a fixed number of partial sums (lanes) whatever the vector width, so the summation order,
 * and hence the result, is the same for every target and thread count.
 */
#if !defined(EW_TABLE) || !defined(EW_VECTOR_BYTES)
#error "define EW_TABLE and EW_VECTOR_BYTES before including ew_impl.h"
#endif

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ew.h"
#include "vmath.h"

#define EW_LANES 8 /* partial sums in a reduction */

/* The target's vector, for the one reduction GCC does not vectorise by itself (a float max: without
 * -ffinite-math-only it may not reorder it). */
typedef float ew_vf __attribute__((vector_size(EW_VECTOR_BYTES)));
typedef int32_t ew_vi __attribute__((vector_size(EW_VECTOR_BYTES)));
#define EW_VF_LEN ((int64_t)(EW_VECTOR_BYTES / sizeof(float)))

/* Largest element of x[0..n) (n >= 1); a NaN may or may not win, as with any max. */
static float ew_max(int64_t n, const float *x)
{
    float m = x[0];
    int64_t j = 0;
    if (n >= EW_VF_LEN) {
        ew_vf lane;
        memcpy(&lane, x, sizeof lane);
        for (j = EW_VF_LEN; j + EW_VF_LEN <= n; j += EW_VF_LEN) {
            ew_vf v;
            memcpy(&v, x + j, sizeof v);
            ew_vi gt = v > lane;
            lane = (ew_vf)(((ew_vi)v & gt) | ((ew_vi)lane & ~gt));
        }
        for (int k = 0; k < EW_VF_LEN; k++)
            m = lane[k] > m ? lane[k] : m;
    }
    for (; j < n; j++)
        m = x[j] > m ? x[j] : m;
    return m;
}

static double ew_lanes_total(const double *lane, double tail)
{
    return ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7])) + tail;
}

/* sum x[j] in double. */
static double ew_sum(int64_t n, const float *x)
{
    double lane[EW_LANES] = {0}, tail = 0.0;
    int64_t j = 0;
    for (; j + EW_LANES <= n; j += EW_LANES)
        for (int k = 0; k < EW_LANES; k++)
            lane[k] += (double)x[j + k];
    for (; j < n; j++)
        tail += (double)x[j];
    return ew_lanes_total(lane, tail);
}

/* sum a[j] * b[j] in double (the products are exact). */
static double ew_dot(int64_t n, const float *a, const float *b)
{
    double lane[EW_LANES] = {0}, tail = 0.0;
    int64_t j = 0;
    for (; j + EW_LANES <= n; j += EW_LANES)
        for (int k = 0; k < EW_LANES; k++)
            lane[k] += (double)a[j + k] * (double)b[j + k];
    for (; j < n; j++)
        tail += (double)a[j] * (double)b[j];
    return ew_lanes_total(lane, tail);
}

/* y[j] = exp(x[j] - m); y may alias x. */
static void ew_exp_shifted(int64_t n, const float *x, float m, float *y)
{
    for (int64_t j = 0; j < n; j++)
        y[j] = vm_expf(x[j] - m);
}

#include "ew_act_impl.h"
#include "ew_loss_impl.h"

const struct fnn_ew EW_TABLE = {
    .act_forward = ew_act_forward,
    .act_backward = ew_act_backward,
    .softmax_forward = ew_softmax_forward,
    .softmax_backward = ew_softmax_backward,
    .colsum = ew_colsum,
    .dropout_forward = ew_dropout_forward,
    .dropout_backward = ew_dropout_backward,
    .xent_sparse = ew_xent_sparse,
    .xent_dense = ew_xent_dense,
    .mse = ew_mse,
    .bce = ew_bce,
};
