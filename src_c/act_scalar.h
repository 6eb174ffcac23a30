/* act_scalar.h — one-element activation functions and their derivatives, shared by
 * the elementwise activation kernels, the GEMM's fused epilogue, dense and the plan.
 *
 * fnn_act_f32/_f64(act, param, x)          → act(x)
 * fnn_act_grad_f32/_f64(act, param, x, y)  → act'(x), given y = act(x) too:
 *   sigmoid and tanh differentiate from the saved output y (no exp again),
 *   ReLU/LeakyReLU/GELU from the input x. Pass whichever the caller kept;
 *   the other may be anything for activations that don't read it.
 *
 * The transcendental ones (sigmoid, tanh, GELU and GELU's derivatives) are
 * vmath's (vmath.h): a one-element call gives the same bits as a lane of the
 * array kernels (fnn_vm_act_*), so a loop over these and a vector call over
 * the same data agree exactly. ReLU/LeakyReLU let NaN through (as NumPy and
 * PyTorch do) rather than mapping it to 0. */
#ifndef FASTNN_ACT_SCALAR_H
#define FASTNN_ACT_SCALAR_H

#include "common.h"
#include "vmath.h"

#define FNN_DEFINE_ACT_SCALAR(real, SFX)                                          \
    FNN_INLINE real fnn_act_##SFX(int act, real param, real x)                    \
    {                                                                             \
        switch (act) {                                                            \
        case FNN_ACT_NONE: return x;                                              \
        case FNN_ACT_RELU: return x < 0 ? (real)0 : x;                            \
        case FNN_ACT_LEAKY_RELU: return x < 0 ? x * param : x;                    \
        default: return fnn_vm_act1_##SFX(act, x);                                \
        }                                                                         \
    }                                                                             \
    FNN_INLINE real fnn_act_grad_##SFX(int act, real param, real x, real y)       \
    {                                                                             \
        switch (act) {                                                            \
        case FNN_ACT_RELU: return x > 0 ? (real)1 : (real)0;                      \
        case FNN_ACT_LEAKY_RELU: return x > 0 ? (real)1 : param;                  \
        case FNN_ACT_SIGMOID: return y * ((real)1 - y);                           \
        case FNN_ACT_TANH: return (real)1 - y * y;                                \
        case FNN_ACT_GELU:                                                        \
        case FNN_ACT_GELU_TANH: return fnn_vm_grad1_##SFX(act, x);                \
        default: return (real)1;                                                  \
        }                                                                         \
    }

FNN_DEFINE_ACT_SCALAR(float, f32)
FNN_DEFINE_ACT_SCALAR(double, f64)

#endif /* FASTNN_ACT_SCALAR_H */
