/* common.h — types, macros and threading helpers shared by every fastnn kernel.
 *
 * Conventions (every kernel follows them):
 *   - names: fnn_<op>_<forward|backward|…>_<f32|f64>;
 *   - arguments: sizes first (int64_t), then pointers each followed by its
 *     stride(s)/leading dimension, outputs before inputs, then options;
 *   - backward kernels ACCUMULATE into parameter gradients (dW, db) and
 *     OVERWRITE input gradients (dX), as PyTorch does;
 *   - no kernel allocates memory in its hot path, calls Python, or touches
 *     NumPy; all validation happens in Cython/Python before the call;
 *   - every reduction has a fixed order that does not depend on the thread
 *     count (see FNN_REDUCE_BLOCK), so results are bitwise reproducible.
 *
 * Type-generic sources: a kernel file X.c defines `real` and FNN_T(name) and
 * includes X.inc twice (float → _f32, double → _f64).
 */
#ifndef FASTNN_COMMON_H
#define FASTNN_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(_MSC_VER)
#define FNN_RESTRICT __restrict
#define FNN_INLINE static __inline
#else
#define FNN_RESTRICT restrict
#define FNN_INLINE static inline
#endif

#ifdef _OPENMP
#include <omp.h>
#define FNN_PRAGMA(x) _Pragma(#x)
#else
#define FNN_PRAGMA(x)
#endif

/* `#pragma omp parallel for` over n elements costing `cost` cheap
 * element-passes each, forked only when that work pays for the fork. Waking a
 * sleeping team (OMP_WAIT_POLICY=PASSIVE, see fastnn/__init__.py) and joining
 * it costs 15–35 µs on a KVM guest, a few µs on bare metal; one core streams
 * a cheap pass at ~0.3 ns an element, so a split saves that only from ~2^17
 * elements on. exp/log/erf/tanh cost ~10–30 ns an element: those passes fork
 * from a few thousand. */
#define FNN_PAR_FOR_COST(n, cost)                                                     \
    FNN_PRAGMA(omp parallel for schedule(static) num_threads(fnn_get_num_threads()) \
                   if ((n) * (int64_t)(cost) >= FNN_PAR_MIN_WORK))
#define FNN_PAR_FOR(n) FNN_PAR_FOR_COST(n, 1)

/* FNN_PAR_MIN_WORK and FNN_REDUCE_BLOCK below are fields of the tuning table. */
#include "tuning.h"
/* Per-element costs, in cheap passes: a few divisions, square roots or a
 * hash (optimizer updates, dropout); a transcendental function. */
#define FNN_COST_ARITH 4
#define FNN_COST_TRANSCENDENTAL 32

/* Reductions (loss sums, bias gradients) are split into blocks of
 * FNN_REDUCE_BLOCK elements (tuning.h); each block is summed serially and the
 * block sums are added in index order, so the result is the same for any
 * thread count. */

/* Activation, reduction, loss, optimizer and plan status codes. */
#include "fastnn_enums.h"

/* Per-element cost of an activation or its derivative (FNN_PAR_FOR_COST). */
FNN_INLINE int64_t fnn_act_cost(int act)
{
    return act == FNN_ACT_NONE || act == FNN_ACT_RELU || act == FNN_ACT_LEAKY_RELU ? 1 : FNN_COST_TRANSCENDENTAL;
}

/* Threads (threads.c). fnn_get_num_threads() is the team size every parallel
 * region uses; it defaults to omp_get_max_threads() (OMP_NUM_THREADS, else the
 * cores) and is 1 in a serial build. */
int fnn_get_num_threads(void);
void fnn_set_num_threads(int n);
int fnn_has_openmp(void);
/* Sleep the calling thread (the test hooks that hold a thread back). */
void fnn_sleep_us(int64_t us);

#endif /* FASTNN_COMMON_H */
