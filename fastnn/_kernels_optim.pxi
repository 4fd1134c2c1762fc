# (filled by the optim kernels)
