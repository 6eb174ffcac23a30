/* cpu.h — the one answer to "which kernels does this CPU run": the GEMM's micro-kernels, the
 * optimizer's vector width, vmath and the plan's direct kernels all ask here, so
 * FASTNN_KERNELS (avx512 | avx2 | portable) and fastnn._core.set_gemm_kernels reach every
 * kernel at once.
 *
 * cpu.c detects once (CPUID, the OS's register save state via XGETBV, the cache sizes) and
 * reads FASTNN_KERNELS; gemm/dispatch.c owns only the GEMM's kernel tables and picks the one
 * fnn_cpu_kernels() names. Other compilers and architectures get the portable set.
 */
#ifndef FASTNN_CPU_H
#define FASTNN_CPU_H

#include <stdint.h>

/* Kernel sets (bit masks). */
#define FNN_KERNELS_PORTABLE 1
#define FNN_KERNELS_AVX2 2
#define FNN_KERNELS_AVX512 4

/* x86 kernels need GCC/Clang target attributes and <cpuid.h>; elsewhere only portable.
 * -DFNN_HAVE_X86_KERNELS=0 builds the portable-only variant on x86 too (a build check). */
#ifndef FNN_HAVE_X86_KERNELS
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define FNN_HAVE_X86_KERNELS 1
#else
#define FNN_HAVE_X86_KERNELS 0
#endif
#endif

/* The kernel set in use: FNN_KERNELS_PORTABLE, FNN_KERNELS_AVX2 or FNN_KERNELS_AVX512. */
int fnn_cpu_kernels(void);

/* Nonzero when the set in use has AVX2 + FMA (avx2 or avx512): the SIMD builds of the
 * optimizer and plan kernels may run; zero for portable. */
int fnn_cpu_avx2(void);

/* Bit mask of the sets this CPU, its OS and this build can run (portable always). */
int fnn_cpu_available(void);

/* Switch every kernel to one set: 0, or -1 if this machine cannot run it, -2 not a set.
 * Not thread-safe with running kernels (tests, benchmarks). */
int fnn_cpu_set_kernels(int id);

/* "avx512", "avx2" or "portable" (NULL for anything else), and back (0: unknown name). */
const char *fnn_cpu_kernels_name(int id);
int fnn_cpu_kernels_of_name(const char *name);

/* Data cache sizes in bytes (L1d, L2, L3), from CPUID leaf 4 / 0x8000001D or sysconf,
 * with defaults (32 KiB, 1 MiB, 32 MiB) where the machine does not say or says nonsense. */
void fnn_cpu_caches(int64_t out[3]);

#endif
