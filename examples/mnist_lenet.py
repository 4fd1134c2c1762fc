"""A LeNet-5-style convolutional network on full MNIST (target: >= 99.05% test accuracy).

    python examples/mnist_lenet.py [MNIST_DIR] [--epochs N] [--batch-size B] [--seed S]

MNIST_DIR holds the four IDX files (gzipped or not); default: $FASTNN_DATA/mnist or ../shared/data/mnist.
Images go in as (n, 28, 28, 1) in [0, 1] (channels last). Prints the time and accuracy of every epoch.
"""
import argparse
import time

import numpy as np

import fastnn
from fastnn import layers


def build_lenet():
    """Conv(6, 5x5, same) - pool - conv(16, 5x5) - pool - fc120 - fc84 - fc10, ReLU, dropout before the head."""
    return fastnn.Sequential([
        layers.Input((28, 28, 1)),
        layers.Conv2D(6, 5, padding="same", activation="relu"),
        layers.MaxPool2D(2),
        layers.Conv2D(16, 5, activation="relu"),
        layers.MaxPool2D(2),
        layers.Flatten(),
        layers.Dense(120, activation="relu"),
        layers.Dropout(0.2),
        layers.Dense(84, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", nargs="?", default=None, help="folder of the MNIST IDX files")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    (x_train, y_train), (x_test, y_test) = fastnn.datasets.load_mnist(args.path)
    x_train = x_train.reshape(len(x_train), 28, 28, 1).astype(np.float32) / 255.0
    x_test = x_test.reshape(len(x_test), 28, 28, 1).astype(np.float32) / 255.0

    fastnn.set_seed(args.seed)
    model = build_lenet()
    optimizer = fastnn.optimizers.SGD(0.05, momentum=0.9)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.summary()
    print(f"fastnn {fastnn.__version__} on {fastnn.cpu_info()['isa']}, {fastnn.get_num_threads()} threads")

    for epoch in range(args.epochs):
        if epoch in (args.epochs // 2, args.epochs * 5 // 6):
            optimizer.learning_rate = optimizer.learning_rate / 5  # smaller late steps settle the weights
        start = time.perf_counter()
        history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=1, verbose=0)
        seconds = time.perf_counter() - start
        loss, accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
        print(f"epoch {epoch + 1:2d}/{args.epochs}: {seconds:.2f} s, train loss {history.history['loss'][0]:.4f}, "
              f"test loss {loss:.4f}, test accuracy {accuracy:.4f}", flush=True)
    print(f"final test accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
