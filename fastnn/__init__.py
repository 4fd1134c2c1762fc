"""fastnn: a fast CPU neural-network engine with a Keras-style API."""
from ._version import __version__
from ._cpu import _select_from_environment, cpu_info
from ._threads import apply_environment as _apply_environment, get_num_threads, set_num_threads
from ._random import set_seed
from . import activations, callbacks, datasets, initializers, layers, losses, metrics, ops, optimizers, schedules
from .model import Sequential
from .callbacks import History
from .files import load_model
from . import unsupervised
from . import visualize
from . import text

_select_from_environment()
_apply_environment()

__all__ = ["__version__", "cpu_info", "set_num_threads", "get_num_threads", "set_seed", "Sequential", "History",
           "load_model", "callbacks", "layers", "losses", "metrics", "optimizers", "schedules", "initializers",
           "activations", "datasets", "ops", "unsupervised",
           "visualize", "text"]
