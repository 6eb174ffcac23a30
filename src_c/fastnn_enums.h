/* fastnn_enums.h — every code that crosses the C/Python boundary, declared once.
 *
 * The kernels, the training plan and the Cython wrappers include this header; Python reads
 * the values from the compiled core (fastnn._core.enums(), wrapped as IntEnums in
 * fastnn/_enums.py), so no layer writes these numbers again. Values are part of the
 * ABI and of saved plans: append, never renumber.
 */
#ifndef FASTNN_ENUMS_H
#define FASTNN_ENUMS_H

/* Activations: the dense layer's epilogue and the activation kernels. */
typedef enum {
    FNN_ACT_NONE = 0,
    FNN_ACT_RELU = 1,
    FNN_ACT_LEAKY_RELU = 2, /* param = negative_slope */
    FNN_ACT_SIGMOID = 3,
    FNN_ACT_TANH = 4,
    FNN_ACT_GELU = 5,       /* exact: x·Φ(x) */
    FNN_ACT_GELU_TANH = 6   /* approximate='tanh' */
} fnn_act;
#define FNN_ACT_COUNT 7 /* one past the last code (a bound check, not an activation) */

/* Loss reductions. */
typedef enum { FNN_REDUCE_MEAN = 0, FNN_REDUCE_SUM = 1 } fnn_reduction;

/* Status of the fused loss kernels (losses.h). */
enum { FNN_LOSS_OK = 0, FNN_LOSS_BAD_INPUT = 1, FNN_LOSS_BAD_TARGET = 2 };

/* Momentum handling of fnn_sgd_step: none, first step (buffer ← g), later steps. */
typedef enum { FNN_SGD_NO_MOMENTUM = 0, FNN_SGD_FIRST_STEP = 1, FNN_SGD_LATER_STEP = 2 } fnn_sgd_mode;

/* The training plan's layer kinds (fnn_plan_layer.kind, plan.h). */
enum { FNN_PLAN_DENSE = 0, FNN_PLAN_LAYER_NORM = 1, FNN_PLAN_BATCH_NORM = 2, FNN_PLAN_DROPOUT = 3 };

/* The training plan's losses (the fused kernels of losses.h). */
enum {
    FNN_PLAN_MSE = 0,
    FNN_PLAN_L1 = 1,
    FNN_PLAN_BCE = 2,
    FNN_PLAN_BCE_LOGITS = 3,
    FNN_PLAN_CE = 4
};

/* The training plan's optimizers (the kernels of optim.h, PyTorch's formulas). */
enum { FNN_PLAN_SGD = 0, FNN_PLAN_ADAM = 1, FNN_PLAN_RMSPROP = 2, FNN_PLAN_ADAGRAD = 3 };

/* Status codes of a plan step (besides FNN_OK = 0 and FNN_ENOMEM = -1 of gemm.h). */
#define FNN_PLAN_BAD_INPUT 1       /* loss input out of range (BCE: not in [0,1]); *bad = index */
#define FNN_PLAN_BAD_TARGET 2      /* target out of range (label, BCE target); *bad = index */
#define FNN_PLAN_NONFINITE_LOSS 3  /* nothing updated */
#define FNN_PLAN_NONFINITE_GRAD 4  /* nothing updated (CHECK_FINITE, unfused) */
#define FNN_PLAN_NONFINITE_PARAM 5 /* the update was applied and overflowed */
#define FNN_PLAN_HOOK_FAILED 6     /* the gradient hook (distributed allreduce) failed; nothing updated */

#endif
