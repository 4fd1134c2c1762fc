# Cython bindings of the C kernels (src/): typed memoryviews in (raw buffers where a memoryview's set-up would be
# a large part of a small call: gemm, all_finite_f32), raw pointers down, the GIL released around
# every kernel call, status codes turned into Python exceptions. Inputs are validated by the caller
# (fastnn/ops.py); these functions only check what would otherwise make C read or write out of bounds.
# One extension, one module: each group of kernels lives in its own include file.

cdef int check(int status, str what) except -1:
    if status == FNN_OK:
        return 0
    if status == FNN_ENOMEM:
        raise MemoryError(f"{what}: out of memory")
    if status == FNN_EISA:
        raise RuntimeError(f"{what}: instruction set not supported by this CPU")
    raise ValueError(f"{what}: invalid argument (status {status})")

include "_kernels_system.pxi"
include "_kernels_gemm.pxi"
include "_kernels_act.pxi"
include "_kernels_loss.pxi"
include "_kernels_optim_adaptive.pxi"
include "_kernels_conv.pxi"
include "_kernels_norm.pxi"
include "_kernels_rnn.pxi"
include "_kernels_rbm.pxi"
include "_kernels_resize.pxi"
include "_kernels_dense_plan.pxi"
include "_kernels_conv_implicit.pxi"
include "_kernels_conv_small.pxi"
include "_kernels_finite.pxi"
