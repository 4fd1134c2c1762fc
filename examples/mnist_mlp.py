"""A 784-256-128-10 MLP with dropout on full MNIST (target: >= 98.0% test accuracy).

    python examples/mnist_mlp.py [MNIST_DIR] [--epochs N] [--batch-size B] [--seed S]

MNIST_DIR holds the four IDX files (gzipped or not); default: $FASTNN_DATA/mnist or ../shared/data/mnist.
Prints the time and accuracy of every epoch.
"""
import argparse
import time

import numpy as np

import fastnn
from fastnn import layers


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", nargs="?", default=None, help="folder of the MNIST IDX files")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    (x_train, y_train), (x_test, y_test) = fastnn.datasets.load_mnist(args.path)
    x_train = x_train.reshape(len(x_train), -1).astype(np.float32) / 255.0
    x_test = x_test.reshape(len(x_test), -1).astype(np.float32) / 255.0

    fastnn.set_seed(args.seed)
    model = fastnn.Sequential([
        layers.Input((784,)),
        layers.Dense(256, activation="relu"),
        layers.Dropout(0.2),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.2),
        layers.Dense(10, activation="softmax"),
    ])
    optimizer = fastnn.optimizers.SGD(0.05, momentum=0.9)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.summary()
    print(f"fastnn {fastnn.__version__} on {fastnn.cpu_info()['isa']}, {fastnn.get_num_threads()} threads")

    for epoch in range(args.epochs):
        if epoch == args.epochs * 2 // 3:
            optimizer.learning_rate = optimizer.learning_rate / 5  # a late, smaller step size settles the weights
        start = time.perf_counter()
        history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=1, verbose=0)
        seconds = time.perf_counter() - start
        loss, accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
        print(f"epoch {epoch + 1:2d}/{args.epochs}: {seconds:.2f} s, train loss {history.history['loss'][0]:.4f}, "
              f"test loss {loss:.4f}, test accuracy {accuracy:.4f}")
    print(f"final test accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
