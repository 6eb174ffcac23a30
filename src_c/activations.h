/* activations.h — elementwise activations and row-wise softmax, forward and
 * backward side by side. Arrays are contiguous; shapes in the comments. */
#ifndef FASTNN_ACTIVATIONS_H
#define FASTNN_ACTIVATIONS_H
#include "common.h"

#define FNN_DECLARE_ACTIVATIONS(real, SFX)                                              \
    /* y[n] = act(x[n]); y may alias x. */                                              \
    void fnn_act_forward_##SFX(int64_t n, real *y, const real *x, int act, double param); \
    /* dx[n] = dy[n] · act'(x) — x is the forward input, y its output (either may be    \
     * NULL when act does not read it: sigmoid/tanh read y, the others x).              \
     * dx may alias dy. */                                                              \
    void fnn_act_backward_##SFX(int64_t n, real *dx, const real *dy, const real *x,     \
                                const real *y, int act, double param);                  \
    /* y[rows, cols] = softmax of each row of x (stabilised by the row max). */         \
    void fnn_softmax_forward_##SFX(int64_t rows, int64_t cols, real *y, const real *x); \
    /* dx = y ⊙ (dy − Σ_j dy_j·y_j) per row; dx may alias dy. */                        \
    void fnn_softmax_backward_##SFX(int64_t rows, int64_t cols, real *dx, const real *dy, \
                                    const real *y);

FNN_DECLARE_ACTIVATIONS(float, f32)
FNN_DECLARE_ACTIVATIONS(double, f64)

#endif
