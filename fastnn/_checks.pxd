# Declarations that let Cython compile fastnn/_checks.py with C calls between its helpers
# (an "augmenting" .pxd: the .py stays plain Python and runs unchanged without Cython).
# Every function stays callable from Python (cpdef) with the .py's signature and defaults;
# the arguments stay Python objects, so the compiled checks accept and reject what the .py does.

cpdef object _reject_non_numeric(object a, object name)
cpdef object _odd_strides(object a)
cpdef object as_float(object x, object name, object dtype=*, object ndim=*, object contiguous=*)
cpdef object as_matrix(object a, object name, object dtype)
cpdef object check_out(object out, object name, object shape, object dtype, object contiguous=*)
cpdef object out_or_new(object out, object name, object shape, object dtype)
cpdef object check_inplace(object a, object name, object shape, object dtype)
cpdef object check_state_array(object a, object name, object like=*, object writable=*, object memory=*)
cpdef object same_memory(object a, object b)
cpdef object check_no_overlap(object outputs, object inputs, object may_alias=*)
cpdef object check_disjoint(object named)
cpdef object finite(object value, object name)
cpdef object nonnegative(object value, object name)
cpdef object optimizer_flag(object value, object name)
cpdef object check_activation(object activation, object negative_slope)
cpdef object check_reduction(object reduction)
cpdef object check_seed(object seed)
cpdef object check_p(object p)
cpdef object check_step(object value, object name=*)
cpdef object check_loss_pair(object input, object target, object grad)
cpdef object check_logits(object x)
cpdef object check_vector(object a, object name, object c, object dtype)
cpdef object _layer(object weight)
cpdef object _check_x(object x, object weight, object n_in, object dt)
cpdef object check_matmul(object a, object b, object trans_a, object trans_b, object out, object alpha,
                          object beta, object overlap=*)
cpdef object check_linear(object x, object weight, object bias, object activation, object negative_slope,
                          object out, object preact_out, object overlap=*)
cpdef object check_linear_backward(object grad_out, object x, object weight, object grad_weight,
                                   object grad_bias, object activation, object saved, object negative_slope,
                                   object overlap=*)
cpdef object check_nesterov(object nesterov, object momentum, object dampening)
cpdef object check_sgd(object param, object grad, object momentum_buffer, object lr, object momentum,
                       object dampening, object weight_decay, object nesterov, object maximize,
                       object first_step, object memory=*)
cpdef object check_adam(object param, object grad, object exp_avg, object exp_avg_sq, object max_exp_avg_sq,
                        object step, object lr, object beta1, object beta2, object eps, object weight_decay,
                        object amsgrad, object maximize, object decoupled_weight_decay, object memory=*)
cpdef object check_label_smoothing(object value)
