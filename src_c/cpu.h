/* cpu.h — the one answer to "which kernels does this CPU run": the GEMM's micro-kernels, the
 * optimizer's vector width and the plan's direct kernels all ask here, so FASTNN_KERNELS
 * (avx512 | avx2 | portable) and fastnn._core.set_gemm_kernels reach every kernel at once.
 *
 * The detection itself (CPUID, the OS's register save state, cache sizes) and the
 * FASTNN_KERNELS override live in gemm/dispatch.c, which owns the kernel tables; this header
 * is the interface the other kernels use.
 */
#ifndef FASTNN_CPU_H
#define FASTNN_CPU_H

/* The kernel set in use: FNN_KERNELS_PORTABLE, FNN_KERNELS_AVX2 or FNN_KERNELS_AVX512. */
int fnn_cpu_kernels(void);

/* Nonzero when the set in use has AVX2 + FMA (avx2 or avx512): the SIMD builds of the
 * optimizer and plan kernels may run; zero for portable. */
int fnn_cpu_avx2(void);

#endif
