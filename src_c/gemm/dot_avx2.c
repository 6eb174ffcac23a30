/* dot_avx2.c — products too narrow for the micro-kernel, as blocked dot products.
 *
 * C = A·B with A's rows and B's columns contiguous along k (H·Wᵀ for a
 * row-major weight W with few output rows: the classifier head, 1024 → 10).
 * The 6×16 micro-kernel would leave 6 of its 16 lanes idle on every FMA
 * there; here every lane works: an R×C block of C keeps R·C vector
 * accumulators running along k (up to 3×4 = 12 independent FMA chains, 7
 * loads per 12 FMAs), reduced horizontally once at the end.
 *
 * Each element's sum is formed the same way whatever block it falls in:
 * lane l adds the products p ≡ l (mod VL) in order, the short tail is a
 * masked load into the same lanes, and the lanes are reduced in a fixed
 * tree. So results depend on the shape only, not on how rows are split
 * between threads. */
#include "gemm_internal.h"

#if FNN_HAVE_X86_KERNELS
#include <immintrin.h>

#define DOT_RMAX 3
#define DOT_CMAX 4

FNN_TARGET_AVX2 static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)); /* l, l+4 */
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));                                           /* +l+2 */
    s = _mm_add_ss(s, _mm_movehdup_ps(s));                                            /* +l+1 */
    return _mm_cvtss_f32(s);
}

FNN_TARGET_AVX2 static inline double hsum4(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
}

/* Lanes below `rem` on, the rest off (1 <= rem < VL). */
FNN_TARGET_AVX2 static inline __m256i tail_mask32(int64_t rem)
{
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rem), lane);
}

FNN_TARGET_AVX2 static inline __m256i tail_mask64(int64_t rem)
{
    const __m256i lane = _mm256_setr_epi64x(0, 1, 2, 3);
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(rem), lane);
}

/* One R×C block: s[i*lds + j] = Σ_p a[i*lda + p]·b[j*ldb + p]. R and C are
 * compile-time constants at every call (the switch below), so the
 * accumulators live in registers. */
#define DOT_BLOCK_BODY(VEC, VL, LOADU, MASKLOAD, MASK, FMA, ZERO, HSUM)                 \
    VEC acc[DOT_RMAX][DOT_CMAX];                                                         \
    for (int i = 0; i < R; i++)                                                          \
        for (int j = 0; j < C; j++)                                                      \
            acc[i][j] = ZERO();                                                          \
    int64_t p = 0;                                                                       \
    for (; p + VL <= k; p += VL) {                                                       \
        VEC bv[DOT_CMAX];                                                                \
        for (int j = 0; j < C; j++)                                                      \
            bv[j] = LOADU(b + j * ldb + p);                                              \
        for (int i = 0; i < R; i++) {                                                    \
            const VEC av = LOADU(a + i * lda + p);                                       \
            for (int j = 0; j < C; j++)                                                  \
                acc[i][j] = FMA(av, bv[j], acc[i][j]);                                   \
        }                                                                                \
    }                                                                                    \
    if (p < k) {                                                                         \
        const __m256i m = MASK(k - p);                                                   \
        VEC bv[DOT_CMAX];                                                                \
        for (int j = 0; j < C; j++)                                                      \
            bv[j] = MASKLOAD(b + j * ldb + p, m);                                        \
        for (int i = 0; i < R; i++) {                                                    \
            const VEC av = MASKLOAD(a + i * lda + p, m);                                 \
            for (int j = 0; j < C; j++)                                                  \
                acc[i][j] = FMA(av, bv[j], acc[i][j]);                                   \
        }                                                                                \
    }                                                                                    \
    for (int i = 0; i < R; i++)                                                          \
        for (int j = 0; j < C; j++)                                                      \
            s[i * lds + j] = HSUM(acc[i][j]);

FNN_TARGET_AVX2 __attribute__((always_inline)) static inline void
dot_block_f32(int R, int C, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb, float *s,
              int64_t lds)
{
    DOT_BLOCK_BODY(__m256, 8, _mm256_loadu_ps, _mm256_maskload_ps, tail_mask32, _mm256_fmadd_ps,
                   _mm256_setzero_ps, hsum8)
}

