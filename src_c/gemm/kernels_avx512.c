/* kernels_avx512.c — AVX-512 micro-kernels: 12×32 floats, 12×16 doubles
 * (24 zmm accumulators, 2 B loads and 12 broadcasts per k). On Zen 4 the
 * 512-bit FMA is double-pumped, so these reach the same FMA rate as AVX2 with
 * half the instructions. Ragged last panels get 8- and 4-row tiles and one-
 * vector and 256-bit-wide tiles (gemm_internal.h: the tile shapes). */
#include "gemm_internal.h"

#if FNN_HAVE_X86_KERNELS
#include <immintrin.h>

#define UKR_ATTR FNN_TARGET_AVX512
#define UKR_M0 12
#define UKR_M1 8
#define UKR_M2 4

/* float, 512-bit: 32 and 16 columns */
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
#define K_F32_32(m) UKR_CAT(ukr_avx512_f32_n32_m, m)
#define K_F32_16(m) UKR_CAT(ukr_avx512_f32_n16_m, m)
#define UKR_ROWS_NAME K_F32_32
#define UKR_ROWS_NV 2
#include "ukr_rows.inc"
#define UKR_ROWS_NAME K_F32_16
#define UKR_ROWS_NV 1
#include "ukr_rows.inc"
#include "ukr_vec_undef.inc"

/* float, 256-bit: 8 columns */
#include "ukr_vec256.inc"
#define K_F32_8(m) UKR_CAT(ukr_avx512_f32_n8_m, m)
#define UKR_ROWS_NAME K_F32_8
#define UKR_ROWS_NV 1
#include "ukr_rows.inc"
#include "ukr_vec_undef.inc"
#undef real

/* double, 512-bit: 16 and 8 columns */
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
#define K_F64_16(m) UKR_CAT(ukr_avx512_f64_n16_m, m)
#define K_F64_8(m) UKR_CAT(ukr_avx512_f64_n8_m, m)
#define UKR_ROWS_NAME K_F64_16
#define UKR_ROWS_NV 2
#include "ukr_rows.inc"
#define UKR_ROWS_NAME K_F64_8
#define UKR_ROWS_NV 1
#include "ukr_rows.inc"
#include "ukr_vec_undef.inc"

/* double, 256-bit: 4 columns */
#define UKR_VEC_F64
#include "ukr_vec256.inc"
#define K_F64_4(m) UKR_CAT(ukr_avx512_f64_n4_m, m)
#define UKR_ROWS_NAME K_F64_4
#define UKR_ROWS_NV 1
#include "ukr_rows.inc"
#include "ukr_vec_undef.inc"
#undef UKR_VEC_F64
#undef real

void fnn_kernels_avx512(fnn_kernel_set *ks)
{
    /* Every AVX-512 CPU has AVX2: start from that set (its transposing
     * packers and narrow dot products serve here too), then swap in the
     * 512-bit micro-kernels and their tile shapes. */
    fnn_kernels_avx2(ks);
    ks->id = FNN_KERNELS_AVX512;
    ks->name = "avx512";
    UKR_FILL_ROWS(ks->ukw_f32, ks->ukdw_f32, 0, K_F32_32);
    UKR_FILL_ROWS(ks->ukw_f32, ks->ukdw_f32, 1, K_F32_16);
    UKR_FILL_ROWS(ks->ukw_f32, ks->ukdw_f32, 2, K_F32_8);
    UKR_FILL_ROWS(ks->ukw_f64, ks->ukdw_f64, 0, K_F64_16);
    UKR_FILL_ROWS(ks->ukw_f64, ks->ukdw_f64, 1, K_F64_8);
    UKR_FILL_ROWS(ks->ukw_f64, ks->ukdw_f64, 2, K_F64_4);
    fnn_kernel_set_shapes(ks, (fnn_blocks){12, 32, 0, 0, 0, 3, 3, {12, 8, 4}, {32, 16, 8}},
                          (fnn_blocks){12, 16, 0, 0, 0, 3, 3, {12, 8, 4}, {16, 8, 4}});
}
#endif
