/* dense.c — instantiates dense.inc for float and double. */
#include "dense.h"
#include "act_scalar.h"

#define real float
#define FNN_T(name) name##_f32
#define FNN_ACT_GRAD fnn_act_grad_f32
#define FNN_VM_ACT_BACKWARD fnn_vm_act_backward_f32
#include "dense.inc"
#undef real
#undef FNN_T
#undef FNN_ACT_GRAD
#undef FNN_VM_ACT_BACKWARD

#define real double
#define FNN_T(name) name##_f64
#define FNN_ACT_GRAD fnn_act_grad_f64
#define FNN_VM_ACT_BACKWARD fnn_vm_act_backward_f64
#include "dense.inc"
