/* losses.c — instantiates losses.inc for float and double.
 *
 * Per-element loss terms and gradients are computed in double for both types
 * (one rounding of the gradient at the end): the loss is reported to the
 * user and compared across runs, so its accuracy matters more than the few
 * extra cycles per element of double transcendental functions.
 * One exception: float32 cross-entropy takes exp(x − max) in float with the
 * vectorisable fnn_exp_nonpos_f32 below (about 1 ulp), because its C·N
 * exponentials dominate a classifier's loss step; sums stay in double. */
#include <math.h>
#include <string.h>
#include "losses.h"

/* Softmax rows are processed in chunks of this many columns (a stack buffer
 * holds exp(x − max) when no gradient row is given to hold it). */
#define FNN_CE_CHUNK 256

/* How many reduction blocks are processed per parallel region: their sums
 * live on the stack (no allocation) and are added in index order after the
 * region, so the total never depends on the thread count. */
#define FNN_LOSS_BATCH 256

/* Element-wise loss kinds (private to this file). */
enum { LOSS_MSE = 0, LOSS_L1 = 1, LOSS_BCE = 2, LOSS_BCE_LOGITS = 3 };

/* exp(t) for t <= 0 (softmax's exp(x − max)) in float, written so that GCC
 * vectorises the loops that call it at the baseline ISA: no libm call, and
 * the special cases are integer bit selects (a float compare-and-select is
 * not if-converted under the default -ftrapping-math).
 * exp(t) = 2^k · exp(r), k = round(t/ln 2), r = t − k·ln 2 with ln 2 split in
 * a short high part (k·LN2_HI is exact) and a correction, |r| <= ln2/2;
 * exp(r) by its degree-7 Taylor polynomial (truncation < 6e-9 relative).
 * Checked against double exp on every float in [−87, 0]: <= 1.8 ulp.
 * t < −87 (results near the subnormal range) gives 0; NaN propagates. */
FNN_INLINE uint32_t fnn_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

FNN_INLINE float fnn_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

FNN_INLINE float fnn_exp_nonpos_f32(float t)
{
    const float LOG2E = 1.44269504088896341f, LN2_HI = 0.693359375f,
                LN2_LO = -2.12194440054690583e-4f, ROUND = 12582912.0f; /* 1.5·2^23 */
    const uint32_t tb = fnn_f32_bits(t), mag = tb & 0x7fffffffu;
    const uint32_t big = -(uint32_t)(mag > 0x42ae0000u); /* |t| > 87 (also inf, NaN) */
    const uint32_t nan = -(uint32_t)(mag > 0x7f800000u);
    const float tc = fnn_bits_f32((big & 0xc2ae0000u) | (~big & tb)); /* clamp at −87 */
    /* Adding and subtracting 1.5·2^23 rounds to the nearest integer (IEEE
     * round-to-nearest, no fast-math); floorf is a libm call without SSE4.1. */
    const float kf = (tc * LOG2E + ROUND) - ROUND;
    const float r = (tc - kf * LN2_HI) - kf * LN2_LO;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const float e = p * fnn_bits_f32((uint32_t)((int32_t)kf + 127) << 23); /* 2^k, k in [−126, 0] */
    return fnn_bits_f32((nan & tb) | (~nan & ~big & fnn_f32_bits(e)));
}

#define real float
#define FNN_T(name) name##_f32
#define FNN_EXP_NONPOS fnn_exp_nonpos_f32
#include "losses.inc"
#undef real
#undef FNN_T
#undef FNN_EXP_NONPOS

#define real double
#define FNN_T(name) name##_f64
#define FNN_EXP_NONPOS exp
#include "losses.inc"
