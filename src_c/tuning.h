/* tuning.h — the one table of thresholds and block sizes every kernel reads.
 *
 * Filled once (fnn_tuning_init, lazily on the first fnn_tuning()): the defaults below, the
 * CPU's cache sizes (cpu.h), then the environment: FASTNN_GEMM_BLOCKS="mc,kc,nc",
 * FASTNN_GEMM_SCHEDULE=static|dynamic, and last FASTNN_TUNING="key=value,..." (any field by
 * its name; integers, optionally with a K/M/G binary suffix). A bad key or value warns on
 * stderr and keeps the default. The table does not change after that.
 *
 * "Bits: same" fields only move work between threads or code paths that compute every
 * element with the same operations; the others change summation order (results stay
 * deterministic for any thread count, but differ from the default's; fastnn/reference
 * mirrors only the defaults). Kernels read a field once per call, not per element. */
#ifndef FASTNN_TUNING_H
#define FASTNN_TUNING_H

#include <stdint.h>

typedef struct {
    /* Bits: same. Elementwise passes fork when n·cost reaches this: waking a sleeping team
     * costs 15–35 µs on a KVM guest, what one core streams in ~2^17 cheap elements. */
    int64_t par_min_work;
    /* Bits: change. Reductions sum fixed blocks of this many elements serially, then the
     * block sums in order: 4096 floats (16 KiB) stay in L1 and 2^13 already splits in two
     * (a size class, not a measured optimum; fastnn/reference/optim.py mirrors it). */
    int64_t reduce_block;
    /* Bits: same. Optimizer tile, a multiple of 16 so tiles (and the threads' ranges)
     * start on 64-byte lines for float and double; 2048 is a size class, not measured. */
    int64_t opt_tile;
    /* Bits: same (lanes are independent). Elements per vmath call of the transcendental
     * activations, the unit threads share out: 2048 floats of x and y fit L1 (not measured). */
    int64_t vm_block;
    /* Bits: change where K > KC (the direct loops sum k whole). A plan's products up to
     * this many multiply-adds run as direct loops (no packing, no fork) and the fused dW
     * update starts above it (FNN_DWU_MIN_WORK). 2^18 is the measured crossover (Zen 4, one
     * thread): digits' 64×128 layer at batch 32 (2^18) steps 15% faster direct, once Wᵀ is
     * built by register transposes; at 2^19 (batch 64, or 256 wide) the two tie, and
     * 100×100 at batch 200 (2^21) is 25% slower direct. */
    int64_t plan_direct_work;
    /* Bits: same. Products below this many multiply-adds run on one thread: a split saves
     * half the product, so it pays from twice the ~2^20 a fork costs. */
    int64_t gemm_par_min_work;
    /* Bits: change. Products up to this many multiply-adds skip packing (the direct loop):
     * measured crossover on Zen 3 near 24³. */
    int64_t gemm_small_work;
    /* Bits: change. Products of at most this many rows with contiguous B also take the
     * direct loop, up to gemm_small_skinny multiply-adds: it streams B once per row, where
     * packing copies all of B and the micro-kernel wastes MR − m rows. */
    int64_t gemm_small_rows;
    int64_t gemm_small_skinny;
    /* GEMM cache blocks; 0: derived per kernel from the caches below (gemm/dispatch.c).
     * MC, NC (bits: same) only regroup tiles; KC (bits: change) splits the k sums. */
    int64_t gemm_mc, gemm_kc, gemm_nc;
    /* Bits: change (through KC). Data cache bytes the blocks derive from (cpu.h detects them). */
    int64_t l1, l2, l3;
    /* Bits: same. GEMM tile schedule at start-up: 1 dynamic (threads claim tiles, so a free
     * core takes over a busy one's), 0 static (fixed rectangles). */
    int64_t gemm_schedule;
    /* Bits: same. Inside a plan's persistent team (team.h), where a split costs a job
     * post (well under a µs) instead of a fork, products split from this many
     * multiply-adds. */
    int64_t team_min_work;
    /* Bits: same. A plan call runs on a persistent team when each step has this much
     * work to split (multiply-adds of those products, optimizer elements × their cost)
     * and the whole call four times as much (opening the team costs one fork). Measured
     * on the Zen 4 VM: 64-128-10 at batch 32 (0.56 M) runs slower on a team, 256-128-10
     * (2.1 M) 1.2–1.5× faster. 0 never opens one. */
    int64_t plan_team_min_work;
    /* Bits: same. ...and at least this many multiply-adds to split per activation element
     * of a step: a split product leaves half its output in the other core's cache, which the
     * next serial pass (loss, dZ/db) fetches line by line. Measured on the Zen 4 VM: teams
     * lose below ~100 (64-100-10 at batch 200: 80; 64-128-10 at 32: 87) and win above
     * (256-128-10 at 32: 166; 784-128-10 at 64: 220; 784-256-256-10 at 128: 460). */
    int64_t team_min_intensity;
    /* Bits: same. A tiny step (every product on the direct loops) splits by hidden units
     * on a team (plan_split.inc) from this many multiply-adds a step, in a call of at
     * least 8 steps (the fork that opens the team costs about what 2-3 split steps save).
     * 0 never splits. */
    int64_t plan_split_min_work;
} fnn_tuning_t;

extern fnn_tuning_t fnn_tuned;         /* read through fnn_tuning() */
extern volatile int fnn_tuned_ready;   /* set once the table is complete */
const fnn_tuning_t *fnn_tuning_init(void);

#if defined(_MSC_VER)
static __inline const fnn_tuning_t *fnn_tuning(void)
#else
static inline const fnn_tuning_t *fnn_tuning(void)
#endif
{
    return fnn_tuned_ready ? &fnn_tuned : fnn_tuning_init();
}

/* One row of the table, for reports: the value (value_name for named values, else NULL),
 * where it came from ("default", "cpu", "FASTNN_TUNING", "FASTNN_GEMM_BLOCKS",
 * "FASTNN_GEMM_SCHEDULE"), and whether it changes results. 0, or -1 past the last row. */
typedef struct {
    const char *name;
    int64_t value;
    const char *value_name;
    const char *source;
    int changes_bits;
} fnn_tuning_row;
int fnn_tuning_row_at(int i, fnn_tuning_row *out);

/* The kernels' names for the fields (call sites keep their macros). */
#define FNN_PAR_MIN_WORK (fnn_tuning()->par_min_work)
#define FNN_REDUCE_BLOCK (fnn_tuning()->reduce_block)
#define FNN_OPT_TILE (fnn_tuning()->opt_tile)
#define FNN_VM_BLOCK (fnn_tuning()->vm_block)
#define FNN_PLAN_DIRECT_WORK ((double)fnn_tuning()->plan_direct_work)
#define FNN_GEMM_PAR_MIN_WORK ((double)fnn_tuning()->gemm_par_min_work)
#define FNN_GEMM_SMALL_WORK ((double)fnn_tuning()->gemm_small_work)
#define FNN_GEMM_SMALL_ROWS (fnn_tuning()->gemm_small_rows)
#define FNN_GEMM_SMALL_SKINNY ((double)fnn_tuning()->gemm_small_skinny)
#define FNN_TEAM_MIN_WORK ((double)fnn_tuning()->team_min_work)
#define FNN_PLAN_TEAM_MIN_WORK ((double)fnn_tuning()->plan_team_min_work)
#define FNN_TEAM_MIN_INTENSITY ((double)fnn_tuning()->team_min_intensity)
#define FNN_PLAN_SPLIT_MIN_WORK ((double)fnn_tuning()->plan_split_min_work)

#endif
