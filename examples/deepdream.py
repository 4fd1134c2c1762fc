"""DeepDream and activation maximization on a LeNet trained on MNIST.

    python examples/deepdream.py [MNIST_DIR] [--model FILE] [--image FILE] [--epochs N] [--size S] [--out DIR]

Without --model, a LeNet (examples/mnist_lenet.py) is trained for --epochs (default 2). The dream starts from
a test digit (or --image, converted to 28x28 grey), enlarged to --size pixels (default 84: LeNet's
convolutional layers run on any size), and amplifies what each convolutional layer responds to, over 3
octaves. Writes DIR/deepdream.png (rows: the start, the dream on the first convolution, the dream on the
second) and DIR/activation_maximization.png (the input that most excites each of the second convolution's 16
channels, from noise). Needs Pillow.
"""
import argparse
import os

import numpy as np

from fastnn import layers, ops, visualize
from _images import lenet, load_grey_28, load_mnist_images, save_grid, to_uint8


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", nargs="?", default=None, help="folder of the MNIST IDX files")
    parser.add_argument("--model", help="a LeNet saved by model.save (skips training)")
    parser.add_argument("--image", help="an image file to dream on")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--size", type=int, default=84, help="the dream's height and width in pixels")
    parser.add_argument("--out", default="visual-out")
    args = parser.parse_args(argv)

    data = load_mnist_images(args.path)
    model = lenet(args.model, args.epochs, data)
    convs = [layer.name for layer in model.layers if isinstance(layer, layers.Conv2D)]
    (_, _), (xt, yt) = data
    starts = [load_grey_28(args.image)] if args.image else [xt[np.flatnonzero(yt == d)[0]] for d in (3, 5, 8)]
    rows = [[], [], []]
    for start in starts:
        big = ops.resize2d(start[None], (args.size, args.size))[0]
        rows[0].append(to_uint8(big, 0, 1))
        for row, name in zip(rows[1:], convs):
            before = visualize.layer_output(model, big[None], name).mean()
            dream = visualize.deep_dream(model, big, name, steps=30, step_size=0.02, octaves=3, octave_scale=1.4,
                                         jitter=3, value_range=(0, 1), seed=0)
            after = visualize.layer_output(model, dream[None], name).mean()
            print(f"{name}: mean activation at {args.size}x{args.size} {before:.4f} -> {after:.4f}")
            row.append(to_uint8(dream, 0, 1))
    save_grid(os.path.join(args.out, "deepdream.png"), rows, scale=2)

    tiles = []
    for unit in range(model.get_layer(convs[-1]).filters):
        img = visualize.activation_maximization(model, convs[-1], unit, steps=150, step_size=0.05,
                                                value_range=(0, 1), seed=unit)
        tiles.append(to_uint8(img))
        value = visualize.layer_output(model, img[None], convs[-1])[0, :, :, unit].mean()
        print(f"{convs[-1]} channel {unit}: mean activation {value:.3f}")
    save_grid(os.path.join(args.out, "activation_maximization.png"), [tiles[:8], tiles[8:]], scale=4)


if __name__ == "__main__":
    main()
