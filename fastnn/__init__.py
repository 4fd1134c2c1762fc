"""fastnn: a fast CPU neural-network engine with a Keras-style API."""
from ._version import __version__
from ._cpu import _select_from_environment, cpu_info
from ._threads import apply_environment as _apply_environment, get_num_threads, set_num_threads
from . import ops

_select_from_environment()
_apply_environment()
