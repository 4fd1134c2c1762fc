/* Activations. (Initial serial version of fnn_act_block; the rest of this file is still to come.) */
#include "fnn.h"
#include "act_internal.h"

#include <math.h>

static inline float act_one(float z, int act, float alpha)
{
    switch (act) {
    case FNN_ACT_RELU: return z > 0.0f ? z : 0.0f;
    case FNN_ACT_LEAKY_RELU: return z > 0.0f ? z : alpha * z;
    case FNN_ACT_SIGMOID: return 1.0f / (1.0f + expf(-z));
    case FNN_ACT_TANH: return tanhf(z);
    case FNN_ACT_GELU: return 0.5f * z * (1.0f + erff(z * 0.70710678118654752f));
    default: return z;
    }
}

void fnn_act_block(int64_t rows, int64_t cols, float *c, int64_t ldc, const float *bias, int act, float alpha)
{
    for (int64_t i = 0; i < rows; i++) {
        float *row = c + i * ldc;
        if (bias)
            for (int64_t j = 0; j < cols; j++)
                row[j] += bias[j];
        if (act != FNN_ACT_LINEAR)
            for (int64_t j = 0; j < cols; j++)
                row[j] = act_one(row[j], act, alpha);
    }
}
