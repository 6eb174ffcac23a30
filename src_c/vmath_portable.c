/* vmath_portable.c — vmath_body.inc in plain C for any CPU: on arrays of
 * lanes (8 floats, 4 doubles: loops the compiler may vectorise) for the array
 * calls, the tail zero-padded, and on one scalar for the one-element entries.
 * Every lane and the scalar run the same IEEE operations in the same order;
 * floating-point contraction is off in this file, so no compiler fuses a·b + c
 * in one and not the other, and the two give the same bits. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "vmath_internal.h"
#include "vmath_coef.h"

#if defined(__GNUC__) || defined(__clang__)
#define VM_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define VM_NOINLINE __declspec(noinline)
#else
#define VM_NOINLINE
#endif

#define VM_ATTR
#define VM_FN static VM_NOINLINE

/* Eight lanes as plain arrays: loops the compiler may vectorise (SSE2 on any
 * x86-64, NEON on arm64), each lane the same scalar IEEE operations. */
#define VM_PORTABLE_OPS(real, SFX, LANES, UINT, SHIFT, BIAS_MAGIC)                                         \
    typedef struct { real l[LANES]; } vm_v_##SFX;                                                       \
    typedef struct { int l[LANES]; } vm_m_##SFX;                                                        \
    static inline vm_v_##SFX vm_set_##SFX(real c)                                                   \
    {                                                                                               \
        vm_v_##SFX r;                                                                               \
        for (int i = 0; i < LANES; i++) r.l[i] = c;                                                     \
        return r;                                                                                   \
    }                                                                                               \
    static inline vm_v_##SFX vm_add_##SFX(vm_v_##SFX a, vm_v_##SFX b)                               \
    { for (int i = 0; i < LANES; i++) a.l[i] = a.l[i] + b.l[i]; return a; }                             \
    static inline vm_v_##SFX vm_sub_##SFX(vm_v_##SFX a, vm_v_##SFX b)                               \
    { for (int i = 0; i < LANES; i++) a.l[i] = a.l[i] - b.l[i]; return a; }                             \
    static inline vm_v_##SFX vm_mul_##SFX(vm_v_##SFX a, vm_v_##SFX b)                               \
    { for (int i = 0; i < LANES; i++) a.l[i] = a.l[i] * b.l[i]; return a; }                             \
    static inline vm_v_##SFX vm_div_##SFX(vm_v_##SFX a, vm_v_##SFX b)                               \
    { for (int i = 0; i < LANES; i++) a.l[i] = a.l[i] / b.l[i]; return a; }                             \
    static inline vm_v_##SFX vm_fma_##SFX(vm_v_##SFX a, vm_v_##SFX b, vm_v_##SFX c)                 \
    { for (int i = 0; i < LANES; i++) a.l[i] = a.l[i] * b.l[i] + c.l[i]; return a; }                    \
    static inline vm_v_##SFX vm_min_##SFX(vm_v_##SFX a, vm_v_##SFX b)                               \
    { for (int i = 0; i < LANES; i++) a.l[i] = a.l[i] < b.l[i] ? a.l[i] : b.l[i]; return a; }           \
    static inline vm_v_##SFX vm_max_##SFX(vm_v_##SFX a, vm_v_##SFX b)                               \
    { for (int i = 0; i < LANES; i++) a.l[i] = a.l[i] > b.l[i] ? a.l[i] : b.l[i]; return a; }           \
    static inline vm_v_##SFX vm_neg_##SFX(vm_v_##SFX a)                                             \
    { for (int i = 0; i < LANES; i++) a.l[i] = -a.l[i]; return a; }                                     \
    static inline vm_v_##SFX vm_abs_##SFX(vm_v_##SFX a)                                             \
    {                                                                                               \
        for (int i = 0; i < LANES; i++) {                                                               \
            UINT u;                                                                                 \
            memcpy(&u, &a.l[i], sizeof u);                                                          \
            u &= ~((UINT)1 << (sizeof(UINT) * 8 - 1));                                              \
            memcpy(&a.l[i], &u, sizeof u);                                                          \
        }                                                                                           \
        return a;                                                                                   \
    }                                                                                               \
    static inline vm_v_##SFX vm_copysign_##SFX(vm_v_##SFX m, vm_v_##SFX s)                          \
    {                                                                                               \
        for (int i = 0; i < LANES; i++) {                                                               \
            UINT a, b;                                                                              \
            const UINT sign = (UINT)1 << (sizeof(UINT) * 8 - 1);                                    \
            memcpy(&a, &m.l[i], sizeof a);                                                          \
            memcpy(&b, &s.l[i], sizeof b);                                                          \
            a = (a & ~sign) | (b & sign);                                                           \
            memcpy(&m.l[i], &a, sizeof a);                                                          \
        }                                                                                           \
        return m;                                                                                   \
    }                                                                                               \
    /* 2^k for an integral k in the normal range: k + (magic + bias) puts k + bias in the low      \
     * bits, and the shift moves them to the exponent field. */                                    \
    static inline vm_v_##SFX vm_pow2i_##SFX(vm_v_##SFX k)                                           \
    {                                                                                               \
        for (int i = 0; i < LANES; i++) {                                                               \
            real t = k.l[i] + (BIAS_MAGIC);                                                         \
            UINT u;                                                                                 \
            memcpy(&u, &t, sizeof u);                                                               \
            u <<= SHIFT;                                                                            \
            memcpy(&k.l[i], &u, sizeof u);                                                          \
        }                                                                                           \
        return k;                                                                                   \
    }                                                                                               \
    static inline vm_v_##SFX vm_sel_##SFX(vm_m_##SFX m, vm_v_##SFX a, vm_v_##SFX b)                 \
    { for (int i = 0; i < LANES; i++) a.l[i] = m.l[i] ? a.l[i] : b.l[i]; return a; }                    \
    static inline vm_m_##SFX vm_lt_##SFX(vm_v_##SFX a, vm_v_##SFX b)                                \
    { vm_m_##SFX m; for (int i = 0; i < LANES; i++) m.l[i] = a.l[i] < b.l[i]; return m; }               \
    static inline vm_m_##SFX vm_ge_##SFX(vm_v_##SFX a, vm_v_##SFX b)                                \
    { vm_m_##SFX m; for (int i = 0; i < LANES; i++) m.l[i] = a.l[i] >= b.l[i]; return m; }              \
    static inline vm_m_##SFX vm_and_##SFX(vm_m_##SFX a, vm_m_##SFX b)                               \
    { for (int i = 0; i < LANES; i++) a.l[i] = a.l[i] & b.l[i]; return a; }                             \
    static inline vm_m_##SFX vm_isnan_##SFX(vm_v_##SFX a)                                           \
    { vm_m_##SFX m; for (int i = 0; i < LANES; i++) m.l[i] = a.l[i] != a.l[i]; return m; }              \
    static inline int vm_any_##SFX(vm_m_##SFX m)                                                    \
    { int r = 0; for (int i = 0; i < LANES; i++) r |= m.l[i]; return r; }                               \
    static inline vm_v_##SFX vm_load_##SFX(const real *p, int64_t k)                                \
    {                                                                                               \
        vm_v_##SFX r;                                                                               \
        for (int i = 0; i < LANES; i++) r.l[i] = i < k ? p[i] : (real)0;                                \
        return r;                                                                                   \
    }                                                                                               \
    static inline void vm_store_##SFX(real *p, vm_v_##SFX v, int64_t k)                             \
    { for (int i = 0; i < k; i++) p[i] = v.l[i]; }

VM_PORTABLE_OPS(float, f32, 8, uint32_t, 23, 12582912.0f + 127.0f)
VM_PORTABLE_OPS(double, f64, 4, uint64_t, 52, 6755399441055744.0 + 1023.0)

#define VM_W 8
#define real float
#define V vm_v_f32
#define M vm_m_f32
#define VM(name) name##_portable_f32
#define VM_SFXU _F32
#define VM_IS_F64 0
#define V_SET vm_set_f32
#define V_ADD vm_add_f32
#define V_SUB vm_sub_f32
#define V_MUL vm_mul_f32
#define V_DIV vm_div_f32
#define V_FMA vm_fma_f32
#define V_MIN vm_min_f32
#define V_MAX vm_max_f32
#define V_NEG vm_neg_f32
#define V_ABS vm_abs_f32
#define V_COPYSIGN vm_copysign_f32
#define V_POW2I vm_pow2i_f32
#define V_SEL vm_sel_f32
#define M_LT vm_lt_f32
#define M_GE vm_ge_f32
#define M_AND vm_and_f32
#define M_ISNAN vm_isnan_f32
#define M_ANY vm_any_f32
#define V_LOADU(p) vm_load_f32((p), 8)
#define V_STOREU(p, v) vm_store_f32((p), (v), 8)
#define V_LOAD_TAIL vm_load_f32
#define V_STORE_TAIL vm_store_f32
#define V_FIRST(v) ((v).l[0])
#include "vmath_body.inc"
#include "vmath_undef.inc"

#define VM_W 4
#define real double
#define V vm_v_f64
#define M vm_m_f64
#define VM(name) name##_portable_f64
#define VM_SFXU _F64
#define VM_IS_F64 1
#define V_SET vm_set_f64
#define V_ADD vm_add_f64
#define V_SUB vm_sub_f64
#define V_MUL vm_mul_f64
#define V_DIV vm_div_f64
#define V_FMA vm_fma_f64
#define V_MIN vm_min_f64
#define V_MAX vm_max_f64
#define V_NEG vm_neg_f64
#define V_ABS vm_abs_f64
#define V_COPYSIGN vm_copysign_f64
#define V_POW2I vm_pow2i_f64
#define V_SEL vm_sel_f64
#define M_LT vm_lt_f64
#define M_GE vm_ge_f64
#define M_AND vm_and_f64
#define M_ISNAN vm_isnan_f64
#define M_ANY vm_any_f64
#define V_LOADU(p) vm_load_f64((p), 4)
#define V_STOREU(p, v) vm_store_f64((p), (v), 4)
#define V_LOAD_TAIL vm_load_f64
#define V_STORE_TAIL vm_store_f64
#define V_FIRST(v) ((v).l[0])
#include "vmath_body.inc"
#include "vmath_undef.inc"
#undef VM_FN

/* One lane as a plain scalar, for the one-element entries (no wasted lanes):
 * the same IEEE operations in the same order as each lane above, and with
 * contraction off (top of the file) nothing fuses them differently. */
#define VM_FN static inline
#define VM_W 1
#define V_ADD(a, b) ((a) + (b))
#define V_SUB(a, b) ((a) - (b))
#define V_MUL(a, b) ((a) * (b))
#define V_DIV(a, b) ((a) / (b))
#define V_FMA(a, b, c) ((a) * (b) + (c))
#define V_MIN(a, b) ((a) < (b) ? (a) : (b))
#define V_MAX(a, b) ((a) > (b) ? (a) : (b))
#define V_NEG(a) (-(a))
#define V_SEL(m, a, b) ((m) ? (a) : (b))
#define V_SET(c) (c)
#define M_LT(a, b) ((a) < (b))
#define M_GE(a, b) ((a) >= (b))
#define M_AND(a, b) ((a) && (b))
#define M_ISNAN(a) ((a) != (a))
#define M_ANY(m) (m)
#define V_LOADU(p) (*(p))
#define V_STOREU(p, v) (*(p) = (v))
#define V_LOAD_TAIL(p, k) (*(p))
#define V_STORE_TAIL(p, v, k) (*(p) = (v))
#define V_FIRST(v) (v)
#define M int

/* 2^k for an integral k in the normal range: k + (magic + bias) puts k + bias
 * in the low bits, and the shift moves them to the exponent field. */
#define VM_POW2I_SCALAR(real, SFX, UINT, SHIFT, BIAS_MAGIC)                  \
    static real pow2i_##SFX(real k)                                          \
    {                                                                        \
        real t = k + (BIAS_MAGIC);                                           \
        UINT u;                                                              \
        memcpy(&u, &t, sizeof u);                                            \
        u <<= SHIFT;                                                         \
        memcpy(&t, &u, sizeof t);                                            \
        return t;                                                            \
    }
VM_POW2I_SCALAR(float, f32, uint32_t, 23, 12582912.0f + 127.0f)
VM_POW2I_SCALAR(double, f64, uint64_t, 52, 6755399441055744.0 + 1023.0)
#undef VM_POW2I_SCALAR

#define real float
#define V float
#define VM(name) name##_portable1_f32
#define VM_SFXU _F32
#define VM_IS_F64 0
#define V_ABS(a) fabsf(a)
#define V_COPYSIGN(m, s) copysignf((m), (s))
#define V_POW2I(k) pow2i_f32(k)
#include "vmath_body.inc"
#undef real
#undef V
#undef VM
#undef VM_SFXU
#undef VM_IS_F64
#undef V_ABS
#undef V_COPYSIGN
#undef V_POW2I

#define real double
#define V double
#define VM(name) name##_portable1_f64
#define VM_SFXU _F64
#define VM_IS_F64 1
#define V_ABS(a) fabs(a)
#define V_COPYSIGN(m, s) copysign((m), (s))
#define V_POW2I(k) pow2i_f64(k)
#include "vmath_body.inc"

void fnn_vm_kernels_portable(fnn_vm_kernels *k)
{
    k->name = "portable";
    k->func_f32 = func_portable_f32;
    k->func_f64 = func_portable_f64;
    k->act_f32 = act_portable_f32;
    k->act_f64 = act_portable_f64;
    k->bwd_f32 = bwd_portable_f32;
    k->bwd_f64 = bwd_portable_f64;
    k->act1_f32 = act1_portable1_f32;
    k->act1_f64 = act1_portable1_f64;
    k->grad1_f32 = grad1_portable1_f32;
    k->grad1_f64 = grad1_portable1_f64;
}
