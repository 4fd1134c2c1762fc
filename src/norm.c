/* Batch normalization over the rows of a (rows, c) matrix, channels last (Keras' BatchNormalization).
 *
 * Per-channel sums run in double over fixed blocks of NORM_BLOCK rows; the blocks' partial sums are then added
 * in block order by one thread. The blocks do not depend on the thread count, so every result is bitwise the
 * same for any n_threads. Element-wise passes are split over rows (independent outputs).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fnn.h"

#define NORM_BLOCK 256          /* rows per partial sum */
#define NORM_PAR_MIN (1 << 15)  /* fewer elements than this run on one thread */

/* 1 when rows x c elements are addressable (rows >= min_rows, c >= 1, no int64 overflow). */
static int sizes_ok(int64_t rows, int64_t c, int64_t min_rows)
{
    return rows >= min_rows && c >= 1 && (rows == 0 || c <= INT64_MAX / rows);
}

static int norm_threads(int n_threads, int64_t rows, int64_t c)
{
    return (n_threads > 1 && rows * c >= NORM_PAR_MIN) ? n_threads : 1;
}

/* part[b * c + j] = sum over the rows of block b of x[i, j] - shift[j] (shift NULL: 0), squared if `square`. */
static void block_sums(int64_t rows, int64_t c, const float *x, const float *shift, int square, double *part,
                       int nt)
{
    int64_t nb = (rows + NORM_BLOCK - 1) / NORM_BLOCK;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        unsigned fpu = fnn_fpu_enter();
#pragma omp for schedule(static)
        for (int64_t b = 0; b < nb; b++) {
            double *acc = part + b * c;
            int64_t end = (b + 1) * NORM_BLOCK < rows ? (b + 1) * NORM_BLOCK : rows;
            for (int64_t j = 0; j < c; j++)
                acc[j] = 0.0;
            for (int64_t i = b * NORM_BLOCK; i < end; i++) {
                const float *row = x + i * c;
                if (!shift) {
                    for (int64_t j = 0; j < c; j++)
                        acc[j] += (double)row[j];
                } else if (square) {
                    for (int64_t j = 0; j < c; j++) {
                        double d = (double)row[j] - (double)shift[j];
                        acc[j] += d * d;
                    }
                } else {
                    for (int64_t j = 0; j < c; j++)
                        acc[j] += (double)row[j] - (double)shift[j];
                }
            }
        }
        fnn_fpu_leave(fpu);
    }
}

/* total[j] = sum over blocks of part[b * c + j], in block order. */
static void combine(int64_t nb, int64_t c, const double *part, double *total)
{
    for (int64_t j = 0; j < c; j++)
        total[j] = 0.0;
    for (int64_t b = 0; b < nb; b++)
        for (int64_t j = 0; j < c; j++)
            total[j] += part[b * c + j];
}

int fnn_batchnorm_stats_f32(int64_t rows, int64_t c, const float *x, double momentum, float *mean, float *var,
                            float *moving_mean, float *moving_var, int n_threads)
{
    if (!sizes_ok(rows, c, 1) || !x || !mean || !var || !(momentum >= 0.0 && momentum <= 1.0) ||
        (!moving_mean) != (!moving_var))
        return FNN_EBADARG;
    int64_t nb = (rows + NORM_BLOCK - 1) / NORM_BLOCK;
    double *part = malloc((size_t)(nb + 1) * (size_t)c * sizeof(double));
    if (!part)
        return FNN_ENOMEM;
    double *total = part + nb * c;
    int nt = norm_threads(n_threads, rows, c);
    unsigned fpu = fnn_fpu_enter();
    block_sums(rows, c, x, NULL, 0, part, nt);
    combine(nb, c, part, total);
    for (int64_t j = 0; j < c; j++)
        mean[j] = (float)(total[j] / (double)rows);
    /* Second pass around the float mean: exact enough and free of the cancellation of E[x^2] - E[x]^2. */
    block_sums(rows, c, x, mean, 1, part, nt);
    combine(nb, c, part, total);
    for (int64_t j = 0; j < c; j++)
        var[j] = (float)(total[j] / (double)rows);
    if (moving_mean) {
        float m = (float)momentum, r = (float)(1.0 - momentum);
        for (int64_t j = 0; j < c; j++) {
            moving_mean[j] = moving_mean[j] * m + mean[j] * r;
            moving_var[j] = moving_var[j] * m + var[j] * r;
        }
    }
    fnn_fpu_leave(fpu);
    free(part);
    return FNN_OK;
}

/* scale[j] = gamma[j] / sqrt(var[j] + epsilon), gamma NULL meaning 1. */
static void inv_scales(int64_t c, const float *var, const float *gamma, double epsilon, float *inv, float *scale)
{
    for (int64_t j = 0; j < c; j++) {
        inv[j] = (float)(1.0 / sqrt((double)var[j] + epsilon));
        scale[j] = gamma ? gamma[j] * inv[j] : inv[j];
    }
}

