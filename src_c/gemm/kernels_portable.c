/* kernels_portable.c — plain C micro-kernels (any compiler, any CPU).
 * Small tiles so the accumulators fit the 16 baseline SSE registers when the
 * compiler vectorises the j loop; correctness reference for the SIMD ones. */
#include "gemm_internal.h"

#define PMR 4
#define PNR_F32 8
#define PNR_F64 4

#define FNN_DEFINE_PORTABLE_UKR(real, SFX, NR)                                              \
    /* lda == 0: packed A (a[p*MR + i]); otherwise row-major A (a[i*lda + p]). */            \
    static void ukr_portable_direct_##SFX(int64_t k, const real *FNN_RESTRICT a, int64_t lda, \
                                          const real *FNN_RESTRICT b, real *FNN_RESTRICT c,  \
                                          int64_t ldc, real alpha, real beta,                \
                                          const fnn_ukr_ep *ep)                              \
    {                                                                                        \
        real acc[PMR][NR] = {{0}};                                                           \
        const int64_t rs = lda ? lda : 1, cs = lda ? 1 : PMR;                                \
        for (int64_t p = 0; p < k; p++) {                                                    \
            for (int i = 0; i < PMR; i++)                                                    \
                for (int j = 0; j < NR; j++)                                                 \
                    acc[i][j] += a[i * rs + p * cs] * b[j];                                  \
            b += NR;                                                                         \
        }                                                                                    \
        const real *bias = ep ? (const real *)ep->bias : NULL;                               \
        real *z = ep ? (real *)ep->z : NULL;                                                 \
        const int act = ep ? ep->act : FNN_ACT_NONE;                                         \
        const real slope = (real)(ep ? ep->param : 0.0);                                     \
        for (int i = 0; i < PMR; i++)                                                        \
            for (int j = 0; j < NR; j++) {                                                   \
                real t = alpha * acc[i][j];                                                  \
                if (beta != (real)0)                                                         \
                    t += beta * c[i * ldc + j];                                              \
                if (bias)                                                                    \
                    t += bias[j];                                                            \
                if (z)                                                                       \
                    z[i * ep->ldz + j] = t;                                                  \
                if (act == FNN_ACT_RELU)                                                     \
                    t = t < 0 ? (real)0 : t;                                                 \
                else if (act == FNN_ACT_LEAKY_RELU)                                          \
                    t = t < 0 ? t * slope : t;                                               \
                c[i * ldc + j] = t;                                                          \
            }                                                                                \
    }                                                                                        \
    static void ukr_portable_##SFX(int64_t k, const real *FNN_RESTRICT a,                    \
                                   const real *FNN_RESTRICT b, real *FNN_RESTRICT c,         \
                                   int64_t ldc, real alpha, real beta, const fnn_ukr_ep *ep) \
    {                                                                                        \
        ukr_portable_direct_##SFX(k, a, 0, b, c, ldc, alpha, beta, ep);                      \
    }

FNN_DEFINE_PORTABLE_UKR(float, f32, PNR_F32)
FNN_DEFINE_PORTABLE_UKR(double, f64, PNR_F64)

void fnn_kernels_portable(fnn_kernel_set *ks)
{
    ks->id = FNN_KERNELS_PORTABLE;
    ks->name = "portable";
    ks->interleave_f32 = NULL;
    ks->interleave_f64 = NULL;
    ks->dot_f32 = NULL;
    ks->dot_f64 = NULL;
    /* One tile shape: the tiles are small already. */
    ks->ukw_f32[0][0] = ukr_portable_f32;
    ks->ukw_f64[0][0] = ukr_portable_f64;
    ks->ukdw_f32[0][0] = ukr_portable_direct_f32;
    ks->ukdw_f64[0][0] = ukr_portable_direct_f64;
    fnn_kernel_set_shapes(ks, (fnn_blocks){PMR, PNR_F32, 0, 0, 0, 1, 1, {PMR, 0, 0}, {PNR_F32, 0, 0}},
                          (fnn_blocks){PMR, PNR_F64, 0, 0, 0, 1, 1, {PMR, 0, 0}, {PNR_F64, 0, 0}});
}
