"""Reconstruction floor on real data (issue #8): a convolutional autoencoder whose decoder is a strided
Conv2DTranspose and a bilinear UpSampling2D, 2 epochs on 12,000 MNIST digits, fixed seed."""
import time

import numpy as np

import fastnn
from fastnn import layers as L


def test_conv_autoencoder_reconstructs_mnist(mnist_dir):
    (x, _), (xt, _) = fastnn.datasets.load_mnist(str(mnist_dir))
    x = x[:12000].reshape(-1, 28, 28, 1).astype(np.float32) / 255.0
    xt = xt[:2000].reshape(-1, 28, 28, 1).astype(np.float32) / 255.0
    fastnn.set_seed(0)
    model = fastnn.Sequential([
        L.Input((28, 28, 1)),
        L.Conv2D(16, 3, padding="same", activation="relu"), L.MaxPool2D(2),
        L.Conv2D(8, 3, padding="same", activation="relu"), L.MaxPool2D(2),                # 7 x 7 x 8 code
        L.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu"),             # 14 x 14
        L.UpSampling2D(2, interpolation="bilinear"),                                         # 28 x 28
        L.Conv2D(1, 3, padding="same", activation="sigmoid"),
    ])
    model.compile(optimizer=fastnn.optimizers.Adam(0.003), loss="binary_crossentropy")
    start = time.perf_counter()
    model.fit(x, x, batch_size=64, epochs=2, verbose=0)
    seconds = time.perf_counter() - start
    mse = float(np.mean((model.predict(xt) - xt) ** 2))
    baseline = float(np.mean((x.mean(axis=0) - xt) ** 2))  # predicting the mean digit
    print(f"test reconstruction MSE {mse:.5f} (mean-digit baseline {baseline:.5f}) after {seconds:.1f} s")
    assert mse <= 0.012, f"test reconstruction MSE {mse:.5f}, floor 0.012 (baseline {baseline:.5f})"
