/* dispatch.c — choose the micro-kernels once from CPUID, size the cache blocks
 * from the caches.
 *
 * A kernel set is usable when the CPU has the instructions AND the OS saves
 * the registers on a context switch (XGETBV: XMM|YMM for AVX2, plus opmask
 * and both ZMM halves for AVX-512). FASTNN_KERNELS=avx512|avx2|portable forces
 * a set the machine supports; FASTNN_GEMM_BLOCKS="mc,kc,nc" overrides the cache
 * blocks (for tuning); FASTNN_GEMM_VERBOSE=1 prints the choice to stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gemm_internal.h"

#if FNN_HAVE_X86_KERNELS
#include <cpuid.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

static fnn_kernel_set g_sets[3];   /* portable, avx2, avx512 (index by bit position) */
static int g_available = 0;         /* FNN_KERNELS_* mask */
static const fnn_kernel_set *volatile g_active = NULL;
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

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Cache blocks for one kernel and element size:
 *   KC: a KC×NR micro-panel of B stays in half of L1 while the ir loop
 *       streams MR×KC micro-panels of A past it;
 *   MC: the MC×KC block of A takes about half of L2;
 *   NC: the KC×NC panel of B takes a quarter of L3 (shared by the threads). */
static void size_blocks(fnn_blocks *bl, size_t elt)
{
    int64_t kc = (g_l1 / 2) / (bl->nr * (int64_t)elt);
    kc = clamp64(kc / 8 * 8, 64, 512);
    int64_t mc = (g_l2 / 2) / (kc * (int64_t)elt);
    mc = clamp64(mc / bl->mr * bl->mr, bl->mr, 4096 / bl->mr * bl->mr);
    int64_t nc = (g_l3 / 4) / (kc * (int64_t)elt);
    nc = clamp64(nc / bl->nr * bl->nr, bl->nr, 8192 / bl->nr * bl->nr);
    const char *env = getenv("FASTNN_GEMM_BLOCKS");
    long emc, ekc, enc;
    if (env && sscanf(env, "%ld,%ld,%ld", &emc, &ekc, &enc) == 3 && emc > 0 && ekc > 0 && enc > 0) {
        mc = (emc + bl->mr - 1) / bl->mr * bl->mr;
        kc = ekc;
        nc = (enc + bl->nr - 1) / bl->nr * bl->nr;
    }
    bl->mc = mc;
    bl->kc = kc;
    bl->nc = nc;
}

static int set_index(int id) { return id == FNN_KERNELS_AVX512 ? 2 : id == FNN_KERNELS_AVX2 ? 1 : 0; }

static int id_of_name(const char *name)
{
    if (!name) return 0;
    if (strcmp(name, "avx512") == 0) return FNN_KERNELS_AVX512;
    if (strcmp(name, "avx2") == 0) return FNN_KERNELS_AVX2;
    if (strcmp(name, "portable") == 0) return FNN_KERNELS_PORTABLE;
    return 0;
}

void fnn_gemm_init(void)
{
    if (g_active)
        return;
    /* Two threads racing here compute the same values; the pointer is
     * published last. */
    int mask = FNN_KERNELS_PORTABLE;
    detect_caches();
    fnn_kernels_portable(&g_sets[0]);
#if FNN_HAVE_X86_KERNELS
    mask |= detect_x86();
    fnn_kernels_avx2(&g_sets[1]);
    fnn_kernels_avx512(&g_sets[2]);
#endif
    for (int i = 0; i < 3; i++) {
        if (!(mask & (1 << i)))
            continue;
        size_blocks(&g_sets[i].f32, sizeof(float));
        size_blocks(&g_sets[i].f64, sizeof(double));
    }
    g_available = mask;
    int best = (mask & FNN_KERNELS_AVX512) ? FNN_KERNELS_AVX512
             : (mask & FNN_KERNELS_AVX2) ? FNN_KERNELS_AVX2 : FNN_KERNELS_PORTABLE;
    const int forced = id_of_name(getenv("FASTNN_KERNELS"));
    if (forced && (mask & forced))
        best = forced;
    const char *verbose = getenv("FASTNN_GEMM_VERBOSE");
    if (verbose && *verbose && *verbose != '0') {
        const fnn_blocks *b = &g_sets[set_index(best)].f32;
        fprintf(stderr, "fastnn gemm: kernels %s (available mask %d), L1 %lld L2 %lld L3 %lld, "
                        "f32 MR=%lld NR=%lld MC=%lld KC=%lld NC=%lld\n",
                g_sets[set_index(best)].name, mask, (long long)g_l1, (long long)g_l2, (long long)g_l3,
                (long long)b->mr, (long long)b->nr, (long long)b->mc, (long long)b->kc, (long long)b->nc);
    }
    g_active = &g_sets[set_index(best)];
}

const fnn_kernel_set *fnn_gemm_active(void)
{
    if (!g_active)
        fnn_gemm_init();
    return g_active;
}

const char *fnn_gemm_kernel_name(void) { return fnn_gemm_active()->name; }

int fnn_gemm_available_kernels(void)
{
    fnn_gemm_active();
    return g_available;
}

int fnn_gemm_set_kernels(const char *name)
{
    fnn_gemm_active();
    const int id = id_of_name(name);
    if (!id)
        return -2;
    if (!(g_available & id))
        return -1;
    g_active = &g_sets[set_index(id)];
    return 0;
}

void fnn_gemm_block_sizes(int is_f64, int64_t out[8])
{
    const fnn_kernel_set *ks = fnn_gemm_active();
    const fnn_blocks *b = is_f64 ? &ks->f64 : &ks->f32;
    out[0] = b->mr;
    out[1] = b->nr;
    out[2] = b->mc;
    out[3] = b->kc;
    out[4] = b->nc;
    out[5] = g_l1;
    out[6] = g_l2;
    out[7] = g_l3;
}

int fnn_gemm_selftest(void)
{
    fnn_gemm_active();
#if FNN_HAVE_X86_KERNELS
    if (g_available & FNN_KERNELS_AVX2)
        return fnn_gemm_selftest_packers();
#endif
    return -1;
}
