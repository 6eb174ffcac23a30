/* vmath_internal.h — the table one vmath kernel set fills (vmath.c picks one). */
#ifndef FASTNN_VMATH_INTERNAL_H
#define FASTNN_VMATH_INTERNAL_H
#include "vmath.h"

typedef struct {
    const char *name;
    void (*func_f32)(int fn, int64_t n, float *y, const float *x);
    void (*func_f64)(int fn, int64_t n, double *y, const double *x);
    void (*act_f32)(int64_t n, float *y, const float *x, int act);
    void (*act_f64)(int64_t n, double *y, const double *x, int act);
    void (*bwd_f32)(int64_t n, float *dx, const float *dy, const float *x, int act);
    void (*bwd_f64)(int64_t n, double *dx, const double *dy, const double *x, int act);
    float (*act1_f32)(int act, float x);
    double (*act1_f64)(int act, double x);
    float (*grad1_f32)(int act, float x);
    double (*grad1_f64)(int act, double x);
} fnn_vm_kernels;

void fnn_vm_kernels_portable(fnn_vm_kernels *k);
void fnn_vm_kernels_avx2(fnn_vm_kernels *k);  /* leaves k alone where AVX2 is not built */

#endif
