/* kernels_avx2.c — AVX2+FMA micro-kernels: 6×16 floats, 6×8 doubles
 * (12 ymm accumulators, 2 B loads and 6 broadcasts per k). */
#include "gemm_internal.h"

#if FNN_HAVE_X86_KERNELS
#include <immintrin.h>

#define UKR_ATTR FNN_TARGET_AVX2

/* float */
#define real float
#define VEC __m256
#define VL 8
#define VLOADU(p) _mm256_loadu_ps(p)
#define VSTOREU(p, v) _mm256_storeu_ps((p), (v))
#define VSET1(x) _mm256_set1_ps(x)
#define VZERO() _mm256_setzero_ps()
#define VFMA(x, y, z) _mm256_fmadd_ps((x), (y), (z))
#define VMUL(x, y) _mm256_mul_ps((x), (y))
#define VADD(x, y) _mm256_add_ps((x), (y))
/* max(0, v) returns its second operand when either is NaN: NaN passes. */
#define VRELU(v) _mm256_max_ps(_mm256_setzero_ps(), (v))
#define VLEAKY(v, s) \
    _mm256_blendv_ps((v), _mm256_mul_ps((v), (s)), _mm256_cmp_ps((v), _mm256_setzero_ps(), _CMP_LT_OQ))
#define UKR_NAME ukr_avx2_f32
#define UKR_MR 6
#define UKR_NV 2
#include "ukr_simd.inc"
#undef real
#undef VEC
#undef VL
#undef VLOADU
#undef VSTOREU
#undef VSET1
#undef VZERO
#undef VFMA
#undef VMUL
#undef VADD
#undef VRELU
#undef VLEAKY

/* double */
#define real double
#define VEC __m256d
#define VL 4
#define VLOADU(p) _mm256_loadu_pd(p)
#define VSTOREU(p, v) _mm256_storeu_pd((p), (v))
#define VSET1(x) _mm256_set1_pd(x)
#define VZERO() _mm256_setzero_pd()
#define VFMA(x, y, z) _mm256_fmadd_pd((x), (y), (z))
#define VMUL(x, y) _mm256_mul_pd((x), (y))
#define VADD(x, y) _mm256_add_pd((x), (y))
#define VRELU(v) _mm256_max_pd(_mm256_setzero_pd(), (v))
#define VLEAKY(v, s) \
    _mm256_blendv_pd((v), _mm256_mul_pd((v), (s)), _mm256_cmp_pd((v), _mm256_setzero_pd(), _CMP_LT_OQ))
#define UKR_NAME ukr_avx2_f64
#define UKR_MR 6
#define UKR_NV 2
#include "ukr_simd.inc"

void fnn_kernels_avx2(fnn_kernel_set *ks)
{
    ks->id = FNN_KERNELS_AVX2;
    ks->name = "avx2";
    ks->ukr_f32 = ukr_avx2_f32;
    ks->ukr_f64 = ukr_avx2_f64;
    ks->f32.mr = 6;
    ks->f32.nr = 16;
    ks->f64.mr = 6;
    ks->f64.nr = 8;
}
#endif
