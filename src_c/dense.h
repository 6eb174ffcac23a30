/* dense.h — the fully connected layer, forward and backward side by side.
 *
 * Shapes: x (batch, in), W (out, in) as PyTorch, b (out), y and z (batch, out).
 *   forward:  z = x·Wᵀ + b,  y = act(z)                 (one GEMM with epilogue)
 *   backward: dZ = dY ⊙ act'(saved)                       (saved: y for relu,
 *             leaky_relu (slope >= 0), sigmoid, tanh; z for gelu, gelu_tanh)
 *             dX  = dZ·W          (overwritten)
 *             dW += dZᵀ·X         (accumulated: a GEMM with beta = 1)
 *             db += Σ_rows dZ     (accumulated, summed in double, fixed order)
 * Matrices other than dW, db and dX take general element strides (rs, cs).
 * dW is (out, in) row-major, db contiguous, dX (batch, in) row-major. Any of
 * dX, dW, db may be NULL (not wanted). Returns FNN_OK or FNN_ENOMEM. */
#ifndef FASTNN_DENSE_H
#define FASTNN_DENSE_H
#include "common.h"
#include "gemm/gemm.h"

#define FNN_DECLARE_DENSE(real, SFX)                                                           \
    int fnn_dense_forward_##SFX(int64_t batch, int64_t in, int64_t out,                        \
                                real *y, int64_t rs_y, int64_t cs_y,                           \
                                real *z, int64_t rs_z, int64_t cs_z,                           \
                                const real *x, int64_t rs_x, int64_t cs_x,                     \
                                const real *w, int64_t rs_w, int64_t cs_w,                     \
                                const real *bias, int act, double param, fnn_workspace *ws);   \
    int fnn_dense_backward_##SFX(int64_t batch, int64_t in, int64_t out,                       \
                                 real *dx, real *dw, real *db,                                 \
                                 const real *dy, int64_t rs_dy, int64_t cs_dy,                 \
                                 const real *x, int64_t rs_x, int64_t cs_x,                    \
                                 const real *w, int64_t rs_w, int64_t cs_w,                    \
                                 const real *saved, int64_t rs_s, int64_t cs_s,                \
                                 int act, double param, fnn_workspace *ws);

FNN_DECLARE_DENSE(float, f32)
FNN_DECLARE_DENSE(double, f64)

#endif
