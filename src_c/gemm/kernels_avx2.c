/* kernels_avx2.c — AVX2+FMA micro-kernels: 6×16 floats, 6×8 doubles
 * (12 ymm accumulators, 2 B loads and 6 broadcasts per k), with 4- and 2-row
 * and one-vector-wide tiles for ragged last panels. */
#include "gemm_internal.h"

#if FNN_HAVE_X86_KERNELS
#include <immintrin.h>

#define UKR_ATTR FNN_TARGET_AVX2
#define UKR_M0 6
#define UKR_M1 4
#define UKR_M2 2

/* float: 16 and 8 columns */
#define real float
#include "ukr_vec256.inc"
#define K_F32_16(m) UKR_CAT(ukr_avx2_f32_n16_m, m)
#define K_F32_8(m) UKR_CAT(ukr_avx2_f32_n8_m, m)
#define UKR_ROWS_NAME K_F32_16
#define UKR_ROWS_NV 2
#include "ukr_rows.inc"
#define UKR_ROWS_NAME K_F32_8
#define UKR_ROWS_NV 1
#include "ukr_rows.inc"
#include "ukr_vec_undef.inc"
#undef real

/* double: 8 and 4 columns */
#define real double
#define UKR_VEC_F64
#include "ukr_vec256.inc"
#define K_F64_8(m) UKR_CAT(ukr_avx2_f64_n8_m, m)
#define K_F64_4(m) UKR_CAT(ukr_avx2_f64_n4_m, m)
#define UKR_ROWS_NAME K_F64_8
#define UKR_ROWS_NV 2
#include "ukr_rows.inc"
#define UKR_ROWS_NAME K_F64_4
#define UKR_ROWS_NV 1
#include "ukr_rows.inc"
#include "ukr_vec_undef.inc"
#undef UKR_VEC_F64
#undef real

/* Packing with 8×8 (float) and 4×4 (double) register transposes: lines are
 * taken in chunks of 8 (4); a remainder of r lines is transposed with its
 * last line repeated and stored FIRST with full-width stores, whose spill
 * into the next row is then overwritten by the full chunks (and, after the
 * last row, by the next block, the scalar tail or the next panel). */
