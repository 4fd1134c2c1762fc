/* The GEMM's packed path (see src/gemm.c): A panels and shared B blocks packed into slivers for the
 * register-blocked micro-kernel. */
#include "gemm_problem.h"

/* Asks for the C tile at (i, j) to be brought into cache. The micro-kernel reads its tile before its k loop and
 * C's rows are far apart (a 12-row tile of a 2048-wide C spans 12 pages), so a tile left to demand misses
 * stalls every call; fetched one call ahead it arrives while the previous tile computes (1024^3 and 2048^3 on one
 * thread: 1.07x in the packed path alone, 1.01-1.03x through fnn_gemm_f32). */
static void prefetch_tile(const problem *g, int64_t i, int64_t j, int64_t mr, int64_t nr)
{
    for (int64_t r = 0; r < mr; r++)
        for (int64_t q = 0; q < nr; q += 16)
            __builtin_prefetch(g->c + (i + r) * g->ldc + j + q, 1, 3);
}

/* One B block against a packed A panel: the A sliver stays in L1 while the B slivers stream from L2. */
static void packed_block(const problem *g, const float *pa, const float *pb, int64_t ic, int64_t mc, int64_t jc,
                         int64_t nc, int64_t kc, int first, int last)
{
    const fnn_gemm_kernels *kr = g->kr;
    for (int64_t ir = 0; ir < mc; ir += kr->mr) {
        int64_t mr = min64(kr->mr, mc - ir), i = ic + ir;
        for (int64_t jr = 0; jr < nc; jr += kr->nr) {
            int64_t nr = min64(kr->nr, nc - jr), j = jc + jr;
            if (jr + kr->nr < nc) /* the next tile along this row of tiles, else the first of the next row */
                prefetch_tile(g, i, j + kr->nr, mr, min64(kr->nr, nc - jr - kr->nr));
            else if (ir + kr->mr < mc)
                prefetch_tile(g, i + kr->mr, jc, min64(kr->mr, mc - ir - kr->mr), min64(kr->nr, nc));
            fnn_tile_epilogue ep = epilogue_for(g, j, first, last);
            kr->packed(kc, pa + ir * kc, 1, kr->mr, pb + jr * kc, kr->nr, g->c + i * g->ldc + j, g->ldc, mr, nr, &ep);
            finish_tile(g, i, j, mr, nr, last);
        }
    }
}

static inline void team_barrier(int nt)
{
    if (nt > 1) {
#pragma omp barrier
    }
}

/* The packed path, run by thread t of a team of nt. Rows of C are split between the threads, each packing
 * its own A panels; the B block is shared and each thread packs a share of its slivers, so B is packed
 * once whatever the thread count. All threads run the same loop (a thread out of rows still packs and
 * waits), meeting at a barrier before each B block is repacked and after it is complete. */
void fnn_gemm_packed_team(const problem *g, float *pa, float *pb, int t, int nt)
{
    const fnn_gemm_kernels *kr = g->kr;
    int64_t m0, m1, largest = round_up(g->m, kr->mr * nt) / nt;
    split(g->m, kr->mr, nt, t, &m0, &m1);
    for (int64_t off = 0; off < largest; off += kr->mp) {
        int64_t ic = m0 + off, mc = min64(kr->mp, m1 - ic);
        for (int64_t pc = 0; pc < g->k; pc += kr->kc) {
            int64_t kc = min64(kr->kc, g->k - pc);
            int first = pc == 0, last = pc + kc == g->k;
            if (mc > 0)
                fnn_pack_a(mc, kc, a_at(g, ic, pc), g->lda, g->trans_a, kr->mr, pa, kr->interleave);
            for (int64_t jc = 0; jc < g->n; jc += kr->nb) {
                int64_t nc = min64(kr->nb, g->n - jc), slivers = (nc + kr->nr - 1) / kr->nr;
                int64_t s0 = slivers * t / nt, s1 = slivers * (t + 1) / nt;
                team_barrier(nt);
                if (s1 > s0)
                    fnn_pack_b(kc, min64(nc, s1 * kr->nr) - s0 * kr->nr, b_at(g, pc, jc + s0 * kr->nr), g->ldb,
                               g->trans_b, kr->nr, pb + s0 * kr->nr * kc, kr->interleave);
                team_barrier(nt);
                if (mc > 0)
                    packed_block(g, pa, pb, ic, mc, jc, nc, kc, first, last);
            }
        }
    }
}
