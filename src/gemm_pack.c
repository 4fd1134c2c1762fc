/* Packing of GEMM operands into the sliver layout the micro-kernels stream through (gemm_internal.h).
 * Transposes happen here, one sliver at a time, never as a copy of a whole matrix. */
#include "gemm_internal.h"

#include <string.h>

/* Gathers `width` (<= w) strided source lines into interleaved form: dst[p*w + i] = src[i*ld + p]. */
static void interleave_portable(int64_t kc, const float *src, int64_t ld, int64_t width, int w, float *dst)
{
    int64_t p = 0;
    /* Blocks of 8 columns keep the reads of each source line within one or two cache lines. */
    for (; p + 8 <= kc; p += 8) {
        for (int64_t i = 0; i < width; i++) {
            const float *s = src + i * ld + p;
            float *d = dst + p * w + i;
            for (int q = 0; q < 8; q++)
                d[q * w] = s[q];
        }
        for (int64_t i = width; i < w; i++)
            for (int q = 0; q < 8; q++)
                dst[(p + q) * w + i] = 0.0f;
    }
    for (; p < kc; p++) {
        for (int64_t i = 0; i < width; i++)
            dst[p * w + i] = src[i * ld + p];
        for (int64_t i = width; i < w; i++)
            dst[p * w + i] = 0.0f;
    }
}

/* Copies `width` (<= w) contiguous values of each of kc lines: dst[p*w + i] = src[p*ld + i]. */
static void copy_lines(int64_t kc, const float *src, int64_t ld, int64_t width, int w, float *dst)
{
    if (width == w) {
        for (int64_t p = 0; p < kc; p++)
            memcpy(dst + p * w, src + p * ld, (size_t)w * sizeof(float));
        return;
    }
    for (int64_t p = 0; p < kc; p++) {
        memcpy(dst + p * w, src + p * ld, (size_t)width * sizeof(float));
        memset(dst + p * w + width, 0, (size_t)(w - width) * sizeof(float));
    }
}

void fnn_pack_a(int64_t rows, int64_t kc, const float *a, int64_t lda, int trans, int mr, float *dst,
                fnn_gemm_interleave interleave)
{
    if (!interleave)
        interleave = interleave_portable;
    for (int64_t i0 = 0; i0 < rows; i0 += mr) {
        int64_t width = rows - i0 < mr ? rows - i0 : mr;
        if (trans)
            copy_lines(kc, a + i0, lda, width, mr, dst);
        else
            interleave(kc, a + i0 * lda, lda, width, mr, dst);
        dst += (int64_t)mr * kc;
    }
}

void fnn_pack_b(int64_t kc, int64_t cols, const float *b, int64_t ldb, int trans, int nr, float *dst,
                fnn_gemm_interleave interleave)
{
    if (!interleave)
        interleave = interleave_portable;
    for (int64_t j0 = 0; j0 < cols; j0 += nr) {
        int64_t width = cols - j0 < nr ? cols - j0 : nr;
        if (trans)
            interleave(kc, b + j0 * ldb, ldb, width, nr, dst);
        else
            copy_lines(kc, b + j0, ldb, width, nr, dst);
        dst += (int64_t)nr * kc;
    }
}
