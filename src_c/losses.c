/* losses.c — instantiates losses.inc for float and double.
 *
 * float64: per-element terms and gradients in double with libm.
 * float32: the transcendental functions (exp for cross-entropy and
 * BCE-with-logits, log1p, log for BCE) are this file's own float versions,
 * written as branch-free arithmetic so that GCC vectorises them at the
 * baseline ISA without fast-math (libm calls block vectorisation), each
 * checked exhaustively against double libm over its domain (a few float ulps).
 * Everything else — the clamps, the gradients, the loss terms — is formed in
 * double and the loss is summed in double, so float32 losses agree with the
 * float64 reference to about 1e-7 relative. The vectorised float32 blocks
 * plug into losses.inc through FNN_BCE_FAST / FNN_BCE_LOGITS_FAST. */
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

/* log1p(e) for e in [0, 1] (BCE-with-logits' log1p(exp(−|x|))), vectorisable:
 * log(1 + e) = 2·atanh(s), s = e/(2 + e) in [0, 1/3], by the odd series
 * 2s(1 + s²/3 + … + s¹⁴/15) (truncation < 2e-9 relative; with float rounding,
 * within 2.3e-7 relative of log1p on every float in [1e-30, 1]). NaN propagates. */
FNN_INLINE float fnn_log1p_unit_f32(float e)
{
    const float s = e / (2.0f + e), z = s * s;
    float p = 1.0f / 15.0f;
    p = p * z + 1.0f / 13.0f;
    p = p * z + 1.0f / 11.0f;
    p = p * z + 1.0f / 9.0f;
    p = p * z + 1.0f / 7.0f;
    p = p * z + 1.0f / 5.0f;
    p = p * z + 1.0f / 3.0f;
    p = p * z + 1.0f;
    return 2.0f * s * p;
}

/* Index of the first element of v[lo, hi) outside [0, 1], or −1 (NaN counts as
 * inside: it propagates to the loss). Counted branch-free first, so the usual
 * all-valid block costs one vectorised pass; located only if any is bad. */
static int64_t fnn_first_outside_unit_f32(const float *FNN_RESTRICT v, int64_t lo, int64_t hi)
{
    int nbad = 0;
    for (int64_t i = lo; i < hi; i++)
        nbad |= (v[i] < 0.0f) | (v[i] > 1.0f);
    if (nbad)
        for (int64_t i = lo; i < hi; i++)
            if (v[i] < 0.0f || v[i] > 1.0f)
                return i;
    return -1;
}

/* float32 BCE-with-logits on elements [lo, hi): loss_block's contract. The
 * transcendental part, e = exp(−|x|) and log1p(e), runs in float in
 * vectorised chunks (a few float ulps); terms max(x,0) − x·y + log1p(e) and
 * the gradient (sigmoid(x) − y)·gscale are formed in double, and the terms
 * are summed in 8 fixed interleaved lanes. */
