/* fnn_gemm_f32: C = act(op(A) @ op(B) [+ C] [+ bias]), BLIS-style.
 *
 * Three paths, chosen from the shape alone (never from the thread count, so any n_threads gives the same bits):
 *  - packed: A panels (rows x KC) and B blocks (KC x NB) are packed into slivers and a register-blocked
 *    micro-kernel runs over them: the A sliver stays in L1, the B block in L2.
 *  - direct (src/gemm_direct.c): problems with m or n below ~640 read A and B where they are (only B^T is
 *    packed), skipping copies that would cost more than they save; the tile width is fitted to n.
 *  - dot: A @ B^T with very few rows (batch-1 backward) as dot products along contiguous rows.
 * A single row against a tall B (m = 1, k >= FNN_GEMV_HALVES_MIN_K) sums k in two fixed halves instead of one
 * chain (src/gemm_gemv_halves.c says why).
 * Narrow C with transposed A (weight gradients into a few units) runs the direct path on C^T, into a buffer.
 * The packed and direct kernels compute every element as one sequential FMA chain over k, starting from C
 * when accumulating, whatever tile it falls in, so neither k blocking nor where a thread's share starts
 * changes a bit. Threads only ever split the output, never a reduction: the packed path by rows (sharing
 * each packed B block), the others into a grid of independent chunks.
 * The epilogue (bias, activation) runs on each finished tile: in registers for relu / leaky relu, through
 * fnn_act_block on the just-stored tile for the others.
 */
#include "fnn.h"
#include "act_internal.h"
#include "gemm_internal.h"
#include "gemm_problem.h"

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* A product runs on one thread when both its arithmetic and its memory traffic take fewer cycles than these
 * (serial_cycles): a second thread costs about a microsecond to wake and join. Measured on Zen 4, 2 threads
 * over 1: 64x150x16 (9.6 K arithmetic cycles) 1.16-1.19x, 32x120x84 1.36-1.58x; a GEMV streaming 128 KB (8 K
 * memory cycles) 0.85x, one streaming 800 KB 1.64x. The fused SGD sink writes what it reads, so it keeps a
 * higher bar for its sum of both. */
#define PARALLEL_MIN_ARITHMETIC_CYCLES 8000.0
#define PARALLEL_MIN_MEMORY_CYCLES 15000.0
#define SINK_PARALLEL_MIN_CYCLES 60000.0
/* Packing pays only when both m and n are large. Measured on Zen 4, one thread: the direct kernels, reading
 * A and B where they are, win up to 512 cubes and on the MLP shapes; from ~768 packing is as fast, and much
 * faster when rows of B are not 64-byte aligned (n = 1000: 105 vs 90 GFLOP/s). */
#define PACKED_MIN_DIM 640
#define DOT_MAX_ROWS 3

typedef enum { PATH_PACKED, PATH_DIRECT, PATH_DOT } path_kind;

static void dot_chunk(const problem *g, const fnn_gemm_chunk *ch)
{
    const fnn_gemm_kernels *kr = g->kr;
    for (int64_t j = ch->n0; j < ch->n1; j += kr->dot_nr) {
        int64_t nr = min64(kr->dot_nr, ch->n1 - j);
        fnn_tile_epilogue ep = epilogue_for(g, j, 1, 1);
        for (int64_t i = ch->m0; i < ch->m1; i += kr->dot_mr) {
            int64_t mr = min64(kr->dot_mr, ch->m1 - i);
            kr->dot(g->k, g->a + i * g->lda, g->lda, g->b + j * g->ldb, g->ldb, g->c + i * g->ldc + j, g->ldc, mr,
                    nr, &ep);
            finish_tile(g, i, j, mr, nr, 1);
        }
    }
}

/* The GEMV kernel for one row, else the direct kernel fitted to n. */
static fnn_gemm_direct fit_direct(const fnn_gemm_kernels *kr, int64_t m, int64_t n)
{
    if (m == 1 && kr->gemv.fn)
        return kr->gemv;
    return fnn_gemm_fit_width(kr, n);
}

static path_kind choose_path(const problem *g)
{
    if (g->trans_b && !g->trans_a && g->kr->dot && g->m <= DOT_MAX_ROWS)
        return PATH_DOT;
    if (g->m >= PACKED_MIN_DIM && g->n >= PACKED_MIN_DIM)
        return PATH_PACKED;
    return PATH_DIRECT;
}

