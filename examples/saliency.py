"""Saliency maps of a LeNet on MNIST: which pixels the predicted class's score is most sensitive to.

    python examples/saliency.py [MNIST_DIR] [--model FILE] [--image FILE] [--epochs N] [--save-model FILE]
                                [--out DIR]

Without --model, a LeNet (examples/mnist_lenet.py) is trained for --epochs (default 2); --save-model keeps it
for the next run (or for examples/deepdream.py). --image adds your own picture, converted to 28x28 grey (a
light background is inverted, so dark ink on paper works). Writes DIR/saliency.png: the digits on the top row,
the saliency maps (|gradient of the pre-softmax score|, black-red-yellow-white) below, and the maps over the
digits at the bottom. Needs Pillow.
"""
import argparse
import os

import numpy as np

from fastnn import visualize
from _images import heatmap, lenet, load_grey_28, load_mnist_images, save_grid, to_uint8


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", nargs="?", default=None, help="folder of the MNIST IDX files")
    parser.add_argument("--model", help="a LeNet saved by model.save (skips training)")
    parser.add_argument("--image", help="an image file of a digit to add")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--save-model", help="save the trained LeNet here")
    parser.add_argument("--out", default="visual-out")
    args = parser.parse_args(argv)

    data = load_mnist_images(args.path)
    model = lenet(args.model, args.epochs, data)
    if args.save_model:
        model.save(args.save_model)
        print(f"saved the model to {args.save_model}")
    (_, _), (xt, yt) = data
    images = [xt[np.flatnonzero(yt == digit)[0]] for digit in range(10)]  # the first test image of each digit
    labels = list(range(10))
    if args.image:
        images.append(load_grey_28(args.image))
        labels.append(None)
    predicted = model.predict(np.stack(images)).argmax(axis=1)
    rows = [[], [], []]
    for img, label, guess in zip(images, labels, predicted):
        sal = visualize.saliency_map(model, img, int(guess))
        hot = heatmap(sal)
        grey = np.repeat(to_uint8(img, 0, 1)[:, :, None], 3, 2)
        rows[0].append(to_uint8(img, 0, 1))
        rows[1].append(hot)
        rows[2].append(np.maximum(grey // 2, hot))
        inside = sal[img[:, :, 0] > 0.3].sum() / sal.sum()
        print(f"{'your image' if label is None else f'digit {label}'}: predicted {guess}; "
              f"{100 * inside:.0f}% of the saliency falls on the strokes ({100 * (img > 0.3).mean():.0f}% of "
              f"the pixels)")
    save_grid(os.path.join(args.out, "saliency.png"), rows, scale=4)


if __name__ == "__main__":
    main()
