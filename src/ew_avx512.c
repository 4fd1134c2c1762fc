/* Element-wise kernels compiled for AVX-512 (F, BW, VL, DQ) + FMA, with 512-bit vectors. */
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma,prefer-vector-width=512")
#define EW_TABLE fnn_ew_avx512
#define EW_VECTOR_BYTES 64
#include "ew_impl.h"
