/* The direct path of fnn_gemm_f32 and fnn_gemm_sink_f32 (src/gemm.c chooses it and shares C out): a
 * thread's chunk of C computed from A and B where they are (only B^T is packed), the tile width fitted to n. */
#include "gemm_problem.h"

/* A block of C larger than L2 is computed by bands of rows across the block's columns, each tile prefetching
 * the lines of the tile below it, instead of by column strips. A strip walks down C touching a few lines a row,
 * a pattern the prefetchers do not follow, and a line two strips share is fetched from memory twice. Measured
 * on Zen 4, 2 threads, bands over strips: 262144x288x32-tB (a convolution's input gradient) 1.24-1.39x,
 * 16384x150x16-tB 1.32-1.55x, 8192x512x64 1.15-1.22x. Blocks within L2 stay in strips, whose B columns stay
 * in L1 across the rows: in bands they measured 0.8-0.95x. */
#define DIRECT_BAND_MIN_C_BYTES (1 << 20)

/* Starts loading the lines of C tile [i, i + mr) x [j, j + nr), clipped to rows below i1, for writing. */
static void prefetch_c_tile(const problem *g, int64_t i, int64_t i1, int64_t j, int64_t mr, int64_t nr)
{
    for (int64_t r = i; r < min64(i + mr, i1); r++) {
        const char *row = (const char *)(g->c + r * g->ldc + j);
        for (int64_t off = 0; off < nr * (int64_t)sizeof(float) + 63; off += 64)
            __builtin_prefetch(row + off, 1, 3);
    }
}

/* Row tiles of [i0, i1): full ones, but the last two share what is left, since a short last tile (25 rows as
 * 24 + 1) would have too few accumulators to hide the FMA latency and take nearly as long as a full one. */
static int64_t row_tile(const fnn_gemm_direct *dk, int64_t i, int64_t i1)
{
    int64_t left = i1 - i;
    return left > dk->mr && left < 2 * dk->mr ? (left + 1) / 2 : min64(dk->mr, left);
}

/* One tile of a direct block: rows [i, i + mr), columns jc + [jr, jr + nr), k block [pc, pc + kc). Inlined:
 * with k = 1, a call more per tile measured 10-15% slower. */
static inline __attribute__((always_inline)) void direct_tile(const problem *g, const fnn_gemm_chunk *ch, int64_t i,
                                                              int64_t jc, int64_t jr, int64_t mr, int64_t nr,
                                                              int64_t pc, int64_t kc, int first, int last,
                                                              int64_t rs_a, int64_t cs_a)
{
    int64_t j = jc + jr;
    const float *b = g->trans_b ? ch->pb + jr * kc : b_at(g, pc, j);
    fnn_tile_epilogue ep = epilogue_for(g, j, first, last);
    g->dk.fn(kc, a_at(g, i, pc), rs_a, cs_a, b, g->trans_b ? g->dk.nr : g->ldb, g->c + i * g->ldc + j, g->ldc,
             mr, nr, &ep);
    finish_tile(g, i, j, mr, nr, last);
}

/* Rows [i0, i1) of a chunk against its columns, for the k block [pc, pc + kc). */
static void direct_block(const problem *g, const fnn_gemm_chunk *ch, int64_t i0, int64_t i1, int64_t pc, int64_t kc,
                         int first, int last, int64_t rs_a, int64_t cs_a)
{
    const fnn_gemm_direct *dk = &g->dk;
    for (int64_t jc = ch->n0; jc < ch->n1; jc += FNN_GEMM_DIRECT_NB) {
        int64_t nc = min64(FNN_GEMM_DIRECT_NB, ch->n1 - jc);
        if (g->trans_b)
            fnn_pack_b(kc, nc, b_at(g, pc, jc), g->ldb, 1, dk->nr, ch->pb, g->kr->interleave);
        if ((i1 - i0) * nc * (int64_t)sizeof(float) > DIRECT_BAND_MIN_C_BYTES) {
            for (int64_t i = i0, mr; i < i1; i += mr) {
                mr = row_tile(dk, i, i1);
                for (int64_t jr = 0; jr < nc; jr += dk->nr) {
                    int64_t nr = min64(dk->nr, nc - jr);
                    prefetch_c_tile(g, i + mr, i1, jc + jr, mr, nr);
                    direct_tile(g, ch, i, jc, jr, mr, nr, pc, kc, first, last, rs_a, cs_a);
                }
            }
        } else {
            for (int64_t jr = 0; jr < nc; jr += dk->nr)
                for (int64_t i = i0, mr; i < i1; i += mr) {
                    mr = row_tile(dk, i, i1);
                    direct_tile(g, ch, i, jc, jr, mr, min64(dk->nr, nc - jr), pc, kc, first, last, rs_a, cs_a);
                }
        }
    }
}

