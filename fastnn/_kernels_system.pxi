# Threads and instruction-set dispatch.

ISA_NAMES = ("generic", "avx2", "avx512")


def omp_max_threads():
    return fnn_omp_max_threads()


def omp_set_threads(int n):
    fnn_omp_set_threads(n)


def isa_supported(int isa):
    return bool(fnn_isa_supported(isa))


def isa_current():
    return fnn_isa_current()


def isa_select(int isa):
    check(fnn_isa_select(isa), f"selecting instruction set {ISA_NAMES[isa] if 0 <= isa < 3 else isa}")


cdef extern from *:
    """
    static const char *fnn_compiler_version = "gcc " __VERSION__;
    """
    const char *fnn_compiler_version


def compiler_version():
    return fnn_compiler_version.decode()
