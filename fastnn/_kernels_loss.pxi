# (filled by the loss kernels)
