/* gemm.c — the GEMM driver (workspace, packing, macro-kernel, tiny path),
 * instantiated for float and double from gemm.inc. */
#include <stdlib.h>
#include <string.h>
#include "gemm_internal.h"
#include "act_scalar.h"

#if defined(_WIN32)
#include <malloc.h>
#endif

/* Products with m·n·k at or below FNN_GEMM_SMALL_WORK (tuning.h) go through a
 * direct loop with no packing and no threads (measured crossover on Zen 3
 * near 24³): packing and a team fork cost more than they save for a 4×3
 * layer of a tiny network. So do products of at most FNN_GEMM_SMALL_ROWS rows
 * (a batch-1 layer) with B rows or columns contiguous, up to
 * FNN_GEMM_SMALL_SKINNY multiply-adds: the direct loop streams B once per row
 * of C, while packing would copy all of B and the micro-kernel would waste
 * MR − m rows of work. */
/* The narrow (dot-product) path finishes rows in chunks of FNN_DOT_ROWS
 * through a stack buffer with FNN_DOT_LDS columns (≥ the widest narrow n). */
#define FNN_DOT_ROWS 48
#define FNN_DOT_LDS 16

struct fnn_workspace {
    void *b;
    size_t b_bytes;
    void *a;
    size_t a_bytes;
    void *s;
    size_t s_bytes;
    struct fnn_workspace *partner;  /* fnn_gemm_pair's second product, made on first use */
    fnn_team *team;                 /* products split over this persistent team (NULL: fork) */
};

static void *aligned_alloc64(size_t bytes)
{
#if defined(_WIN32)
    return _aligned_malloc(bytes, 64);
#else
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0)
        return NULL;
    return p;
#endif
}

static void aligned_free64(void *p)
{
#if defined(_WIN32)
    _aligned_free(p);
#else
    free(p);
#endif
}

/* Make *buf hold at least `need` bytes; contents are not preserved. */
static int ws_grow(void **buf, size_t *have, size_t need)
{
    if (*have >= need && *buf)
        return FNN_OK;
    need = (need + 4095) / 4096 * 4096;
    void *p = aligned_alloc64(need);
    if (!p)
        return FNN_ENOMEM;
    aligned_free64(*buf);
    *buf = p;
    *have = need;
    return FNN_OK;
}

fnn_workspace *fnn_workspace_create(void)
{
    fnn_workspace *ws = (fnn_workspace *)calloc(1, sizeof(fnn_workspace));
    fnn_gemm_init();
    return ws;
}

void fnn_workspace_destroy(fnn_workspace *ws)
{
    if (!ws)
        return;
    aligned_free64(ws->a);
    aligned_free64(ws->b);
    aligned_free64(ws->s);
    fnn_workspace_destroy(ws->partner);
    free(ws);
}

size_t fnn_workspace_bytes(const fnn_workspace *ws)
{
    return ws ? ws->a_bytes + ws->b_bytes + ws->s_bytes + fnn_workspace_bytes(ws->partner) : 0;
}

void fnn_workspace_set_team(fnn_workspace *ws, fnn_team *team) { ws->team = team; }

static fnn_workspace *ws_partner(fnn_workspace *ws)
{
    if (!ws->partner)
        ws->partner = fnn_workspace_create();
    return ws->partner;
}

void *fnn_workspace_scratch(fnn_workspace *ws, size_t bytes)
{
    if (ws_grow(&ws->s, &ws->s_bytes, bytes ? bytes : 64) != FNN_OK)
        return NULL;
    return ws->s;
}

/* Grow the packing buffers: one B panel, `nt` A blocks of a_each bytes. */
static int ws_reserve(fnn_workspace *ws, size_t b_bytes, size_t a_each, int nt)
{
    if (ws_grow(&ws->b, &ws->b_bytes, b_bytes) != FNN_OK)
        return FNN_ENOMEM;
    return ws_grow(&ws->a, &ws->a_bytes, a_each * (size_t)nt);
}

/* Threads form a tm × tn grid over the M and N micro-panels. Cost per thread
 * (the slowest one): its multiply-adds, counted in packed elements' worth
 * (a packed element costs about as much as 8 multiply-adds), plus the A rows
 * and B columns it packs. Ties prefer splitting M. */
static void thread_grid(int nth, int64_t mp, int64_t np, int64_t MR, int64_t NR, int64_t k,
                        int *tm, int *tn)
{
    double best = -1;
    *tm = nth;
    *tn = 1;
    for (int d = nth; d >= 1; d--) {
        if (nth % d)
            continue;
        const int e = nth / d;
        const double rows = (double)((mp + d - 1) / d * MR), cols = (double)((np + e - 1) / e * NR);
        const double cost = rows * cols * (double)k / 8.0 + (rows + cols) * (double)k;
        if (best < 0 || cost < best) {
            best = cost;
            *tm = d;
            *tn = e;
        }
    }
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

#define real float
#define FNN_T(name) name##_f32
#define FNN_ACT_FN fnn_act_f32
#define FNN_VM_ACT fnn_vm_act_f32
#define FNN_UKR_T fnn_ukr_f32
#define FNN_KS_UKR(ks) ((ks)->ukr_f32)
#define FNN_KS_BLOCKS(ks) (&(ks)->f32)
#define FNN_ILV_T fnn_interleave_f32
#define FNN_UKD_T fnn_ukr_direct_f32
#define FNN_KS_UKD(ks) ((ks)->ukr_direct_f32)
#define FNN_KS_UKW(ks) ((ks)->ukw_f32)
#define FNN_KS_UKDW(ks) ((ks)->ukdw_f32)
#define FNN_KS_ILV(ks) ((ks)->interleave_f32)
#define FNN_DOT_T fnn_dot_f32
#define FNN_KS_DOT(ks) ((ks)->dot_f32)
#include "gemm.inc"
#undef real
#undef FNN_T
#undef FNN_ACT_FN
#undef FNN_VM_ACT
#undef FNN_UKR_T
#undef FNN_KS_UKR
#undef FNN_KS_BLOCKS
#undef FNN_ILV_T
#undef FNN_KS_ILV
#undef FNN_UKD_T
#undef FNN_KS_UKD
#undef FNN_KS_UKW
#undef FNN_KS_UKDW
#undef FNN_DOT_T
#undef FNN_KS_DOT

#define real double
#define FNN_T(name) name##_f64
#define FNN_ACT_FN fnn_act_f64
#define FNN_VM_ACT fnn_vm_act_f64
#define FNN_UKR_T fnn_ukr_f64
#define FNN_KS_UKR(ks) ((ks)->ukr_f64)
#define FNN_KS_BLOCKS(ks) (&(ks)->f64)
#define FNN_ILV_T fnn_interleave_f64
#define FNN_UKD_T fnn_ukr_direct_f64
#define FNN_KS_UKD(ks) ((ks)->ukr_direct_f64)
#define FNN_KS_UKW(ks) ((ks)->ukw_f64)
#define FNN_KS_UKDW(ks) ((ks)->ukdw_f64)
#define FNN_KS_ILV(ks) ((ks)->interleave_f64)
#define FNN_DOT_T fnn_dot_f64
#define FNN_KS_DOT(ks) ((ks)->dot_f64)
#include "gemm.inc"
