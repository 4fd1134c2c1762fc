/* Max pooling's backward direct writes for any x86-64 (SSE2): vectors of 4 floats. */
#define MAX_BWD_TABLE fnn_max_bwd_generic
#define MAX_BWD_LANES 4
#include "pool_max_backward_impl.h"
