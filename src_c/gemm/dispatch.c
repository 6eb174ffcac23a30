/* dispatch.c — the GEMM's kernel tables: one per kernel set, its cache blocks sized from
 * the tuning table (tuning.h: the CPU's cache sizes, or FASTNN_GEMM_BLOCKS / FASTNN_TUNING's
 * gemm_mc, gemm_kc, gemm_nc), and the one in use is the set fnn_cpu_kernels() names (cpu.h
 * detects the CPU and reads FASTNN_KERNELS). FASTNN_GEMM_VERBOSE=1 prints the choice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gemm_internal.h"
#include "tuning.h"

static fnn_kernel_set g_sets[3];   /* portable, avx2, avx512 (index by bit position) */
static volatile int g_ready = 0;   /* g_sets filled (published last) */

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Cache blocks for one kernel and element size:
 *   KC: a KC×NR micro-panel of B stays in half of L1 while the ir loop
 *       streams MR×KC micro-panels of A past it;
 *   MC: the MC×KC block of A takes about half of L2;
 *   NC: the KC×NC panel of B takes a quarter of L3 (shared by the threads).
 * A block set in the tuning table wins (MC, NC rounded up to whole micro-panels). */
static void size_blocks(fnn_blocks *bl, size_t elt, const fnn_tuning_t *t)
{
    int64_t kc = (t->l1 / 2) / (bl->nr * (int64_t)elt);
    kc = clamp64(kc / 8 * 8, 64, 512);
    if (t->gemm_kc > 0)
        kc = t->gemm_kc;
    int64_t mc = (t->l2 / 2) / (kc * (int64_t)elt);
    mc = clamp64(mc / bl->mr * bl->mr, bl->mr, 4096 / bl->mr * bl->mr);
    int64_t nc = (t->l3 / 4) / (kc * (int64_t)elt);
    nc = clamp64(nc / bl->nr * bl->nr, bl->nr, 8192 / bl->nr * bl->nr);
    if (t->gemm_mc > 0)
        mc = (t->gemm_mc + bl->mr - 1) / bl->mr * bl->mr;
    if (t->gemm_nc > 0)
        nc = (t->gemm_nc + bl->nr - 1) / bl->nr * bl->nr;
    bl->mc = mc;
    bl->kc = kc;
    bl->nc = nc;
}

void fnn_kernel_set_shapes(fnn_kernel_set *ks, fnn_blocks f32, fnn_blocks f64)
{
    ks->f32 = f32;
    ks->f64 = f64;
    ks->ukr_f32 = ks->ukw_f32[0][0];
    ks->ukr_f64 = ks->ukw_f64[0][0];
    ks->ukr_direct_f32 = ks->ukdw_f32[0][0];
    ks->ukr_direct_f64 = ks->ukdw_f64[0][0];
}

static int set_index(int id) { return id == FNN_KERNELS_AVX512 ? 2 : id == FNN_KERNELS_AVX2 ? 1 : 0; }

void fnn_gemm_init(void)
{
    if (g_ready)
        return;
    /* Two threads racing here compute the same values; g_ready is published last. */
    const fnn_tuning_t *t = fnn_tuning();
    const int mask = fnn_cpu_available();
    fnn_kernels_portable(&g_sets[0]);
#if FNN_HAVE_X86_KERNELS
    fnn_kernels_avx2(&g_sets[1]);
    fnn_kernels_avx512(&g_sets[2]);
#endif
    for (int i = 0; i < 3; i++) {
        if (!(mask & (1 << i)))
            continue;
        size_blocks(&g_sets[i].f32, sizeof(float), t);
        size_blocks(&g_sets[i].f64, sizeof(double), t);
    }
    g_ready = 1;
    const char *verbose = getenv("FASTNN_GEMM_VERBOSE");
    if (verbose && *verbose && *verbose != '0') {
        const fnn_kernel_set *ks = fnn_gemm_active();
        const fnn_blocks *b = &ks->f32;
        fprintf(stderr, "fastnn gemm: kernels %s (available mask %d), L1 %lld L2 %lld L3 %lld, "
                        "f32 MR=%lld NR=%lld MC=%lld KC=%lld NC=%lld\n",
                ks->name, mask, (long long)t->l1, (long long)t->l2, (long long)t->l3,
                (long long)b->mr, (long long)b->nr, (long long)b->mc, (long long)b->kc, (long long)b->nc);
    }
}

const fnn_kernel_set *fnn_gemm_active(void)
{
    if (!g_ready)
        fnn_gemm_init();
    return &g_sets[set_index(fnn_cpu_kernels())];
}

const char *fnn_gemm_kernel_name(void) { return fnn_gemm_active()->name; }

int fnn_gemm_available_kernels(void) { return fnn_cpu_available(); }

int fnn_gemm_set_kernels(const char *name)
{
    fnn_gemm_init();
    return fnn_cpu_set_kernels(fnn_cpu_kernels_of_name(name));
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
    const fnn_tuning_t *t = fnn_tuning();
    out[5] = t->l1;
    out[6] = t->l2;
    out[7] = t->l3;
}

int fnn_gemm_selftest(void)
{
#if FNN_HAVE_X86_KERNELS
    if (fnn_cpu_available() & FNN_KERNELS_AVX2)
        return fnn_gemm_selftest_packers();
#endif
    return -1;
}
