/* optim.c — instantiates optim_lane.inc (each optimizer's element update, written
 * once) for float and double at each lane width, and optim.inc (tiles, step
 * functions) over them.
 *
 * The updates are memory-bound streams with a few divisions and a square root
 * per element; they run at memory speed only when every inner loop is
 * vectorised:
 *   - no option tests inside a loop: each option combination has its own tile
 *     function (always-inline bodies with constant flags), picked once per
 *     call from a table;
 *   - square roots: under the default -fmath-errno GCC keeps sqrt a scalar
 *     libm call with an errno branch, which stops the vectoriser (and the
 *     `optimize` pragma/attribute does not lift it). So Adam, RMSprop and
 *     Adagrad run their element update on GCC/clang vector extensions with
 *     the ISA's vector square root (SSE2 on x86-64, NEON on AArch64, a lane
 *     loop elsewhere), and SGD alike; the same update on scalars finishes the
 *     last few elements and is the whole path for other compilers;
 *   - width: on x86-64 every tile function also has an AVX2 twin (32-byte
 *     vectors), chosen at run time when the CPU has AVX2.
 * IEEE +, −, ×, ÷ and sqrt are correctly rounded in every path, and FMA is
 * never enabled (the AVX2 twins target "avx2" only, so nothing is contracted),
 * so all paths — and the NumPy reference — give the same bits.
 */
#include <math.h>
#include <string.h>
#include "optim_internal.h"
#include "cpu.h"

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

/* Elements per tile, FNN_OPT_TILE (tuning.h): a multiple of 16, so tiles (and
 * therefore the per-thread ranges of schedule(static)) start on 64-byte cache
 * lines of an aligned arena for both float and double, and no two threads
 * write to one cache line. */

/* Norm reductions: blocks of FNN_REDUCE_BLOCK elements, FNN_NORM_ROUND blocks
 * per parallel round (their partial results live on the stack: no allocation). */
#define FNN_NORM_ROUND 512

/* ------------------------------------------------------------ vector types and square roots */
#if defined(__GNUC__) || defined(__clang__)
#define FNN_OPT_VEC 1
typedef float fnn_v4f __attribute__((vector_size(16)));
typedef double fnn_v2d __attribute__((vector_size(16)));
typedef int32_t fnn_v4i __attribute__((vector_size(16)));
typedef int64_t fnn_v2l __attribute__((vector_size(16)));
#if defined(__x86_64__) && !defined(FASTNN_NO_AVX2)
#define FNN_OPT_AVX2 1
#endif

#if defined(__x86_64__) || (defined(__i386__) && defined(__SSE2__))
#include <immintrin.h>
FNN_ALWAYS_INLINE fnn_v4f fnn_vsqrt_v16_f32(fnn_v4f x) { return (fnn_v4f)_mm_sqrt_ps((__m128)x); }
FNN_ALWAYS_INLINE fnn_v2d fnn_vsqrt_v16_f64(fnn_v2d x) { return (fnn_v2d)_mm_sqrt_pd((__m128d)x); }
#elif defined(__aarch64__)
#include <arm_neon.h>
FNN_ALWAYS_INLINE fnn_v4f fnn_vsqrt_v16_f32(fnn_v4f x) { return (fnn_v4f)vsqrtq_f32((float32x4_t)x); }
FNN_ALWAYS_INLINE fnn_v2d fnn_vsqrt_v16_f64(fnn_v2d x) { return (fnn_v2d)vsqrtq_f64((float64x2_t)x); }
#else
FNN_ALWAYS_INLINE fnn_v4f fnn_vsqrt_v16_f32(fnn_v4f x)
{
    for (int k = 0; k < 4; k++)
        x[k] = sqrtf(x[k]);
    return x;
}
FNN_ALWAYS_INLINE fnn_v2d fnn_vsqrt_v16_f64(fnn_v2d x)
{
    for (int k = 0; k < 2; k++)
        x[k] = sqrt(x[k]);
    return x;
}
#endif

