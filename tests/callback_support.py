"""The small model, data and scripted callback that the callback tests share."""
import numpy as np

import fastnn
from fastnn import callbacks as C
from fastnn import layers as L
from fastnn import optimizers


def data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 5)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)


def model_for(lr=0.05, seed=0, metrics=("accuracy",)):
    fastnn.set_seed(seed)
    model = fastnn.Sequential([L.Input((5,)), L.Dense(7, activation="tanh"), L.Dense(3, activation="softmax")])
    model.compile(optimizers.SGD(lr), "sparse_categorical_crossentropy", list(metrics))
    return model


class Scripted(C.Callback):
    """Replaces logs[key] at each epoch end by the next scripted value and snapshots the weights. Put it before
    the callback under test: hooks run in list order."""

    def __init__(self, values, key="val_loss"):
        self.values, self.key, self.weights = list(values), key, []

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]
        self.weights.append(self.model.get_weights())


def fit(model, cbs, epochs, **kw):
    x, y = data()
    return model.fit(x, y, batch_size=16, epochs=epochs, verbose=0, callbacks=cbs, **kw)


def same_weights(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a, b))
