/* What the optimizer updates over the parameter arena share (src/optim_adaptive.c, src/optim_sgd.c): the
 * spans an update covers, gradient scaling and clipping, the thread split, and per-ISA copies of a loop.
 *
 * Each update covers the spans [offsets[s], offsets[s] + sizes[s]) of the arena (sorted, disjoint); span s's
 * gradients are multiplied by scales[s] (clipping by norm; NULL: by 1) and then clipped to [-clipvalue,
 * clipvalue] (clipvalue <= 0: not clipped). Weight decay is Keras 3's decoupled form, before the update:
 * w -= w * weight_decay * lr. Hyperparameters arrive in double and are rounded to float32 where Keras does, so
 * the arithmetic is Keras' float32 arithmetic op for op.
 *
 * Threads split the concatenated spans into equal contiguous parts. Every element is updated on its own, so
 * the result is bitwise the same for any thread count.
 */
#ifndef FNN_OPTIM_INTERNAL_H
#define FNN_OPTIM_INTERNAL_H

#include "fnn.h"

#include <math.h>
#include <stddef.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* No fused multiply-adds (in every file that includes this): each operation rounds to float32 as in Keras (and
 * NumPy), so an update is the same bits on every instruction set and equals a float32 reference exactly. */
#pragma GCC optimize("fp-contract=off")

#define PARALLEL_MIN_ELEMENTS (1 << 14) /* below this, one thread (measured: 2 threads win from ~8 K elements) */

#define TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define TARGET_AVX2 __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

/* Updates elements [i0, i0 + count) with gradient scale `scale`; `args` points to the optimizer's arguments. */
typedef void (*piece_fn)(const void *args, int64_t i0, int64_t count, float scale);

/* Three compiled copies of one always-inline loop (AVX-512, AVX2, baseline) and the pick for an ISA. */
#define ISA_VARIANTS(body)                                                                                   \
    static TARGET_AVX512 void body##_avx512(const void *a, int64_t i0, int64_t c, float s) { body(a, i0, c, s); } \
    static TARGET_AVX2 void body##_avx2(const void *a, int64_t i0, int64_t c, float s) { body(a, i0, c, s); }     \
    static void body##_generic(const void *a, int64_t i0, int64_t c, float s) { body(a, i0, c, s); }             \
    static piece_fn body##_for(int isa)                                                                      \
    {                                                                                                        \
        return isa == FNN_ISA_AVX512 ? body##_avx512 : isa == FNN_ISA_AVX2 ? body##_avx2 : body##_generic;     \
    }

typedef struct {
    int64_t n_span;
    const int64_t *offsets, *sizes;
    const float *scales;
} spans;

/* What every rule does first: the clipped, scaled gradient. NaN stays NaN (both comparisons are false). */
INLINE float clipped(float g, float scale, float clip)
{
    g *= scale;
    g = g > clip ? clip : g;
    return g < -clip ? -clip : g;
}

static float clip_bound(double clipvalue)
{
    return clipvalue > 0.0 ? (float)clipvalue : INFINITY;
}

/* Sizes and pointers of the spans; returns the number of elements they cover, or -1 when invalid. */
static int64_t check_spans(int64_t n, const spans *sp)
{
    if (n < 0 || sp->n_span < 0 || (sp->n_span > 0 && (!sp->offsets || !sp->sizes)))
        return -1;
    int64_t total = 0, end = 0;
    for (int64_t s = 0; s < sp->n_span; s++) {
        int64_t off = sp->offsets[s], size = sp->sizes[s];
        if (off < end || size < 0 || off > n - size)
            return -1;
        end = off + size;
        total += size;
    }
    return total;
}

/* Part t of count of run_spans. */
static void spans_part(const spans *sp, int64_t total, piece_fn fn, const void *args, int t, int count)
{
    unsigned fpu = fnn_fpu_enter();
    int64_t lo = total * t / count, hi = total * (t + 1) / count, pos = 0;
    for (int64_t s = 0; s < sp->n_span && pos < hi; s++) {
        int64_t a = lo > pos ? lo : pos, b = hi < pos + sp->sizes[s] ? hi : pos + sp->sizes[s];
        if (a < b)
            fn(args, sp->offsets[s] + (a - pos), b - a, sp->scales ? sp->scales[s] : 1.0f);
        pos += sp->sizes[s];
    }
    fnn_fpu_leave(fpu);
}

/* Runs fn over the spans, each thread on an equal contiguous part of their concatenation. One thread opens no
 * parallel region (an inactive one still costs a team setup, e.g. inside src/dense_plan.c's region). */
static void run_spans(const spans *sp, int64_t total, int n_threads, piece_fn fn, const void *args)
{
    int nt = total < PARALLEL_MIN_ELEMENTS ? 1 : n_threads;
    if (nt <= 1) {
        spans_part(sp, total, fn, args, 0, 1);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
#ifdef _OPENMP
        spans_part(sp, total, fn, args, omp_get_thread_num(), omp_get_num_threads());
#else
        spans_part(sp, total, fn, args, 0, 1);
#endif
    }
}

#endif
