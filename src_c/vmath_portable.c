/* vmath_portable.c — vmath_body.inc on plain C scalars (one lane), for any
 * CPU. Each function is compiled once (noinline) and called by both the
 * array loops and the one-element entries, so the two cannot round differently
 * even where the compiler contracts a·b + c into an FMA. */
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
static float pow2i_f32(float k)
{
    float t = k + (12582912.0f + 127.0f);
    uint32_t u;
    memcpy(&u, &t, sizeof u);
    u <<= 23;
    memcpy(&t, &u, sizeof t);
    return t;
}

static double pow2i_f64(double k)
{
    double t = k + (6755399441055744.0 + 1023.0);
    uint64_t u;
    memcpy(&u, &t, sizeof u);
    u <<= 52;
    memcpy(&t, &u, sizeof t);
    return t;
}

#define real float
#define V float
#define VM(name) name##_portable_f32
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
#define VM(name) name##_portable_f64
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
    k->act1_f32 = act1_portable_f32;
    k->act1_f64 = act1_portable_f64;
    k->grad1_f32 = grad1_portable_f32;
    k->grad1_f64 = grad1_portable_f64;
}