int fnn_batchnorm_forward_f32(int64_t rows, int64_t c, const float *x, const float *mean, const float *var,
                              const float *gamma, const float *beta, double epsilon, float *y, int n_threads)
{
    if (!sizes_ok(rows, c, 0) || !(epsilon > 0.0) || !mean || !var)
        return FNN_EBADARG;
    if (rows == 0)
        return FNN_OK;
    if (!x || !y)
        return FNN_EBADARG;
    float *scale = malloc(2 * (size_t)c * sizeof(float));
    if (!scale)
        return FNN_ENOMEM;
    float *inv = scale + c;
    inv_scales(c, var, gamma, epsilon, inv, scale);
    int nt = norm_threads(n_threads, rows, c);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        unsigned fpu = fnn_fpu_enter();
#pragma omp for schedule(static)
        for (int64_t i = 0; i < rows; i++) {
            const float *xr = x + i * c;
            float *yr = y + i * c;
            for (int64_t j = 0; j < c; j++)
                yr[j] = (xr[j] - mean[j]) * scale[j] + (beta ? beta[j] : 0.0f);
        }
        fnn_fpu_leave(fpu);
    }
    free(scale);
    return FNN_OK;
}

int fnn_batchnorm_backward_f32(int64_t rows, int64_t c, const float *x, const float *dy, const float *mean,
                               const float *var, const float *gamma, double epsilon, int training,
                               int accumulate, float *dx, float *dgamma, float *dbeta, int n_threads)
{
    if (!sizes_ok(rows, c, 1) || !(epsilon > 0.0) || !x || !dy || !mean || !var)
        return FNN_EBADARG;
    int64_t nb = (rows + NORM_BLOCK - 1) / NORM_BLOCK;
    /* part: nb blocks of sums; then the totals of dy and of dy * (x - mean); then inv and scale in float. */
    double *part = malloc((size_t)(nb + 2) * (size_t)c * sizeof(double) + 4 * (size_t)c * sizeof(float));
    if (!part)
        return FNN_ENOMEM;
    double *sum_dy = part + nb * c, *sum_dyxc = sum_dy + c;
    float *inv = (float *)(sum_dyxc + c), *scale = inv + c, *k_dy = scale + c, *k_xhat = k_dy + c;
    int nt = norm_threads(n_threads, rows, c);
    unsigned fpu = fnn_fpu_enter();
    inv_scales(c, var, gamma, epsilon, inv, scale);
    block_sums(rows, c, dy, NULL, 0, part, nt);
    combine(nb, c, part, sum_dy);
    /* sum dy * (x - mean), in double, by the same fixed blocks. */
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        unsigned tfpu = fnn_fpu_enter();
#pragma omp for schedule(static)
        for (int64_t b = 0; b < nb; b++) {
            double *acc = part + b * c;
            int64_t end = (b + 1) * NORM_BLOCK < rows ? (b + 1) * NORM_BLOCK : rows;
            for (int64_t j = 0; j < c; j++)
                acc[j] = 0.0;
            for (int64_t i = b * NORM_BLOCK; i < end; i++)
                for (int64_t j = 0; j < c; j++)
                    acc[j] += (double)dy[i * c + j] * ((double)x[i * c + j] - (double)mean[j]);
        }
        fnn_fpu_leave(tfpu);
    }
    combine(nb, c, part, sum_dyxc);
    for (int64_t j = 0; j < c; j++) {
        double dg = sum_dyxc[j] * (double)inv[j]; /* sum dy * xhat */
        if (dgamma)
            dgamma[j] = (float)(accumulate ? (double)dgamma[j] + dg : dg);
        if (dbeta)
            dbeta[j] = (float)(accumulate ? (double)dbeta[j] + sum_dy[j] : sum_dy[j]);
        /* training: dx = scale * (dy - mean(dy) - xhat * mean(dy * xhat)); inference: dx = scale * dy */
        k_dy[j] = training ? (float)(sum_dy[j] / (double)rows) : 0.0f;
        k_xhat[j] = training ? (float)(dg / (double)rows * (double)inv[j]) : 0.0f;
    }
    fnn_fpu_leave(fpu);
    if (dx) {
#pragma omp parallel num_threads(nt) if (nt > 1)
        {
            unsigned tfpu = fnn_fpu_enter();
#pragma omp for schedule(static)
            for (int64_t i = 0; i < rows; i++) {
                const float *xr = x + i * c, *dyr = dy + i * c;
                float *dxr = dx + i * c;
                for (int64_t j = 0; j < c; j++)
                    dxr[j] = scale[j] * (dyr[j] - k_dy[j] - (xr[j] - mean[j]) * k_xhat[j]);
            }
            fnn_fpu_leave(tfpu);
        }
    }
    free(part);
    return FNN_OK;
}
