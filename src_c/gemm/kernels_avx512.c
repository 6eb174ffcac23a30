/* kernels_avx512.c — AVX-512 micro-kernels: 12×32 floats, 12×16 doubles
 * (24 zmm accumulators, 2 B loads and 12 broadcasts per k). On Zen 4 the
 * 512-bit FMA is double-pumped, so these reach the same FMA rate as AVX2 with
 * half the instructions. */
#include "gemm_internal.h"

#if FNN_HAVE_X86_KERNELS
#include <immintrin.h>

#define UKR_ATTR FNN_TARGET_AVX512

/* float */
#define real float
#define VEC __m512
#define VL 16
#define VLOADU(p) _mm512_loadu_ps(p)
#define VSTOREU(p, v) _mm512_storeu_ps((p), (v))
#define VSET1(x) _mm512_set1_ps(x)
#define VZERO() _mm512_setzero_ps()
#define VFMA(x, y, z) _mm512_fmadd_ps((x), (y), (z))
#define VMUL(x, y) _mm512_mul_ps((x), (y))
#define VADD(x, y) _mm512_add_ps((x), (y))
/* max(0, v) returns its second operand when either is NaN: NaN passes. */
#define VRELU(v) _mm512_max_ps(_mm512_setzero_ps(), (v))
#define VLEAKY(v, s) \
    _mm512_mask_mul_ps((v), _mm512_cmp_ps_mask((v), _mm512_setzero_ps(), _CMP_LT_OQ), (v), (s))
#define UKR_NAME ukr_avx512_f32
#define UKR_MR 12
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
#define VEC __m512d
#define VL 8
#define VLOADU(p) _mm512_loadu_pd(p)
#define VSTOREU(p, v) _mm512_storeu_pd((p), (v))
#define VSET1(x) _mm512_set1_pd(x)
#define VZERO() _mm512_setzero_pd()
#define VFMA(x, y, z) _mm512_fmadd_pd((x), (y), (z))
#define VMUL(x, y) _mm512_mul_pd((x), (y))
#define VADD(x, y) _mm512_add_pd((x), (y))
#define VRELU(v) _mm512_max_pd(_mm512_setzero_pd(), (v))
#define VLEAKY(v, s) \
    _mm512_mask_mul_pd((v), _mm512_cmp_pd_mask((v), _mm512_setzero_pd(), _CMP_LT_OQ), (v), (s))
#define UKR_NAME ukr_avx512_f64
#define UKR_MR 12
#define UKR_NV 2
#include "ukr_simd.inc"

void fnn_kernels_avx512(fnn_kernel_set *ks)
{
    /* Every AVX-512 CPU has AVX2: start from that set (its transposing
     * packers and narrow dot products serve here too), then swap in the
     * 512-bit micro-kernels and their tile shapes. */
    fnn_kernels_avx2(ks);
    ks->id = FNN_KERNELS_AVX512;
    ks->name = "avx512";
    ks->ukr_f32 = ukr_avx512_f32;
    ks->ukr_f64 = ukr_avx512_f64;
    ks->ukr_direct_f32 = ukr_avx512_f32_direct;
    ks->ukr_direct_f64 = ukr_avx512_f64_direct;
    ks->f32.mr = 12;
    ks->f32.nr = 32;
    ks->f64.mr = 12;
    ks->f64.nr = 16;
}
#endif
