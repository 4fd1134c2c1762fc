/* Optimizer updates with Keras 3's rules over the flat parameter arena: Adam/AdamW, RMSprop, Adagrad, and SGD
 * with weight decay or clipping. One pass per step does everything for an element: scale and clip its gradient,
 * decay its weight, update the state, update the weight.
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
#include "fnn.h"
#include "gemm_internal.h"

#include <math.h>
#include <stddef.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* No fused multiply-adds: every operation rounds to float32 as in Keras (and NumPy), so an update is the same
 * bits on every instruction set and equals a float32 reference exactly. The loops are memory-bound; FMA would
 * not make them faster. */
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

/* ---- Adam / AdamW ------------------------------------------------------------------------------------ */
typedef struct {
    const float *g;
    float *p, *m, *v;
    float lr, wd, clip, alpha, c1, c2, eps;
} adam_args;

INLINE void adam_piece(const void *args, int64_t i0, int64_t count, float scale)
{
    const adam_args *a = args;
    const float *restrict g = a->g + i0;
    float *restrict p = a->p + i0, *restrict m = a->m + i0, *restrict v = a->v + i0;
    const float lr = a->lr, wd = a->wd, clip = a->clip, alpha = a->alpha, c1 = a->c1, c2 = a->c2, eps = a->eps;
    for (int64_t i = 0; i < count; i++) {
        float gi = clipped(g[i], scale, clip);
        float w = p[i] - p[i] * wd * lr;
        float mi = m[i] + (gi - m[i]) * c1;
        float vi = v[i] + (gi * gi - v[i]) * c2;
        m[i] = mi;
        v[i] = vi;
        p[i] = w - (mi * alpha) / (sqrtf(vi) + eps);
    }
}
ISA_VARIANTS(adam_piece)

int fnn_adam_f32(int64_t n, int64_t n_span, const int64_t *span_offsets, const int64_t *span_sizes,
                 const float *span_scales, const float *grads, float *params, float *m, float *v, double lr,
                 double beta_1, double beta_2, double epsilon, int64_t step, double weight_decay,
                 double clipvalue, int n_threads)
{
    spans sp = {n_span, span_offsets, span_sizes, span_scales};
    int64_t total = check_spans(n, &sp);
    if (total < 0 || step < 1 || n_threads < 1 || (total > 0 && (!grads || !params || !m || !v)))
        return FNN_EBADARG;
    /* Keras: beta powers, the bias-corrected rate and 1 - beta are all float32 values. */
    float b1 = (float)beta_1, b2 = (float)beta_2, lr32 = (float)lr;
    float b1_power = powf(b1, (float)step), b2_power = powf(b2, (float)step);
    adam_args a = {grads, params, m, v, lr32, (float)weight_decay, clip_bound(clipvalue),
                   lr32 * sqrtf(1.0f - b2_power) / (1.0f - b1_power), (float)(1.0 - beta_1),
                   (float)(1.0 - beta_2), (float)epsilon};
    run_spans(&sp, total, n_threads, adam_piece_for(fnn_isa_current()), &a);
    return FNN_OK;
}

/* ---- RMSprop -------------------------------------------------------------------------------------------- */
typedef struct {
    const float *g;
    float *p, *vel, *mom, *avg;
    float lr, wd, clip, rho, c_rho, momentum, eps;
} rmsprop_args;

INLINE void rmsprop_loop(const rmsprop_args *a, int64_t i0, int64_t count, float scale, int use_momentum,
                         int centered)
{
    const float *restrict g = a->g + i0;
    float *restrict p = a->p + i0, *restrict vel = a->vel + i0;
    float *restrict mom = use_momentum ? a->mom + i0 : 0, *restrict avg = centered ? a->avg + i0 : 0;
    const float lr = a->lr, wd = a->wd, clip = a->clip, rho = a->rho, c_rho = a->c_rho, eps = a->eps;
    const float momentum = a->momentum;
    for (int64_t i = 0; i < count; i++) {
        float gi = clipped(g[i], scale, clip);
        float w = p[i] - p[i] * wd * lr;
        float vi = rho * vel[i] + c_rho * (gi * gi);
        vel[i] = vi;
        float denominator = vi + eps;
        if (centered) {
            float ai = rho * avg[i] + c_rho * gi;
            avg[i] = ai;
            denominator = vi - ai * ai + eps;
        }
        float increment = (lr * gi) / sqrtf(denominator);
        if (use_momentum) {
            increment = momentum * mom[i] + increment;
            mom[i] = increment;
        }
        p[i] = w - increment;
    }
}

