/* Embedding lookup: y[i] = table[ids[i]] for n ids into a (vocab, dim) table, and its sparse gradient:
 * only the rows of ids present receive dy's rows. Threads split the columns of the table, and each adds
 * its columns in the order of the ids, so the sums are the same for any thread count. */
#include "fnn.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Gathering and scattering stay on one thread below this many floats moved. */
#define EMBED_PARALLEL_MIN 65536

static int bad_ids(int64_t n, int64_t vocab, const int64_t *ids)
{
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= vocab)
            return 1;
    return 0;
}

int fnn_embedding_forward_f32(int64_t n, int64_t vocab, int64_t dim, const int64_t *ids, const float *table,
                              float *y, int n_threads)
{
    if (n < 0 || vocab < 1 || dim < 1 || (n > 0 && (!ids || !table || !y)) || bad_ids(n, vocab, ids))
        return FNN_EBADARG;
    int nt = n * dim >= EMBED_PARALLEL_MIN && n_threads > 1 ? n_threads : 1;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int64_t i = 0; i < n; i++)
        memcpy(y + i * dim, table + ids[i] * dim, (size_t)dim * sizeof(float));
    return FNN_OK;
}

int fnn_embedding_backward_f32(int64_t n, int64_t vocab, int64_t dim, const int64_t *ids, const float *dy,
                               float *dtable, int accumulate, int n_threads)
{
    if (n < 0 || vocab < 1 || dim < 1 || !dtable || (n > 0 && (!ids || !dy)) || bad_ids(n, vocab, ids))
        return FNN_EBADARG;
    if (!accumulate)
        memset(dtable, 0, (size_t)(vocab * dim) * sizeof(float));
    int nt = n * dim >= EMBED_PARALLEL_MIN && n_threads > 1 ? n_threads : 1;
    int64_t blocks = (dim + 15) / 16;
    if (nt > blocks)
        nt = (int)blocks;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        unsigned fpu = fnn_fpu_enter();
        int t = 0, team = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        team = omp_get_num_threads();
#endif
        int64_t j0 = blocks * t / team * 16, j1 = blocks * (t + 1) / team * 16;
        if (j1 > dim)
            j1 = dim;
        for (int64_t i = 0; i < n; i++) {
            float *dst = dtable + ids[i] * dim;
            const float *src = dy + i * dim;
            for (int64_t j = j0; j < j1; j++)
                dst[j] += src[j];
        }
        fnn_fpu_leave(fpu);
    }
    return FNN_OK;
}
