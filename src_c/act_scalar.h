/* act_scalar.h — scalar activation functions and their derivatives, shared by
 * the elementwise activation kernels and the GEMM's fused epilogue/prologue.
 *
 * fnn_act_f32/_f64(act, param, x)          → act(x)
 * fnn_act_grad_f32/_f64(act, param, x, y)  → act'(x), given y = act(x) too:
 *   sigmoid and tanh differentiate from the saved output y (no exp again),
 *   ReLU/LeakyReLU/GELU from the input x. Pass whichever the caller kept;
 *   the other may be anything for activations that don't read it.
 *
 * No fast-math: these are the reference numerics (erf, tanh, exp from libm). */
#ifndef FASTNN_ACT_SCALAR_H
#define FASTNN_ACT_SCALAR_H

#include <math.h>
#include "common.h"

#define FNN_SQRT_2_OVER_PI 0.7978845608028654
#define FNN_INV_SQRT_2 0.7071067811865476
#define FNN_INV_SQRT_2PI 0.3989422804014327
#define FNN_GELU_TANH_C 0.044715

/* Generates the pair for one floating type. ReLU/LeakyReLU let NaN through
 * (as NumPy and PyTorch do) rather than mapping it to 0. Sigmoid is computed so that exp
 * never overflows: for x < 0, e^x / (1 + e^x). The tanh-GELU is written with
 * the identity 0.5(1 + tanh u) = σ(2u), which avoids cancellation for x ≪ 0. */
#define FNN_DEFINE_ACT_SCALAR(real, SFX, EXP, TANH, ERF)                          \
    FNN_INLINE real fnn_sigmoid_##SFX(real x)                                     \
    {                                                                             \
        if (x >= 0) return (real)1 / ((real)1 + EXP(-x));                         \
        real e = EXP(x);                                                          \
        return e / ((real)1 + e);                                                 \
    }                                                                             \
    FNN_INLINE real fnn_act_##SFX(int act, real param, real x)                    \
    {                                                                             \
        switch (act) {                                                            \
        case FNN_ACT_RELU: return x < 0 ? (real)0 : x;                            \
        case FNN_ACT_LEAKY_RELU: return x < 0 ? x * param : x;                    \
        case FNN_ACT_SIGMOID: return fnn_sigmoid_##SFX(x);                        \
        case FNN_ACT_TANH: return TANH(x);                                        \
        case FNN_ACT_GELU: return (real)0.5 * x * ((real)1 + ERF(x * (real)FNN_INV_SQRT_2)); \
        case FNN_ACT_GELU_TANH: { /* 0.5x(1 + tanh u) = x·σ(2u): no cancellation for x ≪ 0 */ \
            real u = (real)FNN_SQRT_2_OVER_PI * (x + (real)FNN_GELU_TANH_C * x * x * x); \
            return x * fnn_sigmoid_##SFX((real)2 * u);                            \
        }                                                                         \
        default: return x;                                                        \
        }                                                                         \
    }                                                                             \
    FNN_INLINE real fnn_act_grad_##SFX(int act, real param, real x, real y)       \
    {                                                                             \
        switch (act) {                                                            \
        case FNN_ACT_RELU: return x > 0 ? (real)1 : (real)0;                      \
        case FNN_ACT_LEAKY_RELU: return x > 0 ? (real)1 : param;                  \
        case FNN_ACT_SIGMOID: return y * ((real)1 - y);                           \
        case FNN_ACT_TANH: return (real)1 - y * y;                                \
        case FNN_ACT_GELU: {                                                      \
            real cdf = (real)0.5 * ((real)1 + ERF(x * (real)FNN_INV_SQRT_2));     \
            real pdf = (real)FNN_INV_SQRT_2PI * EXP((real)-0.5 * x * x);          \
            return cdf + x * pdf;                                                 \
        }                                                                         \
        case FNN_ACT_GELU_TANH: { /* σ(2u) + 2x·σ(2u)(1 − σ(2u))·u' */              \
            real x2 = x * x;                                                      \
            real u = (real)FNN_SQRT_2_OVER_PI * (x + (real)FNN_GELU_TANH_C * x2 * x); \
            real s = fnn_sigmoid_##SFX((real)2 * u);                              \
            real du = (real)FNN_SQRT_2_OVER_PI * ((real)1 + (real)(3 * FNN_GELU_TANH_C) * x2); \
            return s + (real)2 * x * s * ((real)1 - s) * du;                      \
        }                                                                         \
        default: return (real)1;                                                  \
        }                                                                         \
    }

FNN_DEFINE_ACT_SCALAR(float, f32, expf, tanhf, erff)
FNN_DEFINE_ACT_SCALAR(double, f64, exp, tanh, erf)

#endif /* FASTNN_ACT_SCALAR_H */
