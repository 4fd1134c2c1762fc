"""The ``fastnn`` command line: ``python -m fastnn info | demo | bench``.

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


def _bench(args):
    import os

    from fastnn.benchmarks import command, yardstick

    overrides = yardstick.blas_overrides(os.environ)
    if overrides:
        named = ", ".join(f"{k}={v}" for k, v in overrides.items())
        if args.command_line is None:
            print(f"fastnn bench: warning: {named} makes the NumPy yardstick run another CPU's kernels",
                  file=sys.stderr, flush=True)
        else:
            # NumPy, and with it OpenBLAS, is loaded already (by fastnn); only a new process sheds the overrides.
            print(f"fastnn bench: restarting without {named}, which would make the NumPy yardstick run another "
                  f"CPU's kernels", file=sys.stderr, flush=True)
            environ = {k: v for k, v in os.environ.items() if k not in overrides}
            os.execve(sys.executable, [sys.executable, "-m", "fastnn", *args.command_line], environ)
    return command.run(args)


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


def _comma_list(kind, choices=None):
    """An argparse type: comma-separated values of `kind` (from `choices` when given), in order, no repeats."""
    def parse(text):
        values = []
        for item in text.split(","):
            value = kind(item.strip())
            if choices is not None and value not in choices:
                raise argparse.ArgumentTypeError(f"unknown value {value!r}; expected some of {', '.join(choices)}")
            if value not in values:
                values.append(value)
        return values

    return parse


def _tolerance(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction such as 0.25, got {text!r}") from None
    if not 0 <= value < 100:
        raise argparse.ArgumentTypeError(f"expected a fraction such as 0.25 (25%), got {value}")
    return value


def _add_bench(commands):
    from fastnn.benchmarks.workloads import BATCHES, PHASES, WORKLOADS

    parser = commands.add_parser(
        "bench", help="time the reference workloads, against peers or against a baseline",
        description="Time the reference workloads (mlp, lenet, cnn32, lstm) at batches 1, 32, 256, for a train "
                    "step (train_on_batch) and inference (predict_on_batch). With --peers, PyTorch, Keras/"
                    "TensorFlow and ONNX Runtime (those installed) run the same models on the same data, "
                    "interleaved with fastnn; the table gives median milliseconds and speed-ups (peer time / "
                    "fastnn time). With --gate, fastnn's times over a fixed NumPy matmul are compared with a "
                    "baseline file; the exit status is 1 when a cell is slower than the tolerance allows.")
    parser.add_argument("--peers", action="store_true", help="also time PyTorch, Keras/TF and ONNX Runtime")
    parser.add_argument("--workload", type=_comma_list(str, tuple(WORKLOADS)),
                        help=f"comma-separated workloads (default: {','.join(WORKLOADS)})")
    parser.add_argument("--batch", type=_comma_list(_positive_int),
                        help=f"comma-separated batch sizes (default: {','.join(map(str, BATCHES))})")
    parser.add_argument("--phase", type=_comma_list(str, PHASES), help=f"{' or '.join(PHASES)} (default: both)")
    parser.add_argument("--rounds", type=_positive_int, help="interleaved rounds per cell (default 15; with "
                                                             "--gate: the baseline's)")
    parser.add_argument("--round-ms", type=float, default=30.0, help="milliseconds of calls per engine and "
                                                                     "round (default 30)")
    parser.add_argument("--threads", type=_positive_int, help="threads of every engine (default 2; with --gate: "
                                                              "the baseline's)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")
    parser.add_argument("--gate", metavar="BASELINE", help="compare with a baseline file (bench/baseline/*.json)")
    parser.add_argument("--tolerance", type=_tolerance, default=0.25,
                        help="with --gate: how much slower than the baseline a cell may be (default 0.25)")
    parser.add_argument("--update-baseline", action="store_true",
                        help="with --gate: measure the baseline's cells (or those selected) and rewrite the file")
    parser.set_defaults(handler=_bench)


def _build_parser():
    parser = argparse.ArgumentParser(prog="fastnn", description="fastnn: a fast CPU neural-network engine.")
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND", required=True)
    _add_info(commands)
    _add_demo(commands)
    _add_bench(commands)
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
    # Called from the command line, a command may restart the process with these arguments; called with a list
    # (from Python), it never replaces the caller's process.
    args.command_line = sys.argv[1:] if argv is None else None
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
