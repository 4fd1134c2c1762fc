/* Max pooling's backward direct writes for AVX2: vectors of 8 floats. */
#pragma GCC target("avx2,fma")
#define MAX_BWD_TABLE fnn_max_bwd_avx2
#define MAX_BWD_LANES 8
#include "pool_max_backward_impl.h"
