"""What `fit` prints: a live progress line per epoch (verbose=1), one line per epoch (verbose=2), or nothing."""
import sys
import time


def resolve_verbose(verbose):
    """"auto" means a live bar on a terminal and one line per epoch otherwise (logs, notebooks, CI)."""
    if verbose == "auto":
        return 1 if getattr(sys.stdout, "isatty", lambda: False)() else 2
    if verbose not in (0, 1, 2) or isinstance(verbose, bool):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return verbose


def _format_logs(logs):
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())


class EpochProgress:
    """Reports one epoch: `update(step, samples, logs)` after each batch, `finish(logs)` at the end."""

    def __init__(self, verbose, epoch, epochs, steps, stream=None):
        self.verbose = verbose
        self.stream = stream or sys.stdout
        self.steps = steps
        self.prefix = f"Epoch {epoch + 1}/{epochs}"
        self.start = time.perf_counter()
        self._last_draw = 0.0
        if verbose == 1:
            self.stream.write(self.prefix + "\n")

    def update(self, step, samples, logs):
        if self.verbose != 1:
            return
        now = time.perf_counter()
        if step < self.steps and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        width = 30
        done = int(width * step / self.steps)
        bar = "=" * done + (">" if done < width else "") + "." * max(0, width - done - 1)
        rate = samples / max(now - self.start, 1e-9)
        self.stream.write(f"\r{step}/{self.steps} [{bar}] - {rate:,.0f} samples/s - {_format_logs(logs)}")
        self.stream.flush()

    def finish(self, logs):
        elapsed = time.perf_counter() - self.start
        if self.verbose == 1:
            self.stream.write(f"\r{self.steps}/{self.steps} - {elapsed:.2f}s - {_format_logs(logs)}\n")
        elif self.verbose == 2:
            self.stream.write(f"{self.prefix} - {elapsed:.2f}s - {_format_logs(logs)}\n")
        self.stream.flush()
