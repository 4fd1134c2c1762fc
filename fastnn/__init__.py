"""fastnn: a fast CPU neural-network engine with a Keras-style API."""
import importlib

from ._version import __version__
from ._cpu import _select_from_environment, cpu_info
from ._threads import apply_environment as _apply_environment, get_num_threads, set_num_threads
from ._random import set_seed
from . import activations, initializers, layers, losses, metrics, optimizers, schedules
from .model import Sequential
from ._callback_base import History

_select_from_environment()
_apply_environment()

# Loaded on first access (PEP 562), so that `import fastnn` costs only what building and training a model needs:
# submodule name -> None, or a public name -> the submodule that defines it.
_LAZY = {"callbacks": None, "datasets": None, "files": None, "ops": None, "unsupervised": None, "visualize": None,
         "text": None, "load_model": "files"}

__all__ = ["__version__", "cpu_info", "set_num_threads", "get_num_threads", "set_seed", "Sequential", "History",
           "load_model", "callbacks", "layers", "losses", "metrics", "optimizers", "schedules", "initializers",
           "activations", "datasets", "ops", "unsupervised",
           "visualize", "text"]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    home = _LAZY[name]
    if home is None:
        return importlib.import_module(f"{__name__}.{name}")  # the import binds it here: no second lookup
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
