/* layers.h — dropout, batch normalisation and layer normalisation, forward and
 * backward side by side. Arrays are contiguous (row-major); shapes in the
 * comments. Every reduction runs in double, in an order fixed by the data
 * layout alone, so results are bitwise identical for any thread count. */
#ifndef FASTNN_LAYERS_H
#define FASTNN_LAYERS_H
#include "common.h"

/* The counter-based generator dropout draws from: element i of a call with
 * `seed` is kept when u(seed, i) >= p, where
 *     key = mix64(seed),  u(seed, i) = (mix64(key + (i+1)·φ) >> 11) · 2⁻⁵³
 * with mix64 the splitmix64 finaliser and φ = 0x9E3779B97F4A7C15. A pure
 * function of (seed, i): independent of the thread count, and reproducible in
 * NumPy with uint64 arithmetic (fastnn.reference.dropout). */
#define FNN_GOLDEN_GAMMA 0x9E3779B97F4A7C15ULL

FNN_INLINE uint64_t fnn_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

#define FNN_DECLARE_LAYERS(real, SFX)                                                   \
    /* y[n] = keep_i ? x[i]/(1−p) : 0 (p == 1: all zeros); mask[n] (may be NULL)       \
     * receives keep_i as 0/1. y may alias x. */                                        \
    void fnn_dropout_forward_##SFX(int64_t n, real *y, uint8_t *mask, const real *x,    \
                                   double p, uint64_t seed);                            \
    /* dx[n] = mask[i] ? dy[i]/(1−p) : 0; dx may alias dy. */                           \
    void fnn_dropout_backward_##SFX(int64_t n, real *dx, const real *dy,                \
                                    const uint8_t *mask, double p);                     \
    /* y[n, c] = (x − μ_j)·invstd_j·w_j + b_j per feature j.                            \
     * training != 0 or running_mean == NULL: μ, σ² are the batch mean and biased       \
     * variance (n >= 2 when training); running stats (if given and training) become    \
     * (1−m)·running + m·batch, with the unbiased variance σ²·n/(n−1).                  \
     * Otherwise μ, σ² are running_mean, running_var.                                   \
     * save_mean[c], save_invstd[c] (may be NULL) receive μ and 1/√(σ² + eps).          \
     * weight, bias may be NULL (γ = 1, β = 0). */                                      \
    void fnn_batch_norm_forward_##SFX(int64_t n, int64_t c, real *y, real *save_mean,   \
                                      real *save_invstd, real *running_mean,            \
                                      real *running_var, const real *x,                 \
                                      const real *weight, const real *bias,             \
                                      int training, double momentum, double eps);       \
    /* Gradients of the forward above, from its saved μ and invstd.                     \
     * training != 0 (batch statistics): dx = γ·invstd/n·(n·dy − Σdy − x̂·Σ dy·x̂)       \
     * else (fixed statistics):          dx = γ·invstd·dy                              \
     * and in both cases dγ += Σ_rows dy·x̂, dβ += Σ_rows dy, x̂ = (x − μ)·invstd.       \
     * Any of dx, grad_weight, grad_bias may be NULL (not wanted). */                  \
    void fnn_batch_norm_backward_##SFX(int64_t n, int64_t c, real *dx, real *grad_weight, \
                                       real *grad_bias, const real *dy, const real *x,  \
                                       const real *weight, const real *save_mean,       \
                                       const real *save_invstd, int training);          \
    /* y[rows, cols] = (x − μ_r)·invstd_r·w + b, statistics over each row (biased       \
     * variance); save_mean[rows], save_invstd[rows] may be NULL; weight, bias NULL    \
     * mean γ = 1, β = 0. */                                                            \
    void fnn_layer_norm_forward_##SFX(int64_t rows, int64_t cols, real *y, real *save_mean, \
                                      real *save_invstd, const real *x,                 \
                                      const real *weight, const real *bias, double eps); \
    /* Gradients of y = x̂·γ + β, x̂ = (x − μ)·invstd, per row:                          \
     * g = dy·γ, dx = invstd/cols·(cols·g − Σg − x̂·Σ g·x̂);                             \
     * dγ += Σ_rows dy·x̂, dβ += Σ_rows dy. Any output may be NULL (not wanted). */      \
    void fnn_layer_norm_backward_##SFX(int64_t rows, int64_t cols, real *dx,            \
                                       real *grad_weight, real *grad_bias, const real *dy, \
                                       const real *x, const real *weight,               \
                                       const real *save_mean, const real *save_invstd);

FNN_DECLARE_LAYERS(float, f32)
FNN_DECLARE_LAYERS(double, f64)

#endif