FNN_TARGET_AVX2 static inline void transpose8_ps(__m256 v[8])
{
    __m256 t[8], s[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(v[2 * i], v[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(v[2 * i], v[2 * i + 1]);
    }
    for (int h = 0; h < 2; h++) {
        s[4 * h + 0] = _mm256_shuffle_ps(t[4 * h + 0], t[4 * h + 2], _MM_SHUFFLE(1, 0, 1, 0));
        s[4 * h + 1] = _mm256_shuffle_ps(t[4 * h + 0], t[4 * h + 2], _MM_SHUFFLE(3, 2, 3, 2));
        s[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], _MM_SHUFFLE(1, 0, 1, 0));
        s[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int q = 0; q < 4; q++) {
        v[q] = _mm256_permute2f128_ps(s[q], s[q + 4], 0x20);
        v[q + 4] = _mm256_permute2f128_ps(s[q], s[q + 4], 0x31);
    }
}

FNN_TARGET_AVX2 static inline void transpose4_pd(__m256d v[4])
{
    const __m256d t0 = _mm256_unpacklo_pd(v[0], v[1]), t1 = _mm256_unpackhi_pd(v[0], v[1]);
    const __m256d t2 = _mm256_unpacklo_pd(v[2], v[3]), t3 = _mm256_unpackhi_pd(v[2], v[3]);
    v[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    v[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    v[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    v[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

/* dst[p*W + i] = src[i*ld + p], VL lines × VL steps per register transpose. */
#define DEFINE_INTERLEAVE(real, SFX, VEC, VL, LOADU, STOREU, TRANSPOSE)                               \
    FNN_TARGET_AVX2 void fnn_interleave_avx2_##SFX(int64_t W, int64_t kc, const real *src, int64_t ld, \
                                                   real *dst)                                          \
    {                                                                                                  \
        const int64_t full = W / (VL) * (VL), r = W - full;                                            \
        int64_t p = 0;                                                                                 \
        VEC v[VL];                                                                                     \
        for (; p + (VL) <= kc; p += (VL)) {                                                            \
            real *d = dst + p * W;                                                                     \
            if (r) {                                                                                   \
                _Pragma("GCC unroll 8") for (int i = 0; i < (VL); i++)                                 \
                    v[i] = LOADU(src + (full + (i < r ? i : r - 1)) * ld + p);                         \
                TRANSPOSE(v);                                                                          \
                _Pragma("GCC unroll 8") for (int q = 0; q < (VL); q++)                                 \
                    STOREU(d + q * W + full, v[q]);                                                    \
            }                                                                                          \
            for (int64_t c0 = 0; c0 < full; c0 += (VL)) {                                              \
                _Pragma("GCC unroll 8") for (int i = 0; i < (VL); i++)                                 \
                    v[i] = LOADU(src + (c0 + i) * ld + p);                                             \
                TRANSPOSE(v);                                                                          \
                _Pragma("GCC unroll 8") for (int q = 0; q < (VL); q++)                                 \
                    STOREU(d + q * W + c0, v[q]);                                                      \
            }                                                                                          \
        }                                                                                              \
        for (; p < kc; p++)                                                                            \
            for (int64_t i = 0; i < W; i++)                                                            \
                dst[p * W + i] = src[i * ld + p];                                                      \
    }

DEFINE_INTERLEAVE(float, f32, __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps, transpose8_ps)
DEFINE_INTERLEAVE(double, f64, __m256d, 4, _mm256_loadu_pd, _mm256_storeu_pd, transpose4_pd)
#undef DEFINE_INTERLEAVE

/* Compare the SIMD packers with the plain loop for every width a kernel set
 * uses (AVX-512's too, so they are checked on CPUs without AVX-512), odd
 * lengths and the slack rule. Returns the number of mismatches. */
int fnn_gemm_selftest_packers(void)
{
    static const int64_t widths[] = {4, 6, 8, 12, 16, 32};
    static const int64_t lengths[] = {1, 3, 7, 8, 9, 16, 17, 31};
    enum { LD = 45, MAXW = 32, MAXK = 31, SLACK = 8 };
    float src[MAXW * LD], dst[MAXW * MAXK + SLACK];
    double srcd[MAXW * LD], dstd[MAXW * MAXK + SLACK];
    int bad = 0;
    for (int i = 0; i < MAXW * LD; i++) {
        src[i] = (float)i;
        srcd[i] = (double)i + 0.5;
    }
    for (size_t wi = 0; wi < sizeof widths / sizeof *widths; wi++)
        for (size_t li = 0; li < sizeof lengths / sizeof *lengths; li++) {
            const int64_t W = widths[wi], kc = lengths[li];
            for (int i = 0; i < MAXW * MAXK + SLACK; i++) {
                dst[i] = -1.0f;
                dstd[i] = -1.0;
            }
            fnn_interleave_avx2_f32(W, kc, src, LD, dst);
            fnn_interleave_avx2_f64(W, kc, srcd, LD, dstd);
            for (int64_t p = 0; p < kc; p++)
                for (int64_t i = 0; i < W; i++) {
                    bad += dst[p * W + i] != src[i * LD + p];
                    bad += dstd[p * W + i] != srcd[i * LD + p];
                }
        }
    return bad;
}

void fnn_kernels_avx2(fnn_kernel_set *ks)
{
    ks->interleave_f32 = fnn_interleave_avx2_f32;
    ks->interleave_f64 = fnn_interleave_avx2_f64;
    ks->dot_f32 = fnn_dot_avx2_f32;
    ks->dot_f64 = fnn_dot_avx2_f64;
    ks->id = FNN_KERNELS_AVX2;
    ks->name = "avx2";
    UKR_FILL_ROWS(ks->ukw_f32, ks->ukdw_f32, 0, K_F32_16);
    UKR_FILL_ROWS(ks->ukw_f32, ks->ukdw_f32, 1, K_F32_8);
    UKR_FILL_ROWS(ks->ukw_f64, ks->ukdw_f64, 0, K_F64_8);
    UKR_FILL_ROWS(ks->ukw_f64, ks->ukdw_f64, 1, K_F64_4);
    fnn_kernel_set_shapes(ks, (fnn_blocks){6, 16, 0, 0, 0, 3, 2, {6, 4, 2}, {16, 8, 0}},
                          (fnn_blocks){6, 8, 0, 0, 0, 3, 2, {6, 4, 2}, {8, 4, 0}});
}
#endif
