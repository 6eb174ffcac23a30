/* cpu.c — see cpu.h. */
#include "cpu.h"

#include <string.h>

#include "gemm/gemm.h"

int fnn_cpu_kernels(void)
{
    const char *name = fnn_gemm_kernel_name();
    if (strcmp(name, "avx512") == 0)
        return FNN_KERNELS_AVX512;
    if (strcmp(name, "avx2") == 0)
        return FNN_KERNELS_AVX2;
    return FNN_KERNELS_PORTABLE;
}

int fnn_cpu_avx2(void) { return fnn_cpu_kernels() != FNN_KERNELS_PORTABLE; }
