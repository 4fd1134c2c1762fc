"""Accuracy floor on real data: an MLP on full MNIST, 2 epochs of SGD, fixed seed."""
import numpy as np

import fastnn
from fastnn import layers as L


def test_mnist_mlp_reaches_floor_after_two_epochs(mnist_dir):
    (x_train, y_train), (x_test, y_test) = fastnn.datasets.load_mnist(str(mnist_dir))
    x_train = x_train.reshape(len(x_train), -1).astype(np.float32) / 255.0
    x_test = x_test.reshape(len(x_test), -1).astype(np.float32) / 255.0
    fastnn.set_seed(0)
    model = fastnn.Sequential([L.Input((784,)), L.Dense(256, activation="relu"), L.Dense(128, activation="relu"),
                               L.Dense(10, activation="softmax")])
    model.compile(optimizer=fastnn.optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=64, epochs=2, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert accuracy >= 0.965, f"test accuracy {accuracy:.4f} after 2 epochs, floor 0.965"
