"""The logged value a callback watches ("val_loss", "accuracy", ...) and which way is better."""
import math
import warnings

from . import _validation


class _Monitor:
    """A logged value to watch ("val_loss", "accuracy", ...) and which way is better.

    mode "auto" means higher is better for accuracies (names containing "acc"), AUC, precision and recall,
    lower for everything else (losses, errors). A value improves on a reference when it is better by more
    than `min_delta`.
    """

    def __init__(self, owner, monitor, mode, min_delta=0.0):
        if not isinstance(monitor, str):
            raise TypeError(f"{owner}: monitor must be the name of a logged value, e.g. 'val_loss', got {monitor!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":
            base = monitor[4:] if monitor.startswith("val_") else monitor
            mode = "max" if any(part in base for part in ("acc", "auc", "precision", "recall")) else "min"
        self.owner, self.name, self.mode = owner, monitor, mode
        self.sign = 1.0 if mode == "max" else -1.0
        self.min_delta = abs(_validation.as_finite_float(min_delta, "min_delta"))
        self.worst = -math.inf if mode == "max" else math.inf

    def improves(self, value, reference):
        return self.sign * (value - reference) > self.min_delta  # False for NaN

    def value(self, logs, consequence):
        """The monitored value in `logs`, or None after a warning naming the keys that are there."""
        value = (logs or {}).get(self.name)
        if value is None:
            warnings.warn(f"{self.owner} monitors {self.name!r}, which is not in the logs (available: "
                          f"{', '.join(sorted(logs or {})) or 'none'}); {consequence}", stacklevel=3)
            return None
        return float(value)
