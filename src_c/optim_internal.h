/* optim_internal.h — the optimizer updates as prepared tile functions, for the
 * kernels that apply an update to data they already hold (the plan's fused
 * dW update, plan_dw_update.c) as well as the step functions of optim.h.
 *
 * Each element update is written once (optim_lane.inc); a tile function runs it
 * over a rows × [lo, hi) block for one option combination and vector width:
 * element (r, j) is p[r·ldp + j] with its state s0..s2[r·ldp + j] and gradient
 * g[r·ldg + j]. A contiguous range is one row. Every tile function, width and
 * split gives the bits of the step functions (elementwise, no FMA). */
#ifndef FASTNN_OPTIM_INTERNAL_H
#define FASTNN_OPTIM_INTERNAL_H
#include "optim.h"

/* Per-step constants, formed once from the double options and rounded once to
 * the array's type, as the step functions form them. kind is FNN_PLAN_SGD…
 * (fastnn_enums.h), code the option combination (set by the prepare functions). */
#define FNN_DECLARE_OPTIM_TILES(real, SFX)                                                    \
    typedef struct {                                                                         \
        int kind, code;                                                                      \
        int use_wd, mode, nesterov;   /* SGD (use_wd: also RMSprop, Adagrad) */             \
        int wd_mode, amsgrad;         /* Adam: FNN_WD_NONE / COUPLED / DECOUPLED */         \
        int centered, use_mom;        /* RMSprop */                                         \
        real sign;                    /* −1 under maximize, else +1 */                       \
        real lr;                      /* γ; Adam's γ/bc1; Adagrad's γ/(1 + (t−1)·decay) */  \
        real mu, keep, wd;            /* μ, 1 − τ, λ */                                      \
        real c1, b2, c2, bc2s, eps, decay; /* Adam: 1−β1, β2, 1−β2, √bc2, ε, 1 − γλ */      \
        real alpha, c;                /* RMSprop: α, 1 − α (ε in eps, μ in mu) */           \
    } fnn_opt_consts_##SFX;                                                                  \
    typedef void (*fnn_opt_tile_##SFX)(int64_t rows, int64_t lo, int64_t hi, real *p,         \
                                       int64_t ldp, const real *g, int64_t ldg, real *s0,    \
                                       real *s1, real *s2, const fnn_opt_consts_##SFX *k);   \
    void fnn_sgd_prepare_##SFX(fnn_opt_consts_##SFX *k, double lr, double momentum,          \
                               double dampening, double weight_decay, int mode,              \
                               int nesterov, int maximize);                                  \
    void fnn_adam_prepare_##SFX(fnn_opt_consts_##SFX *k, int64_t step, double lr,            \
                                double beta1, double beta2, double eps,                      \
                                double weight_decay, int amsgrad, int maximize,              \
                                int decoupled);                                              \
    void fnn_rmsprop_prepare_##SFX(fnn_opt_consts_##SFX *k, double lr, double alpha,         \
                                   double eps, double weight_decay, double momentum,         \
                                   int centered, int maximize);                              \
    void fnn_adagrad_prepare_##SFX(fnn_opt_consts_##SFX *k, int64_t step, double lr,         \
                                   double lr_decay, double weight_decay, double eps,         \
                                   int maximize);                                            \
    /* The tile function for k at the vector width in use (fnn_optim_simd_bytes). */         \
    fnn_opt_tile_##SFX fnn_opt_tile_fn_##SFX(const fnn_opt_consts_##SFX *k);                   \
    /* The update over [0, n) as the step functions run it (their second half); state      \
     * arrays in the step function's order, NULL where unused. */                           \
    void fnn_opt_apply_##SFX(const fnn_opt_consts_##SFX *k, int64_t n, real *param,          \
                             const real *grad, real *s0, real *s1, real *s2);

FNN_DECLARE_OPTIM_TILES(float, f32)
FNN_DECLARE_OPTIM_TILES(double, f64)

/* Weight-decay modes of Adam. */
enum { FNN_WD_NONE = 0, FNN_WD_COUPLED = 1, FNN_WD_DECOUPLED = 2 };

#endif
