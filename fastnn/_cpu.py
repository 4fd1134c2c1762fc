"""What fastnn runs on: the instruction set in use, the ones available, threads and compiler."""
import os

from . import _kernels

ISA_NAMES = _kernels.ISA_NAMES


def _select_from_environment():
    """FASTNN_ISA=generic|avx2|avx512 forces an instruction set; one the CPU lacks is a clear error."""
    wanted = os.environ.get("FASTNN_ISA", "").strip().lower()
    if not wanted:
        return
    if wanted not in ISA_NAMES:
        raise ValueError(f"FASTNN_ISA={wanted!r} is not known; valid values: {', '.join(ISA_NAMES)}")
    isa = ISA_NAMES.index(wanted)
    if not _kernels.isa_supported(isa):
        available = [n for i, n in enumerate(ISA_NAMES) if _kernels.isa_supported(i)]
        raise RuntimeError(f"FASTNN_ISA={wanted!r} asks for an instruction set this CPU does not support; "
                           f"available: {', '.join(available)}")
    _kernels.isa_select(isa)


def cpu_info():
    """A dict: the instruction set in use, those available, the thread count and the compiler used."""
    return {
        "isa": ISA_NAMES[_kernels.isa_current()],
        "isa_available": [n for i, n in enumerate(ISA_NAMES) if _kernels.isa_supported(i)],
        "threads": _kernels.omp_max_threads(),
        "cpu_count": os.cpu_count(),
        "compiler": _kernels.compiler_version(),
    }
