/* Gradient clipping by norm (per tensor or global): squared L2 norms of segments of a flat array, and Keras'
 * scale factors made from them.
 *
 * Determinism: every segment is cut into fixed blocks of BLOCK elements; each block is summed on its own in a
 * fixed order (16 double lanes, then a fixed tree), and the blocks of a segment are added serially in order.
 * Threads only decide who computes which block, so the result is bitwise the same for any thread count.
 * It is the same for every instruction set too: x*x of a float is exact in double, so an FMA rounds it like
 * a multiply-then-add would.
 */
#include "fnn.h"

#include <math.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define BLOCK 4096
#define LOCAL_BLOCKS 1024 /* block sums kept on the stack: gradients up to 4 M elements */
#define PARALLEL_MIN_ELEMENTS (1 << 16) /* below this, one thread: waking a second costs more than it saves */

#define TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define TARGET_AVX2 __attribute__((target("avx2,fma")))

#define LANES 16 /* independent accumulators: enough to hide FMA latency */

static inline __attribute__((always_inline)) double block_sq(const float *x, int64_t n)
{
    double acc[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++)
            acc[l] += (double)x[i + l] * (double)x[i + l];
    for (int l = 0; i < n; i++, l++)
        acc[l] += (double)x[i] * (double)x[i];
    for (int width = LANES / 2; width > 0; width /= 2)
        for (int l = 0; l < width; l++)
            acc[l] += acc[l + width];
    return acc[0];
}

typedef double (*block_fn)(const float *x, int64_t n);
static TARGET_AVX512 double block_sq_avx512(const float *x, int64_t n) { return block_sq(x, n); }
static TARGET_AVX2 double block_sq_avx2(const float *x, int64_t n) { return block_sq(x, n); }
static double block_sq_generic(const float *x, int64_t n) { return block_sq(x, n); }

static block_fn block_for(int isa)
{
    return isa == FNN_ISA_AVX512 ? block_sq_avx512 : isa == FNN_ISA_AVX2 ? block_sq_avx2 : block_sq_generic;
}

static int64_t blocks_of(int64_t size)
{
    return (size + BLOCK - 1) / BLOCK;
}

/* Block sums partial[b] for the blocks b in [b_lo, b_hi) (numbered segment after segment). */
static void sum_blocks(int64_t n_seg, const int64_t *offsets, const int64_t *sizes, const float *x,
                       int64_t b_lo, int64_t b_hi, double *partial, block_fn fn)
{
    int64_t first = 0; /* number of the segment's first block */
    for (int64_t s = 0; s < n_seg && first < b_hi; s++) {
        int64_t count = blocks_of(sizes[s]);
        int64_t lo = b_lo > first ? b_lo : first, hi = b_hi < first + count ? b_hi : first + count;
        for (int64_t b = lo; b < hi; b++) {
            int64_t start = (b - first) * BLOCK;
            int64_t len = sizes[s] - start < BLOCK ? sizes[s] - start : BLOCK;
            partial[b] = fn(x + offsets[s] + start, len);
        }
        first += count;
    }
}

int fnn_sq_norms_f32(int64_t n, int64_t n_seg, const int64_t *offsets, const int64_t *sizes, const float *x,
                     double *out, int n_threads)
{
    if (n < 0 || n_seg < 0 || n_threads < 1 || (n_seg > 0 && (!offsets || !sizes || !out)) || (n > 0 && !x))
        return FNN_EBADARG;
    int64_t total = 0, n_blocks = 0;
    for (int64_t s = 0; s < n_seg; s++) {
        if (offsets[s] < 0 || sizes[s] < 0 || offsets[s] > n - sizes[s])
            return FNN_EBADARG;
        total += sizes[s];
        n_blocks += blocks_of(sizes[s]);
    }
    if (n_blocks == 0) {
        for (int64_t s = 0; s < n_seg; s++)
            out[s] = 0.0;
        return FNN_OK;
    }
    double local[LOCAL_BLOCKS]; /* the usual case: no allocation per step */
    double *partial = n_blocks <= LOCAL_BLOCKS ? local : malloc((size_t)n_blocks * sizeof *partial);
    if (!partial)
        return FNN_ENOMEM;
    block_fn fn = block_for(fnn_isa_current());
    int nt = total < PARALLEL_MIN_ELEMENTS ? 1 : n_threads;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        unsigned fpu = fnn_fpu_enter();
        int t = 0, count = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        count = omp_get_num_threads();
#endif
        sum_blocks(n_seg, offsets, sizes, x, n_blocks * t / count, n_blocks * (t + 1) / count, partial, fn);
        fnn_fpu_leave(fpu);
    }
    int64_t b = 0;
    for (int64_t s = 0; s < n_seg; s++) {
        double sum = 0.0;
        for (int64_t k = blocks_of(sizes[s]); k > 0; k--)
            sum += partial[b++];
        out[s] = sum;
    }
    if (partial != local)
        free(partial);
    return FNN_OK;
}

/* Keras' clipping factors from squared norms: per segment c / max(norm, c); globally, c / norm for every segment
 * when the global norm (segments added in order) exceeds c, else 1. A NaN norm, or an infinite global one, gives
 * NaN as in Keras: such a gradient makes the step visibly NaN instead of being silently scaled. */
int fnn_clip_scales_f32(int64_t n_seg, const double *sq_norms, double clipnorm, int global, float *scales)
{
    if (n_seg < 0 || !(clipnorm > 0.0) || (n_seg > 0 && (!sq_norms || !scales)))
        return FNN_EBADARG;
    double total = 0.0;
    for (int64_t s = 0; s < n_seg; s++)
        total += sq_norms[s];
    for (int64_t s = 0; s < n_seg; s++) {
        double norm = sqrt(global ? total : sq_norms[s]);
        float scale = norm > clipnorm ? (float)(clipnorm / norm) : 1.0f;
        scales[s] = isnan(norm) || (global && isinf(norm)) ? NAN : scale;
    }
    return FNN_OK;
}
