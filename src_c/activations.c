/* activations.c — instantiates activations.inc for float and double. */
#include <math.h>
#include "activations.h"
#include "act_scalar.h"

#define real float
#define FNN_T(name) name##_f32
#define FNN_ACT fnn_act_f32
#define FNN_ACT_GRAD fnn_act_grad_f32
#define FNN_EXP expf
#include "activations.inc"
#undef real
#undef FNN_T
#undef FNN_ACT
#undef FNN_ACT_GRAD
#undef FNN_EXP

#define real double
#define FNN_T(name) name##_f64
#define FNN_ACT fnn_act_f64
#define FNN_ACT_GRAD fnn_act_grad_f64
#define FNN_EXP exp
#include "activations.inc"