/* Splits C into tm x tn chunks (tm * tn = nt) in units of um rows and un columns, choosing the split that
 * minimises the largest chunk's multiply-adds plus the operand rows and columns each chunk reads again. */
static void choose_grid(int64_t m, int64_t n, int64_t um, int64_t un, int nt, int *tm, int *tn)
{
    double best = -1.0;
    for (int cols = 1; cols <= nt; cols++) {
        if (nt % cols)
            continue;
        int rows = nt / cols;
        double rc = (double)round_up(m, um * rows) / rows, cc = (double)round_up(n, un * cols) / cols;
        double cost = rc * cc / 16.0 + (rc + cc) / 2.0;
        if (best < 0.0 || cost < best) {
            best = cost;
            *tm = rows;
            *tn = cols;
        }
    }
}

/* How the direct and dot paths share C out: tm x tn chunks in units of um rows and un columns. */
typedef struct {
    int nt, tm, tn;
    int64_t um, un, pb_len;
} grid_plan;

/* The chunks of one thread (t0 of `step`): each is an independent sub-problem, so a smaller team than
 * planned still covers all of them. */
static void run_chunks(const problem *g, path_kind path, const grid_plan *gp, float *buf, int t0, int step)
{
    for (int t = t0; t < gp->nt; t += step) {
        fnn_gemm_chunk ch;
        split(g->m, gp->um, gp->tm, t / gp->tn, &ch.m0, &ch.m1);
        split(g->n, gp->un, gp->tn, t % gp->tn, &ch.n0, &ch.n1);
        ch.pb = buf ? buf + (int64_t)t0 * gp->pb_len : NULL;
        if (ch.m0 >= ch.m1 || ch.n0 >= ch.n1)
            continue;
        if (g->sink)
            fnn_gemm_sink_chunk(g, &ch);
        else if (path == PATH_DIRECT)
            fnn_gemm_direct_chunk(g, &ch);
        else
            dot_chunk(g, &ch);
    }
}

/* Thread t of a team: the shared B block (packed path) comes first in buf, then per-thread buffers. */
static void run_thread(const problem *g, path_kind path, const grid_plan *gp, float *buf, int64_t pb_len,
                       int64_t pa_len, int t, int team)
{
    unsigned fpu = fnn_fpu_enter();
    if (path == PATH_PACKED)
        fnn_gemm_packed_team(g, buf + pb_len + t * pa_len, buf, t, team);
    else
        run_chunks(g, path, gp, buf, t, team);
    fnn_fpu_leave(fpu);
}

/* Runs `path` on nt threads; buffers are 64-byte aligned, all in one allocation. */
static int run(const problem *g, path_kind path, int nt)
{
    const fnn_gemm_kernels *kr = g->kr;
    int64_t kc = min64(path == PATH_PACKED ? kr->kc : FNN_GEMM_DIRECT_KC, g->k);
    grid_plan gp = {nt, 1, 1, path == PATH_DIRECT ? g->dk.mr : kr->dot_mr, 0, 0};
    /* Tiles need not align across threads (each element's chain is the same wherever its tile starts), so
     * the wide GEMV tile splits in 64-column units: whole cache lines of C, both threads busy. */
    gp.un = path == PATH_DOT ? kr->dot_nr : min64(g->dk.nr, 64);
    int64_t pa_len = 0, pb_len = 0, per_thread = 0;
    if (path == PATH_PACKED) {
        /* A panel sized for the whole of m (up to mp), so a smaller team than asked for still fits. */
        pa_len = round_up(round_up(min64(kr->mp, g->m), kr->mr) * kc, 16);
        pb_len = round_up(round_up(min64(kr->nb, g->n), kr->nr) * kc, 16);
        per_thread = pa_len;
    } else {
        if (nt > 1)
            choose_grid(g->m, g->n, gp.um, gp.un, nt, &gp.tm, &gp.tn);
        int64_t cols = round_up(g->n, gp.un * gp.tn) / gp.tn;
        if (path == PATH_DIRECT && g->trans_b && !g->sink)
            gp.pb_len = per_thread = round_up(round_up(min64(FNN_GEMM_DIRECT_NB, cols), g->dk.nr) * kc, 16);
    }
    float *buf = NULL;
    if (pb_len + per_thread > 0) {
        buf = aligned_alloc(64, (size_t)(pb_len + per_thread * nt) * sizeof(float));
        if (!buf)
            return FNN_ENOMEM;
    }
    if (nt == 1) { /* no parallel region at all: it costs about half a microsecond even when not forked */
        run_thread(g, path, &gp, buf, pb_len, pa_len, 0, 1);
    } else {
#pragma omp parallel num_threads(nt)
        {
#ifdef _OPENMP
            run_thread(g, path, &gp, buf, pb_len, pa_len, omp_get_thread_num(), omp_get_num_threads());
#else
            run_thread(g, path, &gp, buf, pb_len, pa_len, 0, 1);
#endif
        }
    }
    free(buf);
    return FNN_OK;
}

