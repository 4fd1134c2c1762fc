# (filled by the act kernels)
