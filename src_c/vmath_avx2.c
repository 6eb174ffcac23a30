/* vmath_avx2.c — vmath_body.inc on AVX2+FMA: 8 floats or 4 doubles a vector.
 * A one-element call broadcasts its input and keeps lane 0; a tail is one
 * masked load/store (the other lanes compute on zeros and are dropped). */
#include "vmath_internal.h"
#include "vmath_coef.h"
#include "gemm/gemm_internal.h"

#if FNN_HAVE_X86_KERNELS
#include <immintrin.h>

#define VM_ATTR FNN_TARGET_AVX2
#define VM_FN static inline __attribute__((always_inline)) FNN_TARGET_AVX2

/* float */
#define real float
#define V __m256
#define M __m256
#define VM_W 8
#define VM(name) name##_avx2_f32
#define VM_SFXU _F32
#define VM_IS_F64 0
#define V_SET(c) _mm256_set1_ps(c)
#define V_ADD _mm256_add_ps
#define V_SUB _mm256_sub_ps
#define V_MUL _mm256_mul_ps
#define V_DIV _mm256_div_ps
#define V_FMA _mm256_fmadd_ps
#define V_MIN _mm256_min_ps   /* a < b ? a : b — b when either is NaN */
#define V_MAX _mm256_max_ps
#define V_ABS(a) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), (a))
#define V_NEG(a) _mm256_xor_ps(_mm256_set1_ps(-0.0f), (a))
#define V_COPYSIGN(m, s) _mm256_or_ps(V_ABS(m), _mm256_and_ps(_mm256_set1_ps(-0.0f), (s)))
#define V_SEL(m, a, b) _mm256_blendv_ps((b), (a), (m))
#define V_POW2I(k) _mm256_castsi256_ps(_mm256_slli_epi32( \
    _mm256_castps_si256(_mm256_add_ps((k), _mm256_set1_ps(12582912.0f + 127.0f))), 23))
#define M_LT(a, b) _mm256_cmp_ps((a), (b), _CMP_LT_OQ)
#define M_GE(a, b) _mm256_cmp_ps((a), (b), _CMP_GE_OQ)
#define M_AND _mm256_and_ps
#define M_ISNAN(a) _mm256_cmp_ps((a), (a), _CMP_UNORD_Q)
#define M_ANY(m) (_mm256_movemask_ps(m) != 0)
#define VM_TAIL_MASK(k) _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(k)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define V_LOADU(p) _mm256_loadu_ps(p)
#define V_STOREU(p, v) _mm256_storeu_ps((p), (v))
#define V_LOAD_TAIL(p, k) _mm256_maskload_ps((p), VM_TAIL_MASK(k))
#define V_STORE_TAIL(p, v, k) _mm256_maskstore_ps((p), VM_TAIL_MASK(k), (v))
#define V_FIRST(v) _mm256_cvtss_f32(v)
#include "vmath_body.inc"
#include "vmath_undef.inc"
#undef VM_TAIL_MASK

/* double */
#define real double
#define V __m256d
#define M __m256d
#define VM_W 4
#define VM(name) name##_avx2_f64
#define VM_SFXU _F64
#define VM_IS_F64 1
#define V_SET(c) _mm256_set1_pd(c)
#define V_ADD _mm256_add_pd
#define V_SUB _mm256_sub_pd
#define V_MUL _mm256_mul_pd
#define V_DIV _mm256_div_pd
#define V_FMA _mm256_fmadd_pd
#define V_MIN _mm256_min_pd
#define V_MAX _mm256_max_pd
#define V_ABS(a) _mm256_andnot_pd(_mm256_set1_pd(-0.0), (a))
#define V_NEG(a) _mm256_xor_pd(_mm256_set1_pd(-0.0), (a))
#define V_COPYSIGN(m, s) _mm256_or_pd(V_ABS(m), _mm256_and_pd(_mm256_set1_pd(-0.0), (s)))
#define V_SEL(m, a, b) _mm256_blendv_pd((b), (a), (m))
#define V_POW2I(k) _mm256_castsi256_pd(_mm256_slli_epi64( \
    _mm256_castpd_si256(_mm256_add_pd((k), _mm256_set1_pd(6755399441055744.0 + 1023.0))), 52))
#define M_LT(a, b) _mm256_cmp_pd((a), (b), _CMP_LT_OQ)
#define M_GE(a, b) _mm256_cmp_pd((a), (b), _CMP_GE_OQ)
#define M_AND _mm256_and_pd
#define M_ISNAN(a) _mm256_cmp_pd((a), (a), _CMP_UNORD_Q)
#define M_ANY(m) (_mm256_movemask_pd(m) != 0)
#define VM_TAIL_MASK(k) _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(k)), _mm256_setr_epi64x(0, 1, 2, 3))
#define V_LOADU(p) _mm256_loadu_pd(p)
#define V_STOREU(p, v) _mm256_storeu_pd((p), (v))
#define V_LOAD_TAIL(p, k) _mm256_maskload_pd((p), VM_TAIL_MASK(k))
#define V_STORE_TAIL(p, v, k) _mm256_maskstore_pd((p), VM_TAIL_MASK(k), (v))
#define V_FIRST(v) _mm256_cvtsd_f64(v)
#include "vmath_body.inc"

void fnn_vm_kernels_avx2(fnn_vm_kernels *k)
{
    k->name = "avx2";
    k->func_f32 = func_avx2_f32;
    k->func_f64 = func_avx2_f64;
    k->act_f32 = act_avx2_f32;
    k->act_f64 = act_avx2_f64;
    k->bwd_f32 = bwd_avx2_f32;
    k->bwd_f64 = bwd_avx2_f64;
    k->act1_f32 = act1_avx2_f32;
    k->act1_f64 = act1_avx2_f64;
    k->grad1_f32 = grad1_avx2_f32;
    k->grad1_f64 = grad1_avx2_f64;
}
#else
void fnn_vm_kernels_avx2(fnn_vm_kernels *k) { (void)k; }
#endif