/* Rows of A the direct path takes at a time: each column strip of B re-reads them, so tall A (a convolution's
 * pixels: m in the hundred thousands, k a few dozen) is cut into blocks of about DIRECT_A_BYTES that stay in
 * L2 across the strips, instead of streaming from memory once per strip. */
#define DIRECT_A_BYTES (512 << 10)

void fnn_gemm_direct_chunk(const problem *g, const fnn_gemm_chunk *ch)
{
    const fnn_gemm_direct *dk = &g->dk;
    int64_t rs_a = g->trans_a ? 1 : g->lda, cs_a = g->trans_a ? g->lda : 1;
    for (int64_t pc = 0; pc < g->k; pc += FNN_GEMM_DIRECT_KC) {
        int64_t kc = min64(FNN_GEMM_DIRECT_KC, g->k - pc);
        int first = pc == 0, last = pc + kc == g->k;
        int64_t mb = DIRECT_A_BYTES / (int64_t)sizeof(float) / kc / dk->mr * dk->mr;
        if (mb < dk->mr)
            mb = dk->mr;
        for (int64_t ib = ch->m0; ib < ch->m1; ib += mb)
            direct_block(g, ch, ib, min64(ib + mb, ch->m1), pc, kc, first, last, rs_a, cs_a);
    }
}

/* The direct path for fnn_gemm_sink_f32. Row tiles go down C; along each, the tiles of up to
 * FNN_GEMM_SINK_COLS columns are computed side by side (each tile's whole k chain, k blocks in order as
 * direct_chunk runs them) into a stack block handed to the sink at once: long contiguous rows, so the sink's
 * own memory streams in order. B is never transposed here, so nothing is packed. */
void fnn_gemm_sink_chunk(const problem *g, const fnn_gemm_chunk *ch)
{
    const fnn_gemm_direct *dk = &g->dk;
    int64_t rs_a = g->trans_a ? 1 : g->lda, cs_a = g->trans_a ? g->lda : 1;
    float block[FNN_GEMM_SINK_ROWS * FNN_GEMM_SINK_COLS] __attribute__((aligned(64)));
    for (int64_t i = ch->m0; i < ch->m1; i += dk->mr) {
        int64_t mr = min64(dk->mr, ch->m1 - i);
        for (int64_t jc = ch->n0; jc < ch->n1; jc += FNN_GEMM_SINK_COLS) {
            int64_t nc = min64(FNN_GEMM_SINK_COLS, ch->n1 - jc);
            for (int64_t jr = 0; jr < nc; jr += dk->nr) {
                for (int64_t pc = 0; pc < g->k; pc += FNN_GEMM_DIRECT_KC) {
                    fnn_tile_epilogue ep = {pc > 0, NULL, FNN_ACT_LINEAR, 0.0f};
                    dk->fn(min64(FNN_GEMM_DIRECT_KC, g->k - pc), a_at(g, i, pc), rs_a, cs_a, b_at(g, pc, jc + jr), g->ldb,
                           block + jr, FNN_GEMM_SINK_COLS, mr, min64(dk->nr, nc - jr), &ep);
                }
            }
            g->sink(g->sink_ctx, i, jc, mr, nc, block, FNN_GEMM_SINK_COLS);
        }
    }
}