#ifdef FNN_OPT_AVX2
#define FNN_AVX2 __attribute__((target("avx2")))
typedef float fnn_v8f __attribute__((vector_size(32)));
typedef double fnn_v4d __attribute__((vector_size(32)));
typedef int32_t fnn_v8i __attribute__((vector_size(32)));
typedef int64_t fnn_v4l __attribute__((vector_size(32)));
FNN_ALWAYS_INLINE FNN_AVX2 fnn_v8f fnn_vsqrt_v32_f32(fnn_v8f x) { return (fnn_v8f)_mm256_sqrt_ps((__m256)x); }
FNN_ALWAYS_INLINE FNN_AVX2 fnn_v4d fnn_vsqrt_v32_f64(fnn_v4d x) { return (fnn_v4d)_mm256_sqrt_pd((__m256d)x); }
#endif
#endif /* GNUC */

/* ------------------------------------------------------------ run-time width */
static int fnn_opt_simd = -1; /* bytes per vector in use; -1: not detected yet */

static int fnn_opt_simd_best(void)
{
#ifdef FNN_OPT_AVX2
    if (fnn_cpu_avx2()) /* cpu.h: CPUID + XGETBV, and FASTNN_KERNELS=portable */
        return 32;
#endif
#ifdef FNN_OPT_VEC
    return 16;
#else
    return 0;
#endif
}

int fnn_optim_simd_bytes(void)
{
    int w = fnn_opt_simd;
    if (w < 0) /* every thread computes the same value: the race is benign */
        fnn_opt_simd = w = fnn_opt_simd_best();
    return w;
}

int fnn_optim_set_simd_bytes(int bytes)
{
    const int best = fnn_opt_simd_best();
    int w = bytes <= 0 ? best : bytes >= 32 ? 32 : bytes >= 16 ? 16 : 0;
    if (w > best)
        w = best;
#ifdef FNN_OPT_VEC
    if (w < 16)
        w = 16; /* the narrow tiles always contain the 16-byte vector body */
#endif
    fnn_opt_simd = w;
    return w;
}

/* ------------------------------------------------------------ instantiations */
/* Per type: optim_lane.inc's element updates for the scalar lane (the whole path
 * for other compilers, else the last few elements of a row), the 16-byte
 * vectors and the AVX2 vectors; then optim.inc's tiles and step functions. */
#define real float
#define FNN_T(name) name##_f32
#define FNN_TS(name) name##_f32_s
#define FNN_T16(name) name##_f32_v16
#define FNN_T32(name) name##_f32_v32
#define FNN_SQRT sqrtf
#define FNN_V16 fnn_v4f
#define FNN_VI16 fnn_v4i
#define FNN_VSQRT16 fnn_vsqrt_v16_f32
#define FNN_V32 fnn_v8f
#define FNN_VI32 fnn_v8i
#define FNN_VSQRT32 fnn_vsqrt_v32_f32
#include "optim_lanes.inc"
#include "optim.inc"
#undef real
#undef FNN_T
#undef FNN_TS
#undef FNN_T16
#undef FNN_T32
#undef FNN_SQRT
#undef FNN_V16
#undef FNN_VI16
#undef FNN_VSQRT16
#undef FNN_V32
#undef FNN_VI32
#undef FNN_VSQRT32

#define real double
#define FNN_T(name) name##_f64
#define FNN_TS(name) name##_f64_s
#define FNN_T16(name) name##_f64_v16
#define FNN_T32(name) name##_f64_v32
#define FNN_SQRT sqrt
#define FNN_V16 fnn_v2d
#define FNN_VI16 fnn_v2l
#define FNN_VSQRT16 fnn_vsqrt_v16_f64
#define FNN_V32 fnn_v4d
#define FNN_VI32 fnn_v4l
#define FNN_VSQRT32 fnn_vsqrt_v32_f64
#include "optim_lanes.inc"
#include "optim.inc"