INLINE void rmsprop_piece(const void *args, int64_t i0, int64_t count, float scale)
{
    const rmsprop_args *a = args;
    if (a->mom && a->avg)
        rmsprop_loop(a, i0, count, scale, 1, 1);
    else if (a->mom)
        rmsprop_loop(a, i0, count, scale, 1, 0);
    else if (a->avg)
        rmsprop_loop(a, i0, count, scale, 0, 1);
    else
        rmsprop_loop(a, i0, count, scale, 0, 0);
}
ISA_VARIANTS(rmsprop_piece)

int fnn_rmsprop_f32(int64_t n, int64_t n_span, const int64_t *span_offsets, const int64_t *span_sizes,
                    const float *span_scales, const float *grads, float *params, float *velocity,
                    float *momentum_buf, float *average_grad, double lr, double rho, double momentum,
                    double epsilon, double weight_decay, double clipvalue, int n_threads)
{
    spans sp = {n_span, span_offsets, span_sizes, span_scales};
    int64_t total = check_spans(n, &sp);
    if (total < 0 || n_threads < 1 || (total > 0 && (!grads || !params || !velocity)) ||
        (total > 0 && (momentum > 0.0) != (momentum_buf != 0)))
        return FNN_EBADARG;
    rmsprop_args a = {grads, params, velocity, momentum_buf, average_grad, (float)lr, (float)weight_decay,
                      clip_bound(clipvalue), (float)rho, (float)(1.0 - rho), (float)momentum, (float)epsilon};
    run_spans(&sp, total, n_threads, rmsprop_piece_for(fnn_isa_current()), &a);
    return FNN_OK;
}

/* ---- Adagrad -------------------------------------------------------------------------------------------- */
typedef struct {
    const float *g;
    float *p, *acc;
    float lr, wd, clip, eps;
} adagrad_args;

INLINE void adagrad_piece(const void *args, int64_t i0, int64_t count, float scale)
{
    const adagrad_args *a = args;
    const float *restrict g = a->g + i0;
    float *restrict p = a->p + i0, *restrict acc = a->acc + i0;
    const float lr = a->lr, wd = a->wd, clip = a->clip, eps = a->eps;
    for (int64_t i = 0; i < count; i++) {
        float gi = clipped(g[i], scale, clip);
        float w = p[i] - p[i] * wd * lr;
        float ai = acc[i] + gi * gi;
        acc[i] = ai;
        p[i] = w - (lr * gi) / sqrtf(ai + eps);
    }
}
ISA_VARIANTS(adagrad_piece)

int fnn_adagrad_f32(int64_t n, int64_t n_span, const int64_t *span_offsets, const int64_t *span_sizes,
                    const float *span_scales, const float *grads, float *params, float *accumulator, double lr,
                    double epsilon, double weight_decay, double clipvalue, int n_threads)
{
    spans sp = {n_span, span_offsets, span_sizes, span_scales};
    int64_t total = check_spans(n, &sp);
    if (total < 0 || n_threads < 1 || (total > 0 && (!grads || !params || !accumulator)))
        return FNN_EBADARG;
    adagrad_args a = {grads, params, accumulator, (float)lr, (float)weight_decay, clip_bound(clipvalue),
                      (float)epsilon};
    run_spans(&sp, total, n_threads, adagrad_piece_for(fnn_isa_current()), &a);
    return FNN_OK;
}

/* ---- SGD with weight decay or clipping ---------------------------------------------------------------- */
typedef struct {
    const float *g;
    float *p, *vel;
    float lr, wd, clip, momentum;
    int nesterov;
} sgd_args;

/* Gradient element i: g[i], or for an outer product (batch 1) ai * g[i] as the GEMM kernels compute it: one
 * fused multiply-add onto zero where they use FMA (`fused`), a multiply then an add onto zero where they do not. */
INLINE float grad_at(const float *restrict g, int64_t i, float ai, int outer, int fused)
{
    if (!outer)
        return g[i];
    return fused ? fmaf(ai, g[i], 0.0f) : ai * g[i] + 0.0f;
}

/* `plain` (no clipping, no weight decay, a finite learning rate) leaves out what is then exact without doing:
 * clipping to +-infinity changes nothing, and p * 0 * lr is p * 0 (+-0 or NaN), so the bits are the same.
 * The loop is bound by its arithmetic, not by memory: three operations fewer measured ~8% faster. */
