/* cpu.c — CPU detection, once: which kernel sets can run, the cache sizes, and the
 * FASTNN_KERNELS override (see cpu.h).
 *
 * A set is usable when the CPU has the instructions AND the OS saves the registers on a
 * context switch (XGETBV: XMM|YMM for AVX2, plus opmask and both ZMM halves for AVX-512). */
#include "cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if FNN_HAVE_X86_KERNELS
#include <cpuid.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

static int g_available = 0;            /* FNN_KERNELS_* mask; 0: not detected yet */
static volatile int g_kernels = 0;     /* the set in use, published last */
static int64_t g_l1 = 32 * 1024, g_l2 = 1024 * 1024, g_l3 = 32 * 1024 * 1024;

#if FNN_HAVE_X86_KERNELS
static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static int detect_x86(void)
{
    unsigned a, b, c, d;
    int mask = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    const int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    if (!osxsave || !avx)
        return 0;
    const uint64_t xcr0 = xgetbv0();
    const int os_ymm = (xcr0 & 0x6) == 0x6;
    const int os_zmm = (xcr0 & 0xE6) == 0xE6;
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    const int avx2 = (b >> 5) & 1;
    const int f512 = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    if (os_ymm && avx2 && fma)
        mask |= FNN_KERNELS_AVX2;
    if (os_zmm && f512 && dq && bw && vl && fma)
        mask |= FNN_KERNELS_AVX512;
    return mask;
}

/* Deterministic cache parameters: leaf 4 (Intel) or 0x8000001D (AMD), same
 * layout: type in eax[4:0], level in eax[7:5], size = ways·partitions·line·sets. */
static void detect_caches_x86(void)
{
    unsigned a, b, c, d;
    unsigned leaf = 4;
    unsigned maxext = __get_cpuid_max(0x80000000u, NULL);
    __cpuid(0, a, b, c, d);
    const int amd = (b == 0x68747541u); /* "Auth" of AuthenticAMD */
    if (amd) {
        if (maxext < 0x8000001Du)
            return;
        leaf = 0x8000001Du;
    } else if (__get_cpuid_max(0, NULL) < 4) {
        return;
    }
    for (unsigned sub = 0; sub < 8; sub++) {
        __cpuid_count(leaf, sub, a, b, c, d);
        const unsigned type = a & 0x1F, level = (a >> 5) & 0x7;
        if (type == 0)
            break;
        if (type == 2) /* instruction cache */
            continue;
        const int64_t size = (int64_t)(((b >> 22) & 0x3FF) + 1) * (((b >> 12) & 0x3FF) + 1) *
                             ((b & 0xFFF) + 1) * ((int64_t)c + 1);
        if (size <= 0)
            continue;
        if (level == 1) g_l1 = size;
        else if (level == 2) g_l2 = size;
        else if (level == 3) g_l3 = size;
    }
}
#endif

static void detect_caches(void)
{
#if FNN_HAVE_X86_KERNELS
    detect_caches_x86();
#elif defined(_SC_LEVEL1_DCACHE_SIZE)
    long s;
    if ((s = sysconf(_SC_LEVEL1_DCACHE_SIZE)) > 0) g_l1 = s;
    if ((s = sysconf(_SC_LEVEL2_CACHE_SIZE)) > 0) g_l2 = s;
    if ((s = sysconf(_SC_LEVEL3_CACHE_SIZE)) > 0) g_l3 = s;
#endif
    /* Guard against nonsense from virtual machines. */
    if (g_l1 < 16 * 1024 || g_l1 > 1024 * 1024) g_l1 = 32 * 1024;
    if (g_l2 < 128 * 1024 || g_l2 > 64 * 1024 * 1024) g_l2 = 1024 * 1024;
    if (g_l3 < g_l2) g_l3 = 4 * g_l2;
}

const char *fnn_cpu_kernels_name(int id)
{
    return id == FNN_KERNELS_AVX512 ? "avx512" : id == FNN_KERNELS_AVX2 ? "avx2"
         : id == FNN_KERNELS_PORTABLE ? "portable" : NULL;
}

int fnn_cpu_kernels_of_name(const char *name)
{
    if (!name) return 0;
    if (strcmp(name, "avx512") == 0) return FNN_KERNELS_AVX512;
    if (strcmp(name, "avx2") == 0) return FNN_KERNELS_AVX2;
    if (strcmp(name, "portable") == 0) return FNN_KERNELS_PORTABLE;
    return 0;
}

/* Racing first callers compute the same values; g_kernels is written last. */
static void cpu_init(void)
{
    int mask = FNN_KERNELS_PORTABLE;
#if FNN_HAVE_X86_KERNELS
    mask |= detect_x86();
#endif
    detect_caches();
    g_available = mask;
    int best = (mask & FNN_KERNELS_AVX512) ? FNN_KERNELS_AVX512
             : (mask & FNN_KERNELS_AVX2) ? FNN_KERNELS_AVX2 : FNN_KERNELS_PORTABLE;
    const char *env = getenv("FASTNN_KERNELS");
    const int forced = fnn_cpu_kernels_of_name(env);
    if (forced && (mask & forced))
        best = forced;
    else if (env && *env)  /* say so rather than silently run another set */
        fprintf(stderr, "fastnn: FASTNN_KERNELS=%s %s; using %s\n", env,
                forced ? "is not supported by this CPU" : "is not avx512, avx2 or portable",
                fnn_cpu_kernels_name(best));
    g_kernels = best;
}

int fnn_cpu_kernels(void)
{
    int k = g_kernels;
    if (!k) {
        cpu_init();
        k = g_kernels;
    }
    return k;
}

int fnn_cpu_avx2(void) { return fnn_cpu_kernels() != FNN_KERNELS_PORTABLE; }

int fnn_cpu_available(void)
{
    fnn_cpu_kernels();
    return g_available;
}

int fnn_cpu_set_kernels(int id)
{
    if (!fnn_cpu_kernels_name(id))
        return -2;
    if (!(fnn_cpu_available() & id))
        return -1;
    g_kernels = id;
    return 0;
}

void fnn_cpu_caches(int64_t out[3])
{
    fnn_cpu_kernels();
    out[0] = g_l1;
    out[1] = g_l2;
    out[2] = g_l3;
}
