"""One validated Python verb per C kernel.

Each verb checks its arguments once (dtype, rank, shape, contiguity, finiteness where it matters), allocates
its output when none is given and calls the kernel through fastnn._kernels. `fastnn._reference` holds a plain
NumPy twin of every verb with the same signature; the tests compare the two.
Model internals call fastnn._kernels directly with buffers they planned themselves, so the hot path pays for
validation once, at the public boundary.
"""
# The verbs live in one private module per kernel family; this module is their public face.
from ._ops_matmul import matmul
from ._ops_activation import (activation, activation_backward, column_sum, dropout, dropout_backward, softmax,
                              softmax_backward)
from ._ops_loss import mean_squared_error, sigmoid_binary_cross_entropy, softmax_cross_entropy
from ._ops_optim import sgd_update
from ._ops_recurrent import (embedding, embedding_backward, gru, gru_backward, lstm, lstm_backward, simple_rnn,
                             simple_rnn_backward)

__all__ = ["matmul", "activation", "activation_backward", "softmax", "softmax_backward", "column_sum", "dropout",
           "dropout_backward", "softmax_cross_entropy", "mean_squared_error", "sigmoid_binary_cross_entropy",
           "sgd_update",
           "simple_rnn", "simple_rnn_backward", "lstm", "lstm_backward", "gru", "gru_backward", "embedding",
           "embedding_backward"]
