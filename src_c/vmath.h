/* vmath.h — vectorised exp, sigmoid, tanh, erf and the activations built on
 * them (sigmoid, tanh, GELU exact and tanh-approximated, GELU's derivatives).
 *
 * One implementation per kernel set (AVX2+FMA, portable), chosen with the
 * GEMM's kernels (src_c/cpu.h, FASTNN_KERNELS=portable forces the
 * portable one). Within a kernel set every entry point gives the same bits for
 * the same input: the one-element calls run the same vector code on a
 * broadcast lane, the array calls run their tails through a masked vector, and
 * lanes never interact — so the GEMM epilogue, the elementwise kernels and the
 * plan agree bit for bit whatever the thread count or an element's position.
 *
 * Accuracy (measured against libm by tests/test_vmath.py, see README
 * "Vectorised activations"): exp ≤ 1 ulp, sigmoid ≤ 2 ulp, tanh ≤ 2 ulp,
 * erf ≤ 2 ulp (float32 and float64, both kernel sets); subnormal results are
 * rounded once. ±0, ±inf and NaN behave as libm's. */
#ifndef FASTNN_VMATH_H
#define FASTNN_VMATH_H
#include "common.h"

#define FNN_SQRT_2_OVER_PI 0.7978845608028654
#define FNN_INV_SQRT_2 0.7071067811865476
#define FNN_INV_SQRT_2PI 0.3989422804014327
#define FNN_GELU_TANH_C 0.044715

enum { FNN_VM_EXP = 0, FNN_VM_SIGMOID = 1, FNN_VM_TANH = 2, FNN_VM_ERF = 3 };

/* y[i] = fn(x[i]) for a FNN_VM_* function (the tests' entry point); y may alias x. */
void fnn_vm_func_f32(int fn, int64_t n, float *y, const float *x);
void fnn_vm_func_f64(int fn, int64_t n, double *y, const double *x);

/* y[i] = act(x[i]) for act ∈ {SIGMOID, TANH, GELU, GELU_TANH}; y may alias x. */
void fnn_vm_act_f32(int64_t n, float *y, const float *x, int act);
void fnn_vm_act_f64(int64_t n, double *y, const double *x, int act);

/* dx[i] = dy[i] · act'(x[i]) for act ∈ {GELU, GELU_TANH} (from the input x);
 * dx may alias dy. */
void fnn_vm_act_backward_f32(int64_t n, float *dx, const float *dy, const float *x, int act);
void fnn_vm_act_backward_f64(int64_t n, double *dx, const double *dy, const double *x, int act);

/* One element: the same bits as a lane of the array calls. */
float fnn_vm_act1_f32(int act, float x);
double fnn_vm_act1_f64(int act, double x);
float fnn_vm_grad1_f32(int act, float x);   /* act' for GELU, GELU_TANH */
double fnn_vm_grad1_f64(int act, double x);

/* Baselines for benchmarks (vmath_libm.c): the libm formulas one element at a
 * time, and a loop over the one-element call (the GEMM epilogue's path). */
void fnn_vm_libm_act_f32(int64_t n, float *y, const float *x, int act);
void fnn_vm_libm_act_f64(int64_t n, double *y, const double *x, int act);
void fnn_vm_libm_act_backward_f32(int64_t n, float *dx, const float *dy, const float *x, int act);
void fnn_vm_libm_act_backward_f64(int64_t n, double *dx, const double *dy, const double *x, int act);
void fnn_vm_one_lane_act_f32(int64_t n, float *y, const float *x, int act);
void fnn_vm_one_lane_act_f64(int64_t n, double *y, const double *x, int act);

/* Name of the implementation in use ("avx2" or "portable"). */
const char *fnn_vm_kernel_name(void);

#endif
