"""A deep belief network on MNIST: pre-train 784-500-500-2000 greedily as RBMs, fine-tune 784-500-500-2000-10 by
backprop, and compare with the same network fine-tuned for the same budget from a random (Glorot) start.

    python examples/dbn_mnist.py [MNIST_DIR] [--pretrain-epochs N] [--finetune-epochs N] [--train-limit N] ...

MNIST_DIR holds the four IDX files (gzipped or not); default: $FASTNN_DATA/mnist or ../shared/data/mnist.
Hinton, Osindero and Teh (2006) report 1.25% test error for this architecture. Prints every phase's time, the
test error of both networks and the machine's load.
"""
import argparse
import os
import time

import numpy as np

import fastnn
from fastnn import layers
from fastnn.unsupervised import DBN

HIDDEN = (500, 500, 2000)


def finetune(model, x_train, y_train, x_test, y_test, args, lr, label):
    """SGD (with momentum) at step size lr for args.finetune_epochs; the step size drops 10x for the last third.
    Returns the test error and the seconds spent."""
    optimizer = fastnn.optimizers.SGD(lr, momentum=args.finetune_momentum)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    seconds = 0.0
    for epoch in range(args.finetune_epochs):
        if epoch == args.finetune_epochs - args.finetune_epochs // 3:
            optimizer.learning_rate = lr / 10
        start = time.perf_counter()
        history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=1, verbose=0)
        seconds += time.perf_counter() - start
        _, accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
        print(f"[{label}] fine-tune epoch {epoch + 1}/{args.finetune_epochs}: train loss "
              f"{history.history['loss'][0]:.4f}, test error {100 * (1 - accuracy):.2f}% ({seconds:.0f} s so far, "
              f"load {os.getloadavg()[0]:.1f})", flush=True)
    return 1.0 - accuracy, seconds


def pretrain_and_finetune(x_train, y_train, x_test, y_test, args):
    """Greedy pre-training of the RBM stack, then backprop through the stack plus a softmax layer."""
    start = time.perf_counter()
    fastnn.set_seed(args.seed)
    dbn = DBN(HIDDEN, seed=args.seed, learning_rate=list(args.pretrain_lr), weight_decay=0.0002)
    dbn.fit(x_train, epochs=args.pretrain_epochs, batch_size=args.batch_size, verbose=1)
    pretrain_seconds = time.perf_counter() - start
    print(f"pre-training: {pretrain_seconds:.0f} s ({args.pretrain_epochs} epochs per RBM)", flush=True)
    model = dbn.to_sequential(10)
    error, seconds = finetune(model, x_train, y_train, x_test, y_test, args, args.finetune_lr, "DBN init")
    return error, (f"DBN-initialised 784-500-500-2000-10: test error {100 * error:.2f}% (pre-training "
                   f"{pretrain_seconds:.0f} s + fine-tuning {seconds:.0f} s = {time.perf_counter() - start:.0f} s)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", nargs="?", default=None, help="folder of the MNIST IDX files")
    parser.add_argument("--pretrain-epochs", type=int, default=20, help="RBM epochs per layer")
    parser.add_argument("--finetune-epochs", type=int, default=40)
    parser.add_argument("--pretrain-lr", type=float, nargs=3, default=(0.1, 0.1, 0.02),
                        help="learning rate of each RBM (at 0.1 the 2000-unit RBM's hidden units tend to all switch "
                             "off for good)")
    parser.add_argument("--finetune-lr", type=float, default=0.1)
    parser.add_argument("--finetune-momentum", type=float, default=0.9)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--train-limit", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--skip-baseline", action="store_true", help="do not train the randomly initialised net")
    parser.add_argument("--skip-dbn", action="store_true", help="train only the randomly initialised net")
    parser.add_argument("--baseline-lr", type=float, default=None,
                        help="fine-tuning step size of the randomly initialised net (default: --finetune-lr)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    (x_train, y_train), (x_test, y_test) = fastnn.datasets.load_mnist(args.path)
    if args.train_limit:
        x_train, y_train = x_train[:args.train_limit], y_train[:args.train_limit]
    x_train = x_train.reshape(len(x_train), -1).astype(np.float32) / 255.0
    x_test = x_test.reshape(len(x_test), -1).astype(np.float32) / 255.0
    print(f"fastnn {fastnn.__version__} on {fastnn.cpu_info()['isa']}, {fastnn.get_num_threads()} threads; "
          f"{len(x_train)} training images; load average {os.getloadavg()[0]:.1f}", flush=True)
    total_start = time.perf_counter()
    results, dbn_error = [], None
    if not args.skip_dbn:
        dbn_error, line = pretrain_and_finetune(x_train, y_train, x_test, y_test, args)
        results.append(line)
    if not args.skip_baseline:
        fastnn.set_seed(args.seed + 1)
        random_model = fastnn.Sequential([layers.Input((784,))] +
                                         [layers.Dense(n, activation="sigmoid") for n in HIDDEN] +
                                         [layers.Dense(10, activation="softmax")])
        lr = args.finetune_lr if args.baseline_lr is None else args.baseline_lr
        random_error, random_seconds = finetune(random_model, x_train, y_train, x_test, y_test, args, lr,
                                                "random init")
        results.append(f"randomly initialised (Glorot), same fine-tuning budget at step size {lr}: test error "
                       f"{100 * random_error:.2f}% ({random_seconds:.0f} s)")
    for line in results:
        print(line)
    print(f"total wall time {time.perf_counter() - total_start:.0f} s; load average (1, 5, 15 min) "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    return dbn_error


if __name__ == "__main__":
    main()
