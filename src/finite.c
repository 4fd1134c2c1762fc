/* Whether an array holds only finite floats: the check the public boundary makes on every input batch.
 *
 * A float is NaN or infinite exactly when its exponent bits are all ones. The loop ORs a flag per element
 * without branching, so the compiler vectorises it; it is compiled per instruction set and picked at run time
 * like the other kernels. (At batch 1 NumPy's cheapest screen, a dot product, cost ~0.5 us of a ~40 us
 * training step, nearly all of it call overhead.)
 */
#include "fnn.h"

#include <stdint.h>
#include <string.h>

#define TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,prefer-vector-width=512")))
#define TARGET_AVX2 __attribute__((target("avx2")))
#define EXPONENT 0x7f800000u
#define BLOCK 4096 /* elements between looks at the flag: a bad value ends the scan early */

static inline __attribute__((always_inline)) int all_finite(int64_t n, const float *x)
{
    for (int64_t start = 0; start < n; start += BLOCK) {
        int64_t end = n - start < BLOCK ? n : start + BLOCK;
        uint32_t bad = 0;
        for (int64_t i = start; i < end; i++) {
            uint32_t bits;
            memcpy(&bits, x + i, sizeof bits);
            bad |= (bits & EXPONENT) == EXPONENT;
        }
        if (bad)
            return 0;
    }
    return 1;
}

static TARGET_AVX512 int all_finite_avx512(int64_t n, const float *x) { return all_finite(n, x); }
static TARGET_AVX2 int all_finite_avx2(int64_t n, const float *x) { return all_finite(n, x); }
static int all_finite_generic(int64_t n, const float *x) { return all_finite(n, x); }

int fnn_all_finite_f32(int64_t n, const float *x)
{
    if (n <= 0)
        return 1;
    switch (fnn_isa_current()) {
    case FNN_ISA_AVX512: return all_finite_avx512(n, x);
    case FNN_ISA_AVX2: return all_finite_avx2(n, x);
    default: return all_finite_generic(n, x);
    }
}
