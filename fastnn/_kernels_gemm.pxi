# (filled by the gemm kernels)
