/* vmath_libm.c — the activations as libm formulas, one element at a time (what
 * fastnn computed before vmath), and a loop over the one-element vmath call the
 * GEMM epilogue makes: same-process baselines for benchmarks/bench_activations.py.
 * Nothing in training calls these. */
#include <math.h>
#include "act_scalar.h"

#define FNN_DEFINE_LIBM_ACT(real, SFX, EXP, TANH, ERF)                                         \
    static real libm_sigmoid_##SFX(real x)                                                     \
    {                                                                                          \
        if (x >= 0) return (real)1 / ((real)1 + EXP(-x));                                      \
        real e = EXP(x);                                                                       \
        return e / ((real)1 + e);                                                              \
    }                                                                                          \
    void fnn_vm_libm_act_##SFX(int64_t n, real *y, const real *x, int act)                     \
    {                                                                                          \
        for (int64_t i = 0; i < n; i++) {                                                      \
            const real v = x[i];                                                               \
            switch (act) {                                                                     \
            case FNN_ACT_SIGMOID: y[i] = libm_sigmoid_##SFX(v); break;                         \
            case FNN_ACT_TANH: y[i] = TANH(v); break;                                          \
            case FNN_ACT_GELU: y[i] = (real)0.5 * v * ((real)1 + ERF(v * (real)FNN_INV_SQRT_2)); break; \
            case FNN_ACT_GELU_TANH: {                                                          \
                real u = (real)FNN_SQRT_2_OVER_PI * (v + (real)FNN_GELU_TANH_C * v * v * v);   \
                y[i] = v * libm_sigmoid_##SFX((real)2 * u);                                    \
                break;                                                                         \
            }                                                                                  \
            default: y[i] = v;                                                                 \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
    void fnn_vm_libm_act_backward_##SFX(int64_t n, real *dx, const real *dy, const real *x, int act) \
    {                                                                                          \
        for (int64_t i = 0; i < n; i++) {                                                      \
            const real v = x[i];                                                               \
            real g = 1;                                                                        \
            if (act == FNN_ACT_GELU) {                                                         \
                real cdf = (real)0.5 * ((real)1 + ERF(v * (real)FNN_INV_SQRT_2));              \
                real pdf = (real)FNN_INV_SQRT_2PI * EXP((real)-0.5 * v * v);                   \
                g = cdf + v * pdf;                                                             \
            } else if (act == FNN_ACT_GELU_TANH) {                                             \
                real x2 = v * v;                                                               \
                real u = (real)FNN_SQRT_2_OVER_PI * (v + (real)FNN_GELU_TANH_C * x2 * v);      \
                real s = libm_sigmoid_##SFX((real)2 * u);                                      \
                real du = (real)FNN_SQRT_2_OVER_PI * ((real)1 + (real)(3 * FNN_GELU_TANH_C) * x2); \
                g = s + (real)2 * v * s * ((real)1 - s) * du;                                  \
            }                                                                                  \
            dx[i] = dy[i] * g;                                                                 \
        }                                                                                      \
    }                                                                                          \
    void fnn_vm_one_lane_act_##SFX(int64_t n, real *y, const real *x, int act)                 \
    {                                                                                          \
        for (int64_t i = 0; i < n; i++)                                                        \
            y[i] = fnn_act_##SFX(act, 0, x[i]);                                                \
    }

FNN_DEFINE_LIBM_ACT(float, f32, expf, tanhf, erff)
FNN_DEFINE_LIBM_ACT(double, f64, exp, tanh, erf)
