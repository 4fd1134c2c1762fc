"""Dense and convolutional autoencoders on MNIST: train briefly, print the test reconstruction MSE, and write a
PNG grid of test digits (top row) over their reconstructions (dense, then convolutional).

    python examples/autoencoder.py [MNIST_DIR] [--epochs N] [--out DIR] [--seed S]

The convolutional one encodes with Conv2D/MaxPool2D to 7x7x8 and decodes with a strided Conv2DTranspose and an
UpSampling2D. MNIST_DIR: default $FASTNN_DATA/mnist or ../shared/data/mnist. Needs Pillow for the PNG.
"""
import argparse
import os
import time

import numpy as np

import fastnn
from fastnn import layers
from _images import load_mnist_images, save_grid, to_uint8


def dense_autoencoder():
    """784 - 128 - 32 - 128 - 784, the last layer a sigmoid (pixels are in [0, 1])."""
    return fastnn.Sequential([
        layers.Input((28, 28, 1)), layers.Flatten(),
        layers.Dense(128, activation="relu"), layers.Dense(32, activation="relu", name="code"),
        layers.Dense(128, activation="relu"), layers.Dense(784, activation="sigmoid"),
        layers.Reshape((28, 28, 1)),
    ])


def conv_autoencoder():
    """28x28x1 -> 7x7x8 code -> 28x28x1."""
    return fastnn.Sequential([
        layers.Input((28, 28, 1)),
        layers.Conv2D(16, 3, padding="same", activation="relu"), layers.MaxPool2D(2),
        layers.Conv2D(8, 3, padding="same", activation="relu"), layers.MaxPool2D(2, name="code"),
        layers.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu"),  # 14x14
        layers.UpSampling2D(2),                                                     # 28x28
        layers.Conv2D(16, 3, padding="same", activation="relu"),
        layers.Conv2D(1, 3, padding="same", activation="sigmoid"),
    ])


def train(name, model, x, xt, epochs):
    model.compile(optimizer=fastnn.optimizers.Adam(0.002), loss="binary_crossentropy")
    print(f"{name}: {model.count_params():,} parameters")
    for epoch in range(epochs):
        start = time.perf_counter()
        loss = model.fit(x, x, batch_size=128, epochs=1, verbose=0).history["loss"][0]
        mse = float(np.mean((model.predict(xt, batch_size=500) - xt) ** 2))
        print(f"  epoch {epoch + 1}/{epochs}: {time.perf_counter() - start:.1f} s, train BCE {loss:.4f}, "
              f"test reconstruction MSE {mse:.5f}", flush=True)
    return mse


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", nargs="?", default=None, help="folder of the MNIST IDX files")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default="visual-out", help="folder for autoencoder.png")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    (x, _), (xt, _) = load_mnist_images(args.path)

    fastnn.set_seed(args.seed)
    models = {"dense": dense_autoencoder(), "conv": conv_autoencoder()}
    mse = {name: train(name, model, x, xt, args.epochs) for name, model in models.items()}
    shown = xt[:12]
    rows = [[to_uint8(img, 0, 1) for img in shown]]
    rows += [[to_uint8(img, 0, 1) for img in model.predict(shown)] for model in models.values()]
    path = os.path.join(args.out, "autoencoder.png")
    save_grid(path, rows)
    print("test reconstruction MSE: " + ", ".join(f"{name} {value:.5f}" for name, value in mse.items()))
    return mse


if __name__ == "__main__":
    main()