static double fnn_bce_logits_block_f32(int64_t lo, int64_t hi, float *FNN_RESTRICT grad,
                                       const float *FNN_RESTRICT x, const float *FNN_RESTRICT y,
                                       double gscale, int *code, int64_t *bad)
{
    const int64_t bad_y = fnn_first_outside_unit_f32(y, lo, hi);
    if (bad_y >= 0) {
        *code = FNN_LOSS_BAD_TARGET;
        *bad = bad_y;
        return 0.0;
    }
    enum { CHUNK = 256 };
    float e[CHUNK], l[CHUNK];
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t c0 = lo; c0 < hi; c0 += CHUNK) {
        const int m = hi - c0 < CHUNK ? (int)(hi - c0) : CHUNK;
        const float *xc = x + c0, *yc = y + c0;
        for (int i = 0; i < m; i++)
            e[i] = fnn_exp_nonpos_f32(-fabsf(xc[i]));
        for (int i = 0; i < m; i++)
            l[i] = fnn_log1p_unit_f32(e[i]);
        if (grad) {
            /* sigmoid(x) − y with q = e/(1+e) = sigmoid(−|x|):
             * (1 − y) − q for x >= 0, q − y for x < 0, chosen by x's sign bit
             * as 0/1 arithmetic so the loop vectorises; this avoids
             * 1/(1+e) − 1 losing −q to cancellation when x >> 0. */
            float *gc = grad + c0;
            for (int i = 0; i < m; i++) {
                const double neg = (double)(int32_t)(fnn_f32_bits(xc[i]) >> 31);
                const double q = (double)e[i] / (1.0 + (double)e[i]);
                gc[i] = (float)((((1.0 - neg) - (double)yc[i]) + (2.0 * neg - 1.0) * q) * gscale);
            }
        }
        /* max(x, 0) by clearing negative x (its sign mask); NaN stays NaN. */
        int i = 0;
        for (; i + 8 <= m; i += 8)
            for (int k = 0; k < 8; k++) {
                const uint32_t neg = -(fnn_f32_bits(xc[i + k]) >> 31);
                const double relu = fnn_bits_f32(~neg & fnn_f32_bits(xc[i + k]));
                acc[k] += relu - (double)xc[i + k] * (double)yc[i + k] + (double)l[i + k];
            }
        for (int k = 0; i + k < m; k++) {
            const uint32_t neg = -(fnn_f32_bits(xc[i + k]) >> 31);
            const double relu = fnn_bits_f32(~neg & fnn_f32_bits(xc[i + k]));
            acc[k] += relu - (double)xc[i + k] * (double)yc[i + k] + (double)l[i + k];
        }
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

#define FNN_BCE_LOGITS_FAST fnn_bce_logits_block_f32

/* log(x) for x in [0, 1] (or NaN), vectorisable: x = 2^k·m with m in
 * [√½, √2) read from the bits (subnormals scaled by 2^23 first),
 * log m = 2·atanh(s), s = (m−1)/(m+1) in [−0.172, 0.172], by the odd series to
 * s¹¹/11 (truncation < 5e-11) in float; k·ln 2 added in double. Checked on every
 * float in (0, 1]: within 2.1e-7 relative and 6.6e-8 absolute of log.
 * log 0 gives about −104 (callers clamp at −100); NaN propagates via x − x. */
FNN_INLINE double fnn_log_unit_f32(float x)
{
    const uint32_t b = fnn_f32_bits(x);
    const uint32_t sub = -(uint32_t)(b < 0x00800000u); /* subnormal or 0 */
    const uint32_t bs = (sub & fnn_f32_bits(x * 8388608.0f)) | (~sub & b);
    const int32_t e = (int32_t)(bs - 0x3f3504f3u) >> 23; /* 0x3f3504f3 = √½ */
    const float m = fnn_bits_f32(bs - ((uint32_t)e << 23));
    const float s = (m - 1.0f) / (m + 1.0f), z = s * s;
    float p = 1.0f / 11.0f;
    p = p * z + 1.0f / 9.0f;
    p = p * z + 1.0f / 7.0f;
    p = p * z + 1.0f / 5.0f;
    p = p * z + 1.0f / 3.0f;
    p = p * z + 1.0f;
    const float lm = 2.0f * s * p + (x - x);
    return (double)(e - (int32_t)(sub & 23u)) * 0.69314718055994530942 + (double)lm;
}

/* float32 BCE on elements [lo, hi): loss_block's contract, vectorised.
 * log x and log1p(−x) come from fnn_log_unit_f32; log1p(−x) as log w + c/w,
 * w = fl(1 − x), c = (1 − w) − x the exact rounding error of w (so small x
 * keeps its relative accuracy). The −100 clamps and PyTorch's 1e-12 floor on
 * (1−x)x are written as 0/1 arithmetic (exact), not selects, to vectorise. */
static double fnn_bce_block_f32(int64_t lo, int64_t hi, float *FNN_RESTRICT grad,
                                const float *FNN_RESTRICT x, const float *FNN_RESTRICT y,
                                double gscale, int *code, int64_t *bad)
{
    /* The first bad element wins; at one index the input is reported before the target. */
    const int64_t bad_x = fnn_first_outside_unit_f32(x, lo, hi);
    const int64_t bad_y = fnn_first_outside_unit_f32(y, lo, hi);
    if (bad_x >= 0 && (bad_y < 0 || bad_x <= bad_y)) {
        *code = FNN_LOSS_BAD_INPUT;
        *bad = bad_x;
        return 0.0;
    }
    if (bad_y >= 0) {
        *code = FNN_LOSS_BAD_TARGET;
        *bad = bad_y;
        return 0.0;
    }
    enum { CHUNK = 256 };
    double lx[CHUNK], l1x[CHUNK];
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t c0 = lo; c0 < hi; c0 += CHUNK) {
        const int m = hi - c0 < CHUNK ? (int)(hi - c0) : CHUNK;
        const float *xc = x + c0, *yc = y + c0;
        for (int i = 0; i < m; i++) {
            /* log x < −100 exactly when x < 27·2^−149 (x's bits < 27). */
            const double clamp = (double)(fnn_f32_bits(xc[i]) < 27u);
            lx[i] = fnn_log_unit_f32(xc[i]) * (1.0 - clamp) - 100.0 * clamp;
        }
        for (int i = 0; i < m; i++) {
            /* 1 − x is a multiple of 2^−24: its log is below −100 only at 0. */
            const float w = 1.0f - xc[i], c = (1.0f - w) - xc[i];
            const float zero = (float)(w == 0.0f);
            const double clamp = (double)zero;
            const double l = fnn_log_unit_f32(w) + (double)(c / (w + zero));
            l1x[i] = l * (1.0 - clamp) - 100.0 * clamp;
        }
        if (grad) {
            float *gc = grad + c0;
            for (int i = 0; i < m; i++) {
                const double xi = (double)xc[i];
                const double v = (1.0 - xi) * xi;
                /* For float x in [0, 1], (1−x)x < 1e-12 exactly when x <= fl(1e-12)
                 * (bits 0x2b8cbccc) or x = 1: decided on the bits (an ordered float
                 * compare would not vectorise under -ftrapping-math). */
                const uint32_t xb = fnn_f32_bits(xc[i]);
                const double lowv = (double)((xb <= 0x2b8cbcccu) | (xb == 0x3f800000u));
                gc[i] = (float)((xi - (double)yc[i]) / (v * (1.0 - lowv) + 1e-12 * lowv) * gscale);
            }
        }
        int i = 0;
        for (; i + 8 <= m; i += 8)
            for (int k = 0; k < 8; k++) {
                const double yi = (double)yc[i + k];
                acc[k] += (yi - 1.0) * l1x[i + k] - yi * lx[i + k];
            }
        for (int k = 0; i + k < m; k++) {
            const double yi = (double)yc[i + k];
            acc[k] += (yi - 1.0) * l1x[i + k] - yi * lx[i + k];
        }
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* Cross-entropy's reduction blocks: whole rows, about FNN_REDUCE_BLOCK elements each; the
 * block size depends only on cols, so the summation order is fixed. */
static int64_t ce_rows_per_block(int64_t cols) { return cols >= FNN_REDUCE_BLOCK ? 1 : FNN_REDUCE_BLOCK / cols; }

#define FNN_BCE_FAST fnn_bce_block_f32
#define real float
#define FNN_T(name) name##_f32
#define FNN_EXP_NONPOS fnn_exp_nonpos_f32
#include "losses.inc"
#undef real
#undef FNN_T
#undef FNN_EXP_NONPOS
#undef FNN_BCE_LOGITS_FAST
#undef FNN_BCE_FAST

#define real double
#define FNN_T(name) name##_f64
#define FNN_EXP_NONPOS exp
#include "losses.inc"

int fnn_cross_entropy_one_block(int64_t rows, int64_t cols) { return rows <= ce_rows_per_block(cols); }
