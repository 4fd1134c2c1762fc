"""Accuracy floor on real data (issue #4): a LeNet-5-style CNN on full MNIST, 3 epochs of SGD, fixed seed."""
import numpy as np

import fastnn
from fastnn import layers as L


def test_mnist_lenet_reaches_floor_after_three_epochs(mnist_dir):
    (x_train, y_train), (x_test, y_test) = fastnn.datasets.load_mnist(str(mnist_dir))
    x_train = x_train.reshape(len(x_train), 28, 28, 1).astype(np.float32) / 255.0
    x_test = x_test.reshape(len(x_test), 28, 28, 1).astype(np.float32) / 255.0
    fastnn.set_seed(0)
    model = fastnn.Sequential([
        L.Input((28, 28, 1)),
        L.Conv2D(6, 5, padding="same", activation="relu"), L.MaxPool2D(2),
        L.Conv2D(16, 5, activation="relu"), L.MaxPool2D(2), L.Flatten(),
        L.Dense(120, activation="relu"), L.Dense(84, activation="relu"), L.Dense(10, activation="softmax"),
    ])
    optimizer = fastnn.optimizers.SGD(0.05, momentum=0.9)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=64, epochs=2, verbose=0)
    optimizer.learning_rate = 0.01  # the third epoch with a smaller step settles the weights
    model.fit(x_train, y_train, batch_size=64, epochs=1, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert accuracy >= 0.983, f"test accuracy {accuracy:.4f} after 3 epochs, floor 0.983"
