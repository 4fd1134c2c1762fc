"""What the kernel tests share: the instruction sets this CPU runs, and context managers that force one ISA or
a thread count and put the previous setting back."""
import contextlib

import fastnn
from fastnn import _kernels

ISAS = [i for i, _ in enumerate(_kernels.ISA_NAMES) if _kernels.isa_supported(i)]
ISA_IDS = [_kernels.ISA_NAMES[i] for i in ISAS]


@contextlib.contextmanager
def isa(index):
    before = _kernels.isa_current()  # FASTNN_ISA may have forced one: put it back
    _kernels.isa_select(index)
    try:
        yield
    finally:
        _kernels.isa_select(before)


@contextlib.contextmanager
def threads(n):
    before = fastnn.get_num_threads()
    fastnn.set_num_threads(n)
    try:
        yield
    finally:
        fastnn.set_num_threads(before)
