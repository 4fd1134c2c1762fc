/* Which GEMM kernels serve a problem: the table of the instruction set in use, and the direct kernel whose
 * width fits n (used by the GEMM driver and by the implicit-GEMM convolutions alike). */
#include "fnn.h"
#include "gemm_internal.h"
#include "gemm_problem.h"

const fnn_gemm_kernels *fnn_gemm_kernels_for(int isa)
{
    switch (isa) {
    case FNN_ISA_AVX512: return &fnn_gemm_kernels_avx512;
    case FNN_ISA_AVX2: return &fnn_gemm_kernels_avx2;
    default: return &fnn_gemm_kernels_generic;
    }
}

fnn_gemm_direct fnn_gemm_fit_width(const fnn_gemm_kernels *kr, int64_t n)
{
    if (n <= kr->direct[0].nr || kr->n_direct == 1)
        return kr->direct[0];
    fnn_gemm_direct best = kr->direct[1];
    for (int v = 2; v < kr->n_direct; v++)
        if (round_up(n, kr->direct[v].nr) <= round_up(n, best.nr))
            best = kr->direct[v];
    return best;
}
