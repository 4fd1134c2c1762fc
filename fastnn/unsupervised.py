"""Unsupervised models: restricted Boltzmann machines and deep belief networks.

`RBM` is trained by contrastive divergence (CD-k or persistent CD) with its Gibbs sampling and parameter
updates in C; `DBN` pre-trains a stack of RBMs greedily and turns it into a `fastnn.Sequential` to fine-tune.
"""
from ._dbn import DBN
from ._rbm import RBM

__all__ = ["RBM", "DBN"]