INLINE void sgd_rule(const sgd_args *a, const float *restrict g, float *restrict p, float *restrict vel,
                     int64_t count, float scale, int use_momentum, int nesterov, float ai, int outer, int fused,
                     int plain)
{
    const float lr = a->lr, wd = a->wd, clip = a->clip, momentum = a->momentum;
    for (int64_t i = 0; i < count; i++) {
        float gi = grad_at(g, i, ai, outer, fused);
        gi = plain ? gi * scale : clipped(gi, scale, clip);
        float w = plain ? p[i] - p[i] * 0.0f : p[i] - p[i] * wd * lr;
        if (use_momentum) {
            float vi = vel[i] * momentum - gi * lr;
            vel[i] = vi;
            p[i] = nesterov ? w + (vi * momentum - gi * lr) : w + vi;
        } else {
            p[i] = w - gi * lr;
        }
    }
}

/* sgd_rule on `count` elements from g (or ai * g with `outer`), p and vel (NULL without momentum). */
INLINE void sgd_rule_variants(const sgd_args *a, const float *g, float *p, float *vel, int64_t count, float scale,
                              float ai, int outer, int fused, int plain)
{
    if (!vel)
        sgd_rule(a, g, p, NULL, count, scale, 0, 0, ai, outer, fused, plain);
    else if (a->nesterov)
        sgd_rule(a, g, p, vel, count, scale, 1, 1, ai, outer, fused, plain);
    else
        sgd_rule(a, g, p, vel, count, scale, 1, 0, ai, outer, fused, plain);
}

INLINE void sgd_rule_for(const sgd_args *a, const float *g, float *p, float *vel, int64_t count, float scale,
                         float ai, int outer, int fused)
{
    if (a->wd == 0.0f && a->clip == INFINITY && isfinite(a->lr))
        sgd_rule_variants(a, g, p, vel, count, scale, ai, outer, fused, 1);
    else
        sgd_rule_variants(a, g, p, vel, count, scale, ai, outer, fused, 0);
}

INLINE void sgd_run(const sgd_args *a, const float *g, float *p, float *vel, int64_t count, float scale)
{
    sgd_rule_for(a, g, p, vel, count, scale, 0.0f, 0, 0);
}

INLINE void sgd_piece(const void *args, int64_t i0, int64_t count, float scale)
{
    const sgd_args *a = args;
    sgd_run(a, a->g + i0, a->p + i0, a->vel ? a->vel + i0 : NULL, count, scale);
}
ISA_VARIANTS(sgd_piece)

int fnn_sgd_decay_clip_f32(int64_t n, int64_t n_span, const int64_t *span_offsets, const int64_t *span_sizes,
                           const float *span_scales, const float *grads, float *params, float *velocity,
                           double lr, double momentum, int nesterov, double weight_decay, double clipvalue,
                           int n_threads)
{
    spans sp = {n_span, span_offsets, span_sizes, span_scales};
    int64_t total = check_spans(n, &sp);
    if (total < 0 || n_threads < 1 || (total > 0 && (!grads || !params || (momentum > 0.0) != (velocity != 0))))
        return FNN_EBADARG;
    sgd_args a = {grads, params, velocity, (float)lr, (float)weight_decay, clip_bound(clipvalue),
                  (float)momentum, nesterov != 0};
    run_spans(&sp, total, n_threads, sgd_piece_for(fnn_isa_current()), &a);
    return FNN_OK;
}

/* ---- SGD fed by the weight-gradient GEMM -------------------------------------------------------------- */
typedef struct {
    sgd_args a;
    int64_t ldp;
} sgd_tile_ctx;

/* The SGD rule on one finished gradient tile, row by row: the same arithmetic as sgd_piece at scale 1. */
INLINE void sgd_tile(void *ctx, int64_t i, int64_t j, int64_t mr, int64_t nr, const float *tile, int64_t ldt)
{
    const sgd_tile_ctx *t = ctx;
    for (int64_t r = 0; r < mr; r++) {
        int64_t at = (i + r) * t->ldp + j;
        sgd_run(&t->a, tile + r * ldt, t->a.p + at, t->a.vel ? t->a.vel + at : NULL, nr, 1.0f);
    }
}

static TARGET_AVX512 void sgd_tile_avx512(void *c, int64_t i, int64_t j, int64_t mr, int64_t nr, const float *t,
                                          int64_t ld) { sgd_tile(c, i, j, mr, nr, t, ld); }
