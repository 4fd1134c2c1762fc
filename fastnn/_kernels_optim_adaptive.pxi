# Adaptive optimizers (filled by the optim helper)