/* Narrow C (fewer than NARROW_MAX_N columns, at least as many rows, A of NARROW_MIN_A .. NARROW_MAX_A
 * elements) is computed transposed into a buffer, C^T = op(B)^T op(A)^T: the kernels then run n rows by m
 * full-width columns instead of m rows by n of 16 lanes (n = 16 fills them already). Only for transposed A
 * (weight gradients: m = fan-in, n = units), where op(A)^T is A itself with contiguous rows, so nothing is
 * packed. Every element is the same FMA chain (the products commute), so the bits are those of the plain
 * direct path. */
#define NARROW_MAX_N 16
/* Streaming a larger A from memory in this layout measured slower than the plain path (25 x 147456 x 6:
 * 2.1 vs 1.3 ms), while a cache-resident one is faster (25 x 18432 x 6: 50 vs 99 us). */
#define NARROW_MAX_A (1 << 20)
/* Below this the two transposes and the buffer cost more than the lanes save (84 x 32 x 10: 1.16 vs 1.07 us;
 * 128 x 32 x 10: 1.24 vs 1.33 us). */
#define NARROW_MIN_A 4096

static int narrow_transposed(const problem *g)
{
    return g->trans_a && g->n < NARROW_MAX_N && g->m >= NARROW_MAX_N && g->m * g->k >= NARROW_MIN_A
           && g->m * g->k <= NARROW_MAX_A;
}

static int run_transposed(const problem *g, int nt)
{
    int64_t ldt = round_up(g->m, 16);
    float *ct = aligned_alloc(64, (size_t)(g->n * ldt) * sizeof(float));
    if (!ct)
        return FNN_ENOMEM;
    fnn_gemm_interleave interleave = g->kr->interleave;
    if (g->accumulate) /* ct[i * ldt + j] = C[j, i] */
        fnn_pack_b(g->n, g->m, g->c, g->ldc, 1, (int)ldt, ct, interleave);
    problem t = *g;
    t.m = g->n, t.n = g->m, t.c = ct, t.ldc = ldt, t.bias = NULL, t.act = FNN_ACT_LINEAR;
    t.a = g->b, t.lda = g->ldb, t.trans_a = !g->trans_b;
    t.b = g->a, t.ldb = g->lda, t.trans_b = !g->trans_a;
    t.dk = fit_direct(g->kr, t.m, t.n);
    int status = run(&t, choose_path(&t), nt);
    if (status == FNN_OK) {
        if (g->ldc == g->n) /* C[j, i] = ct[i * ldt + j], rows of C back to back */
            fnn_pack_b(g->m, g->n, ct, ldt, 1, (int)g->n, g->c, interleave);
        else
            for (int64_t j = 0; j < g->m; j++)
                for (int64_t i = 0; i < g->n; i++)
                    g->c[j * g->ldc + i] = ct[i * ldt + j];
        unsigned fpu = fnn_fpu_enter();
        fnn_act_block(g->m, g->n, g->c, g->ldc, g->bias, g->act, g->alpha);
        fnn_fpu_leave(fpu);
    }
    free(ct);
    return status;
}

