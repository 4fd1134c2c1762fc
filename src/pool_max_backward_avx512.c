/* Max pooling's backward direct writes for AVX-512: vectors of 16 floats. */
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,prefer-vector-width=512")
#define MAX_BWD_TABLE fnn_max_bwd_avx512
#define MAX_BWD_LANES 16
#include "pool_max_backward_impl.h"
