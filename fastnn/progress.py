"""What `fit`, `evaluate` and `predict` print: a live tqdm bar then one line per pass (verbose=1), only the line
(verbose=2), or nothing (verbose=0)."""
import sys
import time

_REDRAW_SECONDS = 0.1  # the bar's refresh period; between draws an update costs a clock read
_BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n}/{total} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"


def resolve_verbose(verbose, off_terminal=2):
    """The verbosity to use: 0, 1 or 2 as given; "auto" means a bar on a terminal and `off_terminal` otherwise
    (2, one line per epoch, for fit; 0 for evaluate/predict, whose results are returned anyway)."""
    if verbose == "auto":
        isatty = getattr(sys.stdout, "isatty", None)
        return 1 if isatty is not None and isatty() else off_terminal
    if verbose not in (0, 1, 2) or isinstance(verbose, bool):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return verbose


def format_logs(logs):
    """"loss: 0.1234 - accuracy: 0.9000" (Keras' order: as the logs dict holds them)."""
    return " - ".join(f"{key}: {value:.4f}" for key, value in logs.items())


def _tqdm():
    from tqdm import tqdm  # imported on first use: it costs ~30 ms and silent runs never need it
    return tqdm


class Progress:
    """Reports one pass over `total` samples (an epoch, an evaluation or a prediction).

    Use it as a context manager; call `update(seen, loss, metrics)` after each batch (the logs are only
    formatted when the bar is redrawn, at most every 0.1 s) and `finish(seen, logs)` at the end of the pass.

    Parameters
    ----------
    verbose : {0, 1, 2}
        0 silent; 1 a tqdm bar with samples/s and the running loss and metrics, replaced at the end by one line
        with the time, samples/s and all logs; 2 only that line.
    total : int
        Samples in the pass.
    title : str
        E.g. "Epoch 3/10".
    stream : file, optional
        Where to write; sys.stdout (looked up at creation) by default.
    """

    def __init__(self, verbose, total, title, stream=None):
        self.verbose = verbose
        self.title = title
        self.stream = stream or sys.stdout
        self._bar = None
        if verbose == 1:
            # counted in samples, so tqdm's rate reads "12.3k samples/s" (unit_scale); the counts stay plain ints
            self._bar = _tqdm()(total=total, desc=title, unit=" samples", unit_scale=True, file=self.stream,
                                bar_format=_BAR_FORMAT, mininterval=0, miniters=1, dynamic_ncols=True, leave=False)
        self.start = time.perf_counter()
        self._next_draw = self.start + _REDRAW_SECONDS

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def update(self, seen, loss=None, metrics=()):
        """After a batch: `seen` samples done so far, the running mean loss and the metric objects."""
        if self._bar is None:
            return
        now = time.perf_counter()
        if now < self._next_draw:
            return
        self._next_draw = now + _REDRAW_SECONDS
        self._draw(seen, _running_logs(loss, metrics))

    def finish(self, seen, logs):
        """End of the pass: one complete line (title, time, samples/s, all `logs`) for verbose 1 and 2; the bar
        is cleared first, since a finished line may be wider than the terminal, where a bar cannot redraw."""
        self.close()
        if self.verbose:
            elapsed = time.perf_counter() - self.start
            parts = [self.title, f"{elapsed:.2f}s", f"{seen / max(elapsed, 1e-9):,.0f} samples/s"]
            if logs:
                parts.append(format_logs(logs))
            self.stream.write(" - ".join(parts) + "\n")
            self.stream.flush()

    def close(self):
        """Close the bar (ending its line), e.g. when the pass was interrupted by an exception."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _draw(self, seen, logs):
        bar = self._bar
        bar.set_postfix_str(format_logs(logs), refresh=False)
        if seen > bar.n:
            bar.update(seen - bar.n)
        else:
            bar.refresh()


def _running_logs(loss, metrics):
    logs = {} if loss is None else {"loss": loss}
    for m in metrics:
        logs[m.name] = m.result()
    return logs