FNN_TARGET_AVX2 __attribute__((always_inline)) static inline void
dot_block_f64(int R, int C, int64_t k, const double *a, int64_t lda, const double *b, int64_t ldb, double *s,
              int64_t lds)
{
    DOT_BLOCK_BODY(__m256d, 4, _mm256_loadu_pd, _mm256_maskload_pd, tail_mask64, _mm256_fmadd_pd,
                   _mm256_setzero_pd, hsum4)
}
#undef DOT_BLOCK_BODY

/* Every (R, C) up to 3×4 as its own unrolled block. */
#define DOT_DISPATCH(T)                                                                         \
    switch ((R - 1) * DOT_CMAX + (C - 1)) {                                                     \
    case 0: dot_block_##T(1, 1, k, a, lda, b, ldb, s, lds); break;                              \
    case 1: dot_block_##T(1, 2, k, a, lda, b, ldb, s, lds); break;                              \
    case 2: dot_block_##T(1, 3, k, a, lda, b, ldb, s, lds); break;                              \
    case 3: dot_block_##T(1, 4, k, a, lda, b, ldb, s, lds); break;                              \
    case 4: dot_block_##T(2, 1, k, a, lda, b, ldb, s, lds); break;                              \
    case 5: dot_block_##T(2, 2, k, a, lda, b, ldb, s, lds); break;                              \
    case 6: dot_block_##T(2, 3, k, a, lda, b, ldb, s, lds); break;                              \
    case 7: dot_block_##T(2, 4, k, a, lda, b, ldb, s, lds); break;                              \
    case 8: dot_block_##T(3, 1, k, a, lda, b, ldb, s, lds); break;                              \
    case 9: dot_block_##T(3, 2, k, a, lda, b, ldb, s, lds); break;                              \
    case 10: dot_block_##T(3, 3, k, a, lda, b, ldb, s, lds); break;                             \
    default: dot_block_##T(3, 4, k, a, lda, b, ldb, s, lds); break;                             \
    }

FNN_TARGET_AVX2 static void dot_any_f32(int R, int C, int64_t k, const float *a, int64_t lda, const float *b,
                                        int64_t ldb, float *s, int64_t lds)
{
    DOT_DISPATCH(f32)
}

FNN_TARGET_AVX2 static void dot_any_f64(int R, int C, int64_t k, const double *a, int64_t lda,
                                        const double *b, int64_t ldb, double *s, int64_t lds)
{
    DOT_DISPATCH(f64)
}
#undef DOT_DISPATCH

/* s[i*lds + j] = Σ_p a[i*lda + p]·b[j*ldb + p] for i < m, j < n: 3×4 blocks
 * and their remainders. Columns outside: the C columns of B being used stay
 * in L1 while the rows of A (a few dozen, in L2) pass by. */
#define DOT_PRODUCTS(T)                                                                          \
    for (int64_t j = 0; j < n; j += DOT_CMAX) {                                                  \
        const int C = (int)(n - j < DOT_CMAX ? n - j : DOT_CMAX);                                \
        for (int64_t i = 0; i < m; i += DOT_RMAX) {                                              \
            const int R = (int)(m - i < DOT_RMAX ? m - i : DOT_RMAX);                            \
            dot_any_##T(R, C, k, a + i * lda, lda, b + j * ldb, ldb, s + i * lds + j, lds);      \
        }                                                                                        \
    }

FNN_TARGET_AVX2 void fnn_dot_avx2_f32(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                                      const float *b, int64_t ldb, float *s, int64_t lds)
{
    DOT_PRODUCTS(f32)
}

FNN_TARGET_AVX2 void fnn_dot_avx2_f64(int64_t m, int64_t n, int64_t k, const double *a, int64_t lda,
                                      const double *b, int64_t ldb, double *s, int64_t lds)
{
    DOT_PRODUCTS(f64)
}
#undef DOT_PRODUCTS

#endif
