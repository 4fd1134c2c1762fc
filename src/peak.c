/* FMA throughput probe: the machine's float32 peak, against which GEMM speed is reported.
 * Each thread runs independent chains x = x * m + c, more of them than FMA latency x throughput needs
 * (Zen 4: 4 cycles x one zmm or two ymm per cycle), so the chains never wait on each other. */
#include "fnn.h"

#include <immintrin.h>

#define CHAINS 16

/* Keeps a register's value alive so the chains cannot be optimised away. */
#define KEEP(x) __asm__ volatile("" : : "x"(x))

__attribute__((target("avx512f,fma"))) static double chains_avx512(int64_t iterations)
{
    __m512 x[CHAINS], m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
    for (int i = 0; i < CHAINS; i++)
        x[i] = _mm512_set1_ps(1.0f + (float)i);
    for (int64_t it = 0; it < iterations; it++)
#pragma GCC unroll 16
        for (int i = 0; i < CHAINS; i++)
            x[i] = _mm512_fmadd_ps(x[i], m, c);
    for (int i = 0; i < CHAINS; i++)
        KEEP(x[i]);
    return 2.0 * 16 * CHAINS * (double)iterations;
}

/* AVX2 has 16 ymm registers: 12 chains leave room for the constants. */
__attribute__((target("avx2,fma"))) static double chains_avx2(int64_t iterations)
{
    __m256 x[12], m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
    for (int i = 0; i < 12; i++)
        x[i] = _mm256_set1_ps(1.0f + (float)i);
    for (int64_t it = 0; it < iterations; it++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++)
            x[i] = _mm256_fmadd_ps(x[i], m, c);
    for (int i = 0; i < 12; i++)
        KEEP(x[i]);
    return 2.0 * 8 * 12 * (double)iterations;
}

/* Baseline SSE2: no FMA, a multiply and an add per step. */
static double chains_generic(int64_t iterations)
{
    __m128 x[12], m = _mm_set1_ps(0.999999f), c = _mm_set1_ps(1e-6f);
    for (int i = 0; i < 12; i++)
        x[i] = _mm_set1_ps(1.0f + (float)i);
    for (int64_t it = 0; it < iterations; it++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++)
            x[i] = _mm_add_ps(_mm_mul_ps(x[i], m), c);
    for (int i = 0; i < 12; i++)
        KEEP(x[i]);
    return 2.0 * 4 * 12 * (double)iterations;
}

int fnn_fma_peak_f32(int64_t iterations, int n_threads, double *flops_done)
{
    if (iterations < 0 || n_threads < 1 || !flops_done)
        return FNN_EBADARG;
    int isa = fnn_isa_current();
    double total = 0.0;
#pragma omp parallel num_threads(n_threads) reduction(+ : total)
    {
        unsigned fpu = fnn_fpu_enter();
        if (isa == FNN_ISA_AVX512)
            total += chains_avx512(iterations);
        else if (isa == FNN_ISA_AVX2)
            total += chains_avx2(iterations);
        else
            total += chains_generic(iterations);
        fnn_fpu_leave(fpu);
    }
    *flops_done = total;
    return FNN_OK;
}
