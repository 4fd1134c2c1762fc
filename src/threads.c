/* OpenMP thread-count plumbing and the per-thread floating-point mode used inside every parallel region. */
#include "fnn.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

int fnn_omp_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void fnn_omp_set_threads(int n)
{
#ifdef _OPENMP
    if (n > 0)
        omp_set_num_threads(n);
#else
    (void)n;
#endif
}

/* FTZ (bit 15) and DAZ (bit 6) of MXCSR. */
unsigned fnn_fpu_enter(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned saved = _mm_getcsr();
    _mm_setcsr(saved | 0x8040u);
    return saved;
#else
    return 0;
#endif
}

void fnn_fpu_leave(unsigned saved)
{
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(saved);
#else
    (void)saved;
#endif
}

void fnn_parallel_ranges(int nt, int64_t total, fnn_range_fn fn, void *ctx)
{
    if (nt <= 1) {
        unsigned fpu = fnn_fpu_enter();
        fn(ctx, 0, 0, total);
        fnn_fpu_leave(fpu);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        unsigned fpu = fnn_fpu_enter();
        int t = 0, parts = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        parts = omp_get_num_threads();
#endif
        fn(ctx, t, total * t / parts, total * (t + 1) / parts);
        fnn_fpu_leave(fpu);
    }
}
