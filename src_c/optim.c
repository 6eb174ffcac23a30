/* optim.c — instantiates optim.inc for float and double.
 *
 * The updates are memory-bound streams; what keeps them at memory speed is
 * that each inner loop vectorises. Two things are needed for that:
 *   - sqrt without errno: square roots here are of non-negative state (or
 *     give NaN, as they should), and errno is never read, but GCC's default
 *     -fmath-errno keeps sqrt a scalar call with a branch. Turning it off
 *     changes no result (IEEE sqrt is correctly rounded either way).
 *   - no option tests inside the loop: each step function dispatches once per
 *     tile to a tile body specialised (through always-inline constant
 *     arguments) for its option combination.
 * FMA contraction is never enabled for these files (baseline ISA), so every
 * result is the rounded value of the formula as written, like the NumPy
 * reference. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-math-errno")
#endif
#include <math.h>
#include "optim.h"

#if defined(_MSC_VER)
#define FNN_ALWAYS_INLINE static __forceinline
#else
#define FNN_ALWAYS_INLINE static inline __attribute__((always_inline))
#endif
#if defined(__GNUC__)
#define FNN_NOINLINE static __attribute__((noinline))
#else
#define FNN_NOINLINE static
#endif

/* Elements per tile: a multiple of 16, so tiles (and therefore the per-thread
 * ranges of schedule(static)) start on 64-byte cache lines of an aligned arena
 * for both float and double, and no two threads write to one cache line. */
#define FNN_OPT_TILE 2048

/* Norm reductions: blocks of FNN_REDUCE_BLOCK elements, FNN_NORM_ROUND blocks
 * per parallel round (their partial results live on the stack: no allocation). */
#define FNN_NORM_ROUND 512

/* Weight-decay modes of Adam. */
enum { FNN_WD_NONE = 0, FNN_WD_COUPLED = 1, FNN_WD_DECOUPLED = 2 };

#define real float
#define FNN_T(name) name##_f32
#define FNN_SQRT sqrtf
#include "optim.inc"
#undef real
#undef FNN_T
#undef FNN_SQRT

#define real double
#define FNN_T(name) name##_f64
#define FNN_SQRT sqrt
#include "optim.inc"
