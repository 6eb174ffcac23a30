/* vmath.c — picks the vmath kernel set from cpu.h's choice (so
 * FASTNN_KERNELS=portable, or fnn_gemm_set_kernels, switches it with the
 * GEMM's) and forwards the public entry points to it. */
#include "vmath_internal.h"
#include "cpu.h"

static fnn_vm_kernels g_portable, g_avx2;
static volatile int g_ready = 0;

static const fnn_vm_kernels *vm_active(void)
{
    if (!g_ready) {  /* racing initialisers write the same values */
        fnn_vm_kernels_portable(&g_portable);
        fnn_vm_kernels_portable(&g_avx2);
        fnn_vm_kernels_avx2(&g_avx2);
        g_ready = 1;
    }
    /* AVX-512 machines have AVX2+FMA; vmath has no wider set. */
    const int id = fnn_cpu_kernels();
    return (id == FNN_KERNELS_AVX2 || id == FNN_KERNELS_AVX512) ? &g_avx2 : &g_portable;
}

void fnn_vm_func_f32(int fn, int64_t n, float *y, const float *x) { vm_active()->func_f32(fn, n, y, x); }
void fnn_vm_func_f64(int fn, int64_t n, double *y, const double *x) { vm_active()->func_f64(fn, n, y, x); }
void fnn_vm_act_f32(int64_t n, float *y, const float *x, int act) { vm_active()->act_f32(n, y, x, act); }
void fnn_vm_act_f64(int64_t n, double *y, const double *x, int act) { vm_active()->act_f64(n, y, x, act); }
void fnn_vm_act_backward_f32(int64_t n, float *dx, const float *dy, const float *x, int act)
{
    vm_active()->bwd_f32(n, dx, dy, x, act);
}
void fnn_vm_act_backward_f64(int64_t n, double *dx, const double *dy, const double *x, int act)
{
    vm_active()->bwd_f64(n, dx, dy, x, act);
}
float fnn_vm_act1_f32(int act, float x) { return vm_active()->act1_f32(act, x); }
double fnn_vm_act1_f64(int act, double x) { return vm_active()->act1_f64(act, x); }
float fnn_vm_grad1_f32(int act, float x) { return vm_active()->grad1_f32(act, x); }
double fnn_vm_grad1_f64(int act, double x) { return vm_active()->grad1_f64(act, x); }
const char *fnn_vm_kernel_name(void) { return vm_active()->name; }
