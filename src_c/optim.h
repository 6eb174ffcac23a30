/* optim.h — fused optimizer updates and gradient-clipping helpers over flat
 * arrays (a parameter arena, its gradient arena and state arenas of the same
 * layout). Every update is one parallel streaming pass: each element is read
 * and written by exactly one thread, so results do not depend on the thread
 * count. Hyper-parameters arrive as double; per-step constants (bias
 * corrections, 1 − β, …) are formed once in double and rounded to the array's
 * type once. The formulas are PyTorch's (shared/semantics.md), term for term.
 *
 * All arrays are contiguous with n elements; parameter and state arrays are
 * updated in place and must not overlap each other or the gradient, which is
 * never written. Shapes: every array is [n].
 */
#ifndef FASTNN_OPTIM_H
#define FASTNN_OPTIM_H
#include "common.h"

#define FNN_DECLARE_OPTIM(real, SFX)                                                         \
    /* g' = ±g (+ λθ); b ← g' (first) | μb + (1−τ)g'; g' ← g' + μb (nesterov) | b;         \
     * θ ← θ − γg'. buf may be NULL when mode is FNN_SGD_NO_MOMENTUM. */                    \
    void fnn_sgd_step_##SFX(int64_t n, real *param, real *buf, const real *grad,           \
                            double lr, double momentum, double dampening,                  \
                            double weight_decay, int mode, int nesterov, int maximize);    \
    /* Adam / AdamW (decoupled != 0) at step t ≥ 1 (already incremented);                  \
     * max_exp_avg_sq is NULL unless amsgrad. */                                            \
    void fnn_adam_step_##SFX(int64_t n, real *param, real *exp_avg, real *exp_avg_sq,      \
                             real *max_exp_avg_sq, const real *grad, int64_t step,         \
                             double lr, double beta1, double beta2, double eps,            \
                             double weight_decay, int amsgrad, int maximize,               \
                             int decoupled);                                                \
    /* RMSprop; grad_avg is NULL unless centered, momentum_buffer NULL unless μ > 0. */     \
    void fnn_rmsprop_step_##SFX(int64_t n, real *param, real *square_avg, real *grad_avg,  \
                                real *momentum_buffer, const real *grad, double lr,        \
                                double alpha, double eps, double weight_decay,             \
                                double momentum, int centered, int maximize);              \
    /* Adagrad at step t ≥ 1 (already incremented). */                                     \
    void fnn_adagrad_step_##SFX(int64_t n, real *param, real *state_sum, const real *grad, \
                                int64_t step, double lr, double lr_decay,                  \
                                double weight_decay, double eps, int maximize);            \
    /* ‖x‖_p in double: p = 2 (√Σx²), 1, +inf (max |x|) or any p > 0 ((Σ|x|^p)^(1/p)).    \
     * Summed in fixed blocks added in index order: independent of the thread count.     \
     * NaN anywhere gives NaN. */                                                          \
    double fnn_grad_norm_##SFX(int64_t n, const real *x, double norm_type);                \
    /* x ← x · factor. */                                                                   \
    void fnn_scale_##SFX(int64_t n, real *x, double factor);                               \
    /* x ← min(max(x, low), high); NaN stays NaN. */                                        \
    void fnn_clamp_##SFX(int64_t n, real *x, double low, double high);                     \
    /* 1 if no element is NaN or ±inf, else 0. */                                           \
    int fnn_all_finite_##SFX(int64_t n, const real *x);

/* Vector width (bytes) the update kernels use: 32 (AVX2), 16 (SSE2/NEON/generic
 * vectors) or 0 (scalar build). Chosen from the CPU at first use;
 * fnn_optim_set_simd_bytes forces a narrower width (≤ 0: back to the best) and
 * returns the width now in use. Every width gives the same bits; the switch
 * exists so tests can check exactly that. */
int fnn_optim_simd_bytes(void);
int fnn_optim_set_simd_bytes(int bytes);

FNN_DECLARE_OPTIM(float, f32)
FNN_DECLARE_OPTIM(double, f64)

#endif
