/* dense.c — instantiates dense.inc for float and double. */
#include <string.h>
#include "dense.h"
#include "act_scalar.h"

#define real float
#define FNN_UINT uint32_t
#define FNN_INF_BITS 0x7f800000u
#define FNN_T(name) name##_f32
#define FNN_ACT_GRAD fnn_act_grad_f32
#define FNN_VM_ACT_BACKWARD fnn_vm_act_backward_f32
#include "dz_db.inc"
#include "dense.inc"
#undef real
#undef FNN_UINT
#undef FNN_INF_BITS
#undef FNN_T
#undef FNN_ACT_GRAD
#undef FNN_VM_ACT_BACKWARD

#define real double
#define FNN_UINT uint64_t
#define FNN_INF_BITS 0x7ff0000000000000u
#define FNN_T(name) name##_f64
#define FNN_ACT_GRAD fnn_act_grad_f64
#define FNN_VM_ACT_BACKWARD fnn_vm_act_backward_f64
#include "dz_db.inc"
#include "dense.inc"
