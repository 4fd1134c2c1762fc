/* Small-channel convolution tiles for any x86-64 (SSE2): vectors of 4 floats. */
#define CS_TABLE fnn_cs_generic
#define CS_LANES 4
#include "conv_small_impl.h"
