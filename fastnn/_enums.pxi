# _enums.pxi — the codes of src_c/fastnn_enums.h, handed to Python (fastnn/_enums.py builds
# IntEnums from enums()), so Python never writes the numbers itself.

cdef extern from "fastnn_enums.h":
    int FNN_ACT_NONE, FNN_ACT_RELU, FNN_ACT_LEAKY_RELU, FNN_ACT_SIGMOID, FNN_ACT_TANH
    int FNN_ACT_GELU, FNN_ACT_GELU_TANH, FNN_ACT_COUNT
    int FNN_REDUCE_MEAN, FNN_REDUCE_SUM
    int FNN_LOSS_OK, FNN_LOSS_BAD_INPUT, FNN_LOSS_BAD_TARGET
    int FNN_SGD_NO_MOMENTUM, FNN_SGD_FIRST_STEP, FNN_SGD_LATER_STEP
    int FNN_PLAN_DENSE, FNN_PLAN_LAYER_NORM, FNN_PLAN_BATCH_NORM, FNN_PLAN_DROPOUT
    int FNN_PLAN_MSE, FNN_PLAN_L1, FNN_PLAN_BCE, FNN_PLAN_BCE_LOGITS, FNN_PLAN_CE
    int FNN_PLAN_SGD, FNN_PLAN_ADAM, FNN_PLAN_RMSPROP, FNN_PLAN_ADAGRAD
    int FNN_PLAN_BAD_INPUT, FNN_PLAN_BAD_TARGET, FNN_PLAN_NONFINITE_LOSS
    int FNN_PLAN_NONFINITE_GRAD, FNN_PLAN_NONFINITE_PARAM, FNN_PLAN_HOOK_FAILED


def enums():
    """{enum name: {member name: value}} for every code of src_c/fastnn_enums.h."""
    return {
        "Activation": {"NONE": FNN_ACT_NONE, "RELU": FNN_ACT_RELU, "LEAKY_RELU": FNN_ACT_LEAKY_RELU,
                       "SIGMOID": FNN_ACT_SIGMOID, "TANH": FNN_ACT_TANH, "GELU": FNN_ACT_GELU,
                       "GELU_TANH": FNN_ACT_GELU_TANH},
        "Reduction": {"MEAN": FNN_REDUCE_MEAN, "SUM": FNN_REDUCE_SUM},
        "LossStatus": {"OK": FNN_LOSS_OK, "BAD_INPUT": FNN_LOSS_BAD_INPUT, "BAD_TARGET": FNN_LOSS_BAD_TARGET},
        "SgdMode": {"NO_MOMENTUM": FNN_SGD_NO_MOMENTUM, "FIRST_STEP": FNN_SGD_FIRST_STEP,
                    "LATER_STEP": FNN_SGD_LATER_STEP},
        "PlanLayer": {"DENSE": FNN_PLAN_DENSE, "LAYER_NORM": FNN_PLAN_LAYER_NORM,
                      "BATCH_NORM": FNN_PLAN_BATCH_NORM, "DROPOUT": FNN_PLAN_DROPOUT},
        "PlanLoss": {"MSE": FNN_PLAN_MSE, "L1": FNN_PLAN_L1, "BCE": FNN_PLAN_BCE,
                     "BCE_LOGITS": FNN_PLAN_BCE_LOGITS, "CE": FNN_PLAN_CE},
        "PlanOptimizer": {"SGD": FNN_PLAN_SGD, "ADAM": FNN_PLAN_ADAM, "RMSPROP": FNN_PLAN_RMSPROP,
                          "ADAGRAD": FNN_PLAN_ADAGRAD},
        "PlanStatus": {"OK": 0, "BAD_INPUT": FNN_PLAN_BAD_INPUT, "BAD_TARGET": FNN_PLAN_BAD_TARGET,
                       "NONFINITE_LOSS": FNN_PLAN_NONFINITE_LOSS, "NONFINITE_GRAD": FNN_PLAN_NONFINITE_GRAD,
                       "NONFINITE_PARAM": FNN_PLAN_NONFINITE_PARAM,
                       "HOOK_FAILED": FNN_PLAN_HOOK_FAILED},
    }
