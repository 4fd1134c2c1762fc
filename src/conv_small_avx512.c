/* Small-channel convolution tiles for AVX-512 + FMA: vectors of 16 floats. */
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma,prefer-vector-width=512")
#define CS_TABLE fnn_cs_avx512
#define CS_LANES 16
#include "conv_small_impl.h"