static TARGET_AVX2 void sgd_tile_avx2(void *c, int64_t i, int64_t j, int64_t mr, int64_t nr, const float *t,
                                      int64_t ld) { sgd_tile(c, i, j, mr, nr, t, ld); }
static void sgd_tile_generic(void *c, int64_t i, int64_t j, int64_t mr, int64_t nr, const float *t, int64_t ld)
{
    sgd_tile(c, i, j, mr, nr, t, ld);
}

/* k = 1 (batch 1): G = a^T b is an outer product. Each g is computed inside the rule's loop (grad_at), never
 * stored: staging a row of g in a buffer first measured ~20% slower (784 x 256 with momentum). */
INLINE void sgd_outer(const sgd_tile_ctx *t, const float *a, const float *b, int64_t i0, int64_t i1, int64_t n,
                      int fused)
{
    for (int64_t i = i0; i < i1; i++) {
        int64_t at = i * t->ldp;
        sgd_rule_for(&t->a, b, t->a.p + at, t->a.vel ? t->a.vel + at : NULL, n, 1.0f, a[i], 1, fused);
    }
}

typedef void (*outer_fn)(const sgd_tile_ctx *, const float *, const float *, int64_t, int64_t, int64_t);
static TARGET_AVX512 void sgd_outer_avx512(const sgd_tile_ctx *t, const float *a, const float *b, int64_t i0,
                                           int64_t i1, int64_t n) { sgd_outer(t, a, b, i0, i1, n, 1); }
static TARGET_AVX2 void sgd_outer_avx2(const sgd_tile_ctx *t, const float *a, const float *b, int64_t i0,
                                       int64_t i1, int64_t n) { sgd_outer(t, a, b, i0, i1, n, 1); }
static void sgd_outer_generic(const sgd_tile_ctx *t, const float *a, const float *b, int64_t i0, int64_t i1,
                              int64_t n) { sgd_outer(t, a, b, i0, i1, n, 0); }

static void run_outer(const sgd_tile_ctx *t, const float *a, const float *b, int64_t m, int64_t n, int isa,
                      int n_threads)
{
    outer_fn fn = isa == FNN_ISA_AVX512 ? sgd_outer_avx512 : isa == FNN_ISA_AVX2 ? sgd_outer_avx2 : sgd_outer_generic;
    int nt = m * n < PARALLEL_MIN_ELEMENTS ? 1 : n_threads;
    if (nt <= 1) { /* no parallel region, as run_spans */
        unsigned fpu = fnn_fpu_enter();
        fn(t, a, b, 0, m, n);
        fnn_fpu_leave(fpu);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        unsigned fpu = fnn_fpu_enter();
        int part = 0, parts = 1;
#ifdef _OPENMP
        part = omp_get_thread_num();
        parts = omp_get_num_threads();
#endif
        fn(t, a, b, m * part / parts, m * (part + 1) / parts, n);
        fnn_fpu_leave(fpu);
    }
}

int fnn_gemm_sgd_f32(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, int trans_a, const float *b,
                     int64_t ldb, float *params, float *velocity, int64_t ldp, double lr, double momentum,
                     int nesterov, double weight_decay, double clipvalue, int n_threads)
{
    if (m < 0 || n < 0 || k < 1 || ldp < n || !params || (momentum > 0.0) != (velocity != 0))
        return FNN_EBADARG;
    sgd_tile_ctx ctx = {{NULL, params, velocity, (float)lr, (float)weight_decay, clip_bound(clipvalue),
                         (float)momentum, nesterov != 0}, ldp};
    int isa = fnn_isa_current();
    if (k == 1 && m > 0 && n > 0) {
        if (!a || !b)
            return FNN_EBADARG;
        run_outer(&ctx, a, b, m, n, isa, n_threads < 1 ? 1 : n_threads);
        return FNN_OK;
    }
    fnn_gemm_sink sink = isa == FNN_ISA_AVX512 ? sgd_tile_avx512 : isa == FNN_ISA_AVX2 ? sgd_tile_avx2
                                                                                        : sgd_tile_generic;
    double bytes = 4.0 * (velocity ? 4.0 : 2.0) * (double)m * (double)n;
    return fnn_gemm_sink_f32(m, n, k, a, lda, trans_a, b, ldb, sink, &ctx, bytes, n_threads);
}
