/* SGD with Keras 3's rule over the flat parameter arena (with weight decay or clipping), and the same step on
 * one weight matrix fed straight by its gradient GEMM. The spans, clipping and threads are in optim_internal.h.
 */
#include "optim_internal.h"
#include "gemm_internal.h"

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

INLINE void sgd_piece(const void *args, int64_t i0, int64_t count, float scale)
{
    const sgd_args *a = args;
    sgd_rule_for(a, a->g + i0, a->p + i0, a->vel ? a->vel + i0 : NULL, count, scale, 0.0f, 0, 0);
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
        sgd_rule_for(&t->a, tile + r * ldt, t->a.p + at, t->a.vel ? t->a.vel + at : NULL, nr, 1.0f, 0.0f, 0, 0);
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

typedef struct {
    outer_fn fn;
    const sgd_tile_ctx *t;
    const float *a, *b;
    int64_t n;
} outer_job;

static void outer_rows(void *ctx, int part, int64_t i0, int64_t i1)
{
    (void)part;
    const outer_job *j = ctx;
    j->fn(j->t, j->a, j->b, i0, i1, j->n);
}

static void run_outer(const sgd_tile_ctx *t, const float *a, const float *b, int64_t m, int64_t n, int isa,
                      int n_threads)
{
    outer_job job = {isa == FNN_ISA_AVX512 ? sgd_outer_avx512 : isa == FNN_ISA_AVX2 ? sgd_outer_avx2
                                                                                      : sgd_outer_generic,
                     t, a, b, n};
    fnn_parallel_ranges(m * n < PARALLEL_MIN_ELEMENTS ? 1 : n_threads, m, outer_rows, &job);
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
