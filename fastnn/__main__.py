"""The ``fastnn`` command line: ``python -m fastnn info | demo``.

Each command is a subparser with a handler; a new command (``bench``, ...) is one more ``_add_*`` function.
"""
import argparse
import platform
import sys


def _info(args):
    import numpy

    import fastnn

    cpu = fastnn.cpu_info()
    lines = [
        f"fastnn {fastnn.__version__}",
        f"instruction set in use: {cpu['isa']}",
        f"instruction sets available: {', '.join(cpu['isa_available'])}",
        f"threads: {cpu['threads']} (CPUs: {cpu['cpu_count']})",
        f"compiled with: {cpu['compiler']}",
        f"numpy {numpy.__version__}",
        f"Python {platform.python_version()} ({platform.python_implementation()}, {platform.machine()})",
    ]
    print("\n".join(lines))
    return 0


def _demo(args):
    from fastnn import _demo

    _demo.run(epochs=args.epochs, seed=args.seed, verbose=True)
    return 0


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _add_info(commands):
    parser = commands.add_parser("info", help="show the version, CPU features, threads and library versions",
                                 description="Show fastnn's version, the instruction set in use and those "
                                             "available, the thread count, the compiler, numpy and Python.")
    parser.set_defaults(handler=_info)


def _add_demo(commands):
    from fastnn._demo import DEFAULT_EPOCHS

    parser = commands.add_parser("demo", help="train a small network on the shipped 8x8 digits",
                                 description="Train an MLP on the UCI handwritten digits shipped with fastnn "
                                             "and print the test accuracy (offline, a few seconds).")
    parser.add_argument("--epochs", type=_positive_int, default=DEFAULT_EPOCHS,
                        help=f"number of passes over the training set (default {DEFAULT_EPOCHS})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.set_defaults(handler=_demo)


def _build_parser():
    parser = argparse.ArgumentParser(prog="fastnn", description="fastnn: a fast CPU neural-network engine.")
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND", required=True)
    _add_info(commands)
    _add_demo(commands)
    return parser


def main(argv=None):
    """Run the fastnn command line.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name; ``sys.argv[1:]`` when None.

    Returns
    -------
    int
        The exit status: 0 on success. Usage errors (an unknown command, a bad option) exit with status 2
        through ``SystemExit``, as argparse does.

    Examples
    --------
    >>> main(["info"])  # doctest: +SKIP
    fastnn 0.1.0
    ...
    """
    args = _build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