/* k = 0: the product is empty, C = act([C] + bias). */
static void empty_product(const problem *g)
{
    unsigned fpu = fnn_fpu_enter();
    if (!g->accumulate)
        for (int64_t i = 0; i < g->m; i++)
            memset(g->c + i * g->ldc, 0, (size_t)g->n * sizeof(float));
    fnn_act_block(g->m, g->n, g->c, g->ldc, g->bias, g->act, g->alpha);
    fnn_fpu_leave(fpu);
}

/* Rough single-thread cycles of the arithmetic (~32 flops a cycle) and of the memory traffic (~16 bytes a
 * cycle: a GEMV streams its matrix, and two cores have twice the cache bandwidth). */
static void serial_cycles(const problem *g, double *arithmetic, double *memory)
{
    *arithmetic = 2.0 * g->m * g->n * g->k / 32.0;
    *memory = 4.0 * ((double)g->m * g->k + (double)g->k * g->n + (1.0 + g->accumulate) * g->m * g->n) / 16.0;
}

/* A rows x cols matrix with leading dimension ld must be addressable. */
static int bad_matrix(const float *p, int64_t rows, int64_t cols, int64_t ld)
{
    return !p || ld < cols || ld < 1 || rows > INT64_MAX / 4 / ld;
}

int fnn_gemm_f32(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, int trans_a, const float *b,
                 int64_t ldb, int trans_b, float *c, int64_t ldc, int accumulate, const float *bias, int act,
                 float act_alpha, int n_threads)
{
    if (m < 0 || n < 0 || k < 0 || act < FNN_ACT_LINEAR || act > FNN_ACT_GELU)
        return FNN_EBADARG;
    if (m == 0 || n == 0)
        return FNN_OK;
    if (bad_matrix(c, m, n, ldc))
        return FNN_EBADARG;
    problem g = {m, n, k, a, lda, trans_a != 0, b, ldb, trans_b != 0, c, ldc, accumulate != 0,
                 bias, act, act_alpha, fnn_gemm_kernels_for(fnn_isa_current()), {0, 0, 0}, NULL, NULL};
    if (k == 0) {
        empty_product(&g);
        return FNN_OK;
    }
    if (trans_a ? bad_matrix(a, k, m, lda) : bad_matrix(a, m, k, lda))
        return FNN_EBADARG;
    if (trans_b ? bad_matrix(b, n, k, ldb) : bad_matrix(b, k, n, ldb))
        return FNN_EBADARG;
    int nt = n_threads < 1 ? 1 : n_threads;
    double arithmetic, memory;
    serial_cycles(&g, &arithmetic, &memory);
    if (arithmetic < PARALLEL_MIN_ARITHMETIC_CYCLES && memory < PARALLEL_MIN_MEMORY_CYCLES)
        nt = 1;
    g.dk = fit_direct(g.kr, m, n);
    if (!g.trans_a && !g.trans_b && fnn_gemv_in_halves(m, k))
        return fnn_gemv_halves(&g, nt);
    if (narrow_transposed(&g))
        return run_transposed(&g, nt);
    return run(&g, choose_path(&g), nt);
}

int fnn_gemm_sink_f32(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, int trans_a, const float *b,
                      int64_t ldb, fnn_gemm_sink sink, void *sink_ctx, double sink_bytes, int n_threads)
{
    if (m < 0 || n < 0 || k < 1 || !sink || (trans_a ? bad_matrix(a, k, m, lda) : bad_matrix(a, m, k, lda))
        || bad_matrix(b, k, n, ldb))
        return m == 0 || n == 0 ? FNN_OK : FNN_EBADARG;
    if (m == 0 || n == 0)
        return FNN_OK;
    problem g = {m, n, k, a, lda, trans_a != 0, b, ldb, 0, NULL, n, 0, NULL, FNN_ACT_LINEAR, 0.0f,
                 fnn_gemm_kernels_for(fnn_isa_current()), {0, 0, 0}, sink, sink_ctx};
    g.dk = fit_direct(g.kr, m, n);
    int nt = n_threads < 1 ? 1 : n_threads;
    double arithmetic, memory;
    serial_cycles(&g, &arithmetic, &memory);
    if ((arithmetic > memory ? arithmetic : memory) + sink_bytes / 16.0 < SINK_PARALLEL_MIN_CYCLES)
        nt = 1;
    return run(&g, PATH_DIRECT, nt);
}
