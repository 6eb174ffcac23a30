/* activations.c — instantiates activations.inc for float and double. */
#include <math.h>
#include "activations.h"
#include "act_scalar.h"

/* Per-element cost of a vmath activation, for the parallel threshold. */
#define FNN_COST_VMATH 4

#define real float
#define FNN_T(name) name##_f32
#define FNN_ACT fnn_act_f32
#define FNN_ACT_GRAD fnn_act_grad_f32
#define FNN_EXP expf
#define FNN_VM_ACT fnn_vm_act_f32
#define FNN_VM_ACT_BACKWARD fnn_vm_act_backward_f32
#include "activations.inc"
#undef real
#undef FNN_T
#undef FNN_ACT
#undef FNN_ACT_GRAD
#undef FNN_EXP
#undef FNN_VM_ACT
#undef FNN_VM_ACT_BACKWARD

#define real double
#define FNN_T(name) name##_f64
#define FNN_ACT fnn_act_f64
#define FNN_ACT_GRAD fnn_act_grad_f64
#define FNN_EXP exp
#define FNN_VM_ACT fnn_vm_act_f64
#define FNN_VM_ACT_BACKWARD fnn_vm_act_backward_f64
#include "activations.inc"
