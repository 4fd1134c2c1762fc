/* Element-wise kernels compiled for AVX2 + FMA. */
#pragma GCC target("avx2,fma")
#define EW_TABLE fnn_ew_avx2
#define EW_VECTOR_BYTES 32
#include "ew_impl.h"
