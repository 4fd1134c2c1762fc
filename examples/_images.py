"""What the visual examples share: MNIST as (n, 28, 28, 1) in [0, 1], a LeNet trained briefly or loaded from a
file, a user's image as 28x28 grey, and PNG grids (Pillow: ``pip install fastnn[vision]``)."""
import os
import sys
import time

import numpy as np

import fastnn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mnist_lenet import build_lenet  # noqa: E402


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        raise SystemExit("these examples write PNG files with Pillow: pip install pillow (or fastnn[vision])")
    return Image


def load_mnist_images(path=None):
    """((x_train, y_train), (x_test, y_test)) with images (n, 28, 28, 1) float32 in [0, 1]."""
    (x, y), (xt, yt) = fastnn.datasets.load_mnist(path)
    return ((x.reshape(-1, 28, 28, 1).astype(np.float32) / 255.0, y),
            (xt.reshape(-1, 28, 28, 1).astype(np.float32) / 255.0, yt))


def lenet(model_path, epochs, data, seed=0):
    """The LeNet of examples/mnist_lenet.py: loaded from `model_path` when given, else trained for `epochs`."""
    (x, y), (xt, yt) = data
    if model_path:
        model = fastnn.load_model(model_path)
    else:
        fastnn.set_seed(seed)
        model = build_lenet()
        model.compile(optimizer=fastnn.optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        start = time.perf_counter()
        model.fit(x, y, batch_size=64, epochs=epochs, verbose=0)
        print(f"trained LeNet for {epochs} epoch(s) in {time.perf_counter() - start:.1f} s")
    if model.loss is not None:
        print(f"LeNet test accuracy: {model.evaluate(xt, yt, batch_size=1000, return_dict=True, verbose=0)['accuracy']:.4f}")
    return model


def load_grey_28(path):
    """A user's image file as (28, 28, 1) float32 in [0, 1], white digit on black like MNIST: greyscale, fitted
    into 28x28, inverted when the background is light."""
    Image = _pillow()
    img = np.asarray(Image.open(path).convert("L").resize((28, 28), Image.BILINEAR), np.float32) / 255.0
    if np.median(img) > 0.5:  # dark ink on light paper
        img = 1.0 - img
    img = (img - img.min()) / max(float(img.max() - img.min()), 1e-6)  # MNIST's full black-to-white range
    return img[:, :, None]


def to_uint8(img, lo=None, hi=None):
    """An (h, w) or (h, w, 1) array scaled from [lo, hi] (default: its own min and max) to 0..255."""
    img = np.asarray(img, np.float64).squeeze()
    lo = img.min() if lo is None else lo
    hi = img.max() if hi is None else hi
    return (255 * np.clip((img - lo) / max(hi - lo, 1e-12), 0, 1)).astype(np.uint8)


def save_grid(path, rows, scale=4, gap=2):
    """Write a PNG of a grid of uint8 (h, w) or (h, w, 3) tiles (a list of rows), each enlarged `scale` times."""
    Image = _pillow()
    tiles = [[np.repeat(np.repeat(t, scale, 0), scale, 1) for t in row] for row in rows]
    th, tw = tiles[0][0].shape[:2]
    n_cols = max(len(r) for r in tiles)
    grid = np.full((len(tiles) * (th + gap) + gap, n_cols * (tw + gap) + gap, 3), 40, np.uint8)
    for i, row in enumerate(tiles):
        for j, t in enumerate(row):
            t = t if t.ndim == 3 else np.repeat(t[:, :, None], 3, 2)
            grid[gap + i * (th + gap):gap + i * (th + gap) + th, gap + j * (tw + gap):gap + j * (tw + gap) + tw] = t
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(grid).save(path)
    print(f"wrote {path}")


def heatmap(values):
    """An (h, w) array of non-negative values as an RGB uint8 'hot' colour map (black-red-yellow-white)."""
    v = np.asarray(values, np.float64)
    v = v / max(v.max(), 1e-12)
    rgb = np.stack([np.clip(3 * v, 0, 1), np.clip(3 * v - 1, 0, 1), np.clip(3 * v - 2, 0, 1)], axis=-1)
    return (255 * rgb).astype(np.uint8)
