/* Runtime CPU dispatch: which instruction set the kernels use. Chosen once, at first use, as the best the
 * CPU and OS support; fnn_isa_select() (FASTNN_ISA in Python) forces another. The kernels ask
 * fnn_isa_current() and call the matching micro-kernels. */
#include "fnn.h"

#include <pthread.h>

static int selected_isa = -1; /* the one piece of global mutable state: set once, or on an explicit select */
static pthread_once_t detect_once = PTHREAD_ONCE_INIT;
static int best_isa = FNN_ISA_GENERIC;

static void detect(void)
{
    __builtin_cpu_init();
    best_isa = FNN_ISA_GENERIC;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        best_isa = FNN_ISA_AVX2;
    if (best_isa == FNN_ISA_AVX2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        best_isa = FNN_ISA_AVX512;
}

int fnn_isa_supported(int isa)
{
    pthread_once(&detect_once, detect);
    return isa >= FNN_ISA_GENERIC && isa <= best_isa;
}

int fnn_isa_select(int isa)
{
    pthread_once(&detect_once, detect);
    if (isa < 0) {
        __atomic_store_n(&selected_isa, best_isa, __ATOMIC_RELEASE);
        return FNN_OK;
    }
    if (isa > FNN_ISA_AVX512)
        return FNN_EBADARG;
    if (isa > best_isa)
        return FNN_EISA;
    __atomic_store_n(&selected_isa, isa, __ATOMIC_RELEASE);
    return FNN_OK;
}

int fnn_isa_current(void)
{
    int isa = __atomic_load_n(&selected_isa, __ATOMIC_ACQUIRE);
    if (isa < 0) {
        pthread_once(&detect_once, detect);
        /* Only the first caller installs the detected best; an explicit select may have won the race. */
        int unset = -1;
        __atomic_compare_exchange_n(&selected_isa, &unset, best_isa, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
        isa = __atomic_load_n(&selected_isa, __ATOMIC_ACQUIRE);
    }
    return isa;
}

const char *fnn_isa_name(int isa)
{
    switch (isa) {
    case FNN_ISA_AVX512: return "avx512";
    case FNN_ISA_AVX2: return "avx2";
    case FNN_ISA_GENERIC: return "generic";
    default: return "unknown";
    }
}
