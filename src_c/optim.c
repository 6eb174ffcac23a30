/* optim.c — instantiates optim.inc for float and double.
 *
 * The updates are memory-bound streams; what keeps them at memory speed is
 * that each inner loop is vectorised:
 *   - no option tests inside a loop: each step function dispatches once per
 *     tile to a body specialised (through always-inline constant arguments)
 *     for its option combination;
 *   - square roots: under the default -fmath-errno GCC keeps sqrt a scalar
 *     libm call with an errno branch, which stops the vectoriser (and the
 *     `optimize` pragma/attribute does not lift it). The updates that take a
 *     square root (Adam, RMSprop, Adagrad) are therefore written with GCC/clang
 *     vector extensions and the ISA's vector square root (SSE2 on x86-64,
 *     NEON on AArch64, a lane loop elsewhere); the scalar body finishes the
 *     last few elements and is the whole path for other compilers. IEEE sqrt,
 *     +, −, ×, ÷ are correctly rounded in every path, and no FMA contraction
 *     is enabled for these files (baseline ISA), so all paths give the same
 *     bits as the NumPy reference.
 */
#include <math.h>
#include <string.h>
#include "optim.h"

#if defined(__GNUC__) || defined(__clang__)
#define FNN_OPT_VEC 1
#if defined(__x86_64__) || defined(_M_X64) || (defined(__i386__) && defined(__SSE2__))
#include <emmintrin.h>
#define FNN_VSQRT_F32(x) ((fnn_v4f)_mm_sqrt_ps((__m128)(x)))
#define FNN_VSQRT_F64(x) ((fnn_v2d)_mm_sqrt_pd((__m128d)(x)))
#elif defined(__aarch64__)
#include <arm_neon.h>
#define FNN_VSQRT_F32(x) ((fnn_v4f)vsqrtq_f32((float32x4_t)(x)))
#define FNN_VSQRT_F64(x) ((fnn_v2d)vsqrtq_f64((float64x2_t)(x)))
#else
#define FNN_VSQRT_F32(x) fnn_vsqrt_lanes_f32(x)
#define FNN_VSQRT_F64(x) fnn_vsqrt_lanes_f64(x)
#endif
/* 16-byte vectors: 4 floats / 2 doubles, and same-size integer masks. */
typedef float fnn_v4f __attribute__((vector_size(16)));
typedef double fnn_v2d __attribute__((vector_size(16)));
typedef int32_t fnn_v4i __attribute__((vector_size(16)));
typedef int64_t fnn_v2l __attribute__((vector_size(16)));
static inline fnn_v4f fnn_vsqrt_lanes_f32(fnn_v4f x)
{
    for (int k = 0; k < 4; k++)
        x[k] = sqrtf(x[k]);
    return x;
}
static inline fnn_v2d fnn_vsqrt_lanes_f64(fnn_v2d x)
{
    for (int k = 0; k < 2; k++)
        x[k] = sqrt(x[k]);
    return x;
}
#endif

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
#define FNN_V fnn_v4f
#define FNN_VI fnn_v4i
#define FNN_VSQRT FNN_VSQRT_F32
#include "optim.inc"
#undef real
#undef FNN_T
#undef FNN_SQRT
#undef FNN_V
#undef FNN_VI
#undef FNN_VSQRT

#define real double
#define FNN_T(name) name##_f64
#define FNN_SQRT sqrt
#define FNN_V fnn_v2d
#define FNN_VI fnn_v2l
#define FNN_VSQRT FNN_VSQRT_F64
#include "optim.inc"
