/* Small-channel convolution tiles for AVX2 + FMA: vectors of 8 floats. */
#pragma GCC target("avx2,fma")
#define CS_TABLE fnn_cs_avx2
#define CS_LANES 8
#include "conv_small_impl.h"
