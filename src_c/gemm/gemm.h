/* gemm.h — packed matrix product with a fused epilogue (BLIS structure).
 *
 *   C[m,n] = act( alpha · A[m,k] · B[k,n] + beta · C + bias[n] )
 *
 * Every matrix is addressed with BLIS-style general strides in ELEMENTS
 * (row stride rs, column stride cs; either may be negative or zero for an
 * input): element (i, j) of A is a[i*rs_a + j*cs_a]. A transpose is a swap of
 * the two strides, a leading dimension is one of them, and any 2-D NumPy view
 * maps onto them with no copy.
 *
 * beta == 0 means C is write-only (its old contents, NaN included, are never
 * read). k == 0 gives C = beta·C (+ bias, act). C must not overlap A, B, bias
 * or the pre-activation output; the caller checks.
 *
 * Results are bitwise identical for any thread count and schedule: threads
 * split the M and N loops only, and every element is computed by one thread
 * with the same K blocking.
 */
#ifndef FASTNN_GEMM_H
#define FASTNN_GEMM_H

#include "common.h"
#include "cpu.h"
#include "team.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Packing buffers (a shared B panel, one A block per thread, one scratch
 * area for callers such as the dense layer's dZ). Allocated on first use,
 * grown on demand, 64-byte aligned, reused by every later call. One workspace
 * must not be used by two calls at the same time. */
typedef struct fnn_workspace fnn_workspace;

/* Products on this workspace run their parallel parts as jobs of `team` (a plan's
 * persistent team, team.h; the caller is its thread 0) instead of forking, and
 * split from FNN_TEAM_MIN_WORK (tuning.h) multiply-adds; NULL restores forking. */
void fnn_workspace_set_team(fnn_workspace *ws, fnn_team *team);

fnn_workspace *fnn_workspace_create(void);
void fnn_workspace_destroy(fnn_workspace *ws);
/* Bytes currently held (for tests and diagnostics). */
size_t fnn_workspace_bytes(const fnn_workspace *ws);
/* A 64-byte aligned scratch area of at least `bytes`, owned by the workspace;
 * valid until the next call that uses `ws`. NULL when allocation fails. */
void *fnn_workspace_scratch(fnn_workspace *ws, size_t bytes);

/* What happens to each element of the result after the product, on the last
 * K block, while the tile is in registers or L1:
 *   z = alpha·AB + beta·C + bias[j]   (bias optional, contiguous, n entries)
 *   preact[i,j] = z                    (optional, general strides)
 *   C[i,j] = act(z)                    (fnn_act code, param = negative slope)
 * Pointers are float* or double* matching the product's type. */
typedef struct {
    int act;
    double param;
    const void *bias;
    void *preact;
    int64_t rs_preact, cs_preact;
} fnn_gemm_epilogue;

/* Status codes. */
#define FNN_OK 0
#define FNN_ENOMEM (-1)

/* C = act(alpha·A·B + beta·C + bias); ep may be NULL (plain product).
 * Returns FNN_OK, or FNN_ENOMEM when the workspace could not grow (C is then
 * untouched). */
int fnn_gemm_f32(int64_t m, int64_t n, int64_t k,
                 float *c, int64_t rs_c, int64_t cs_c,
                 const float *a, int64_t rs_a, int64_t cs_a,
                 const float *b, int64_t rs_b, int64_t cs_b,
                 double alpha, double beta, const fnn_gemm_epilogue *ep, fnn_workspace *ws);
int fnn_gemm_f64(int64_t m, int64_t n, int64_t k,
                 double *c, int64_t rs_c, int64_t cs_c,
                 const double *a, int64_t rs_a, int64_t cs_a,
                 const double *b, int64_t rs_b, int64_t cs_b,
                 double alpha, double beta, const fnn_gemm_epilogue *ep, fnn_workspace *ws);

/* One product of fnn_gemm_pair: C = A·B + beta·C (no epilogue); pointers
 * are float* or double* matching the call. */
typedef struct {
    int64_t m, n, k;
    void *c;
    int64_t rs_c, cs_c;
    const void *a;
    int64_t rs_a, cs_a;
    const void *b;
    int64_t rs_b, cs_b;
    double beta;
} fnn_gemm_operands;

/* Two independent products (a backward pass's dW and dX), each bitwise what
 * fnn_gemm(…, 1.0, beta, NULL, ws) computes. On an even team, when they are
 * big enough to fork for, they run side by side on half the threads each:
 * each half packs only its own operands and splits a smaller grid, which
 * beats two products in turn on the whole team for mid-sized layers. q packs
 * in a second workspace that ws keeps for this (fnn_workspace_bytes counts
 * it). Either may be NULL: the other runs alone on the whole team. Returns
 * FNN_OK or FNN_ENOMEM. */
int fnn_gemm_pair_f32(const fnn_gemm_operands *p, const fnn_gemm_operands *q, fnn_workspace *ws);
int fnn_gemm_pair_f64(const fnn_gemm_operands *p, const fnn_gemm_operands *q, fnn_workspace *ws);

/* How a product's work is shared out over the team (schedule.c):
 * "dynamic" (the default where OpenMP and atomics are available): threads
 * claim macro-tiles of C from a shared counter, so a thread on a free core
 * takes the tiles of one slowed by another process on its core; "static":
 * each thread owns a rectangle of C fixed in advance. Results are bitwise the
 * same either way. FASTNN_GEMM_SCHEDULE=static|dynamic sets the start-up
 * choice. fnn_gemm_set_schedule: 0 on success, -1 if this build cannot run
 * it, -2 unknown name; not thread-safe with running products. */
const char *fnn_gemm_schedule_name(void);
int fnn_gemm_set_schedule(const char *name);
/* Test hook: thread `tid` of every product's team sleeps `us` microseconds
 * before each tile it takes (us = 0 turns it off). */
void fnn_gemm_test_delay(int tid, int64_t us);
int64_t fnn_gemm_test_delays(void); /* delays taken since the last fnn_gemm_test_delay */

/* Kernel sets: FNN_KERNELS_* (cpu.h). */

/* Fills the kernel tables once, blocks sized from the tuning table; the set in
 * use is cpu.h's. Called lazily by fnn_gemm_*; idempotent. */
void fnn_gemm_init(void);
/* Name of the active set: "avx512", "avx2" or "portable". */
const char *fnn_gemm_kernel_name(void);
/* Bit mask of FNN_KERNELS_* this CPU (and this build) can run. */
int fnn_gemm_available_kernels(void);
/* Switch to a set by name: 0 on success, -1 if the CPU lacks it, -2 unknown
 * name. Not thread-safe with concurrent products (meant for tests). */
int fnn_gemm_set_kernels(const char *name);
/* Register and cache blocks of the active set for float (is_f64 = 0) or
 * double: out[0..4] = MR, NR, MC, KC, NC; out[5..7] = L1d, L2, L3 bytes. */
void fnn_gemm_block_sizes(int is_f64, int64_t out[8]);

/* The machine's float32 multiply-add ceiling, measured (fma_peak.c): run
 * `iters` steps of independent register-only FMA chains, in the active set's
 * vector width, on every thread of the team; returns the team size (time the
 * call: flops = team · iters · fnn_fma_peak_flops_per_iter()). */
int fnn_fma_peak_run(int64_t iters, float *sink);
int64_t fnn_fma_peak_flops_per_iter(void);

/* Self-test of the SIMD packing routines (all widths, odd lengths) against
 * the plain loop: number of mismatches, or -1 when the CPU cannot run them. */
int fnn_gemm_selftest(void);

#ifdef __cplusplus
}
#endif
#endif /* FASTNN_GEMM_H */
