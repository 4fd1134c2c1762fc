/* Element-wise kernels for any x86-64 (SSE2), the fallback when AVX2 is missing or FASTNN_ISA=generic. */
#define EW_TABLE fnn_ew_generic
#define EW_VECTOR_BYTES 16
#include "ew_impl.h"
