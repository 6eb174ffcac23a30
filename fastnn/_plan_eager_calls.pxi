# _plan_eager_calls.pxi — backpropagation and the training-loop methods users call
# (Sequential.__call__, _Loss.__call__, Tensor.backward, Optimizer.step/zero_grad), compiled so
# that each is one Python-level call into the one-call paths of _plan_eager*.pxi.

# --- backpropagation ------------------------------------------------------------------------

cdef str _describe(object module):
    describe = getattr(module, "describe", None)
    return describe() if callable(describe) else type(module).__name__


def backprop(tensor, grad=None, bint need_input_grad=False, stop_at=None):
    """Walk the chain ending at ``tensor``; return d/d(first input) if asked.

    ``stop_at`` ends the walk at the link whose input is that object (a
    composite module's own input). Raises RuntimeError when the tensor is not
    the output of a fastnn module, or when a module on the chain was called
    again since producing it. (fastnn.tensor.backprop; compiled because every
    loss.backward() runs it.) A Sequential whose last forward took the
    whole-model path, and a loss's backward with the default gradient, are
    called without their Python method (the same code, one call fewer).
    """
    link = getattr(tensor, "_link", None)
    if link is None:
        raise RuntimeError(
            "backward: this array was not produced by a fastnn module (or was derived from one by a "
            "NumPy operation), so there is nothing to backpropagate through")
    cdef bint scalar = (cnp.PyArray_NDIM(<cnp.ndarray>tensor) if isinstance(tensor, cnp.ndarray)
                        else np.ndim(tensor)) == 0
    if grad is None:
        if not scalar:
            raise RuntimeError(f"backward: grad is required for a non-scalar output of shape {np.shape(tensor)}")
        grad = 1.0
    elif not scalar:
        grad = np.asarray(grad)
        if grad.shape != np.shape(tensor):
            raise ValueError(f"grad: expected shape {np.shape(tensor)}, got {grad.shape}")
    cdef bint at_stop, need
    while link is not None:
        module = link[0]
        d = getattr(module, "__dict__", None)
        count = d.get("_call_count") if type(d) is dict else None
        if count is None:
            count = module._call_count
        if count != link[1]:
            raise RuntimeError(
                f"backward: {_describe(module)} was called again after producing this output, and keeps only "
                f"its latest call's activations. Call backward() before calling the module again.")
        inp = link[2]
        at_stop = stop_at is not None and inp is stop_at
        upstream = None if at_stop else getattr(inp, "_link", None)
        need = need_input_grad or upstream is not None
        grad = _backward_of(module, grad, need)
        if at_stop:
            return grad
        link = upstream
    if stop_at is not None:
        raise RuntimeError(
            "backward: the forward pass did not reach its input through fastnn modules only; a module "
            "whose forward uses other operations must implement backward() itself")
    return grad if need_input_grad else None


cdef object _backward_of(object module, object grad, bint need):
    cdef type cls = type(module)
    d = module.__dict__
    if "backward" not in d:
        if cls is _Sequential:
            em = d.get("_eager")
            if em is not None and (<EagerModel>em).call == d["_call_count"]:
                return (<EagerModel>em)._backward(grad, need)
        elif need and type(grad) is float and <double>grad == 1.0 and cls in _loss_codes \
                and cls.backward is _loss_backward:
            g = d.get("_grad")
            if g is not None:
                return g  # _Loss.backward with grad_out 1.0
    return module.backward(grad, need_input_grad=need)


# --- the methods users call, compiled (one Python frame fewer per call) ------------------------

cdef object _module_call = None


def eager_register_module_call(module_call):
    global _module_call
    _module_call = module_call


def sequential_call(self, x, *args, **kwargs):
    """Sequential.__call__: the whole-model forward when it applies, else ``_call_per_module``."""
    em = self.__dict__.get("_eager")
    if em is not None and not args and not kwargs:
        out = (<EagerModel>em)._try(self, x)
        if out is not None:
            return out
    return self._call_per_module(x, *args, **kwargs)


def loss_call(self, input, *args, **kwargs):
    """_Loss.__call__: the loss kernel in one call (eager_loss) when it applies, else Module.__call__."""
    if len(args) == 1 and not kwargs:
        out = eager_loss(self, input, args[0])
        if out is not None:
            return out
    return _module_call(self, input, *args, **kwargs)


def tensor_backward(self, grad=None):
    """Backpropagate from this tensor; fills ``.grad`` of every parameter on the chain.

    ``grad`` is d(objective)/d(this tensor); it defaults to 1 for a scalar
    (a loss) and is required otherwise, as in PyTorch.
    """
    backprop(self, grad, False, None)


def optimizer_step(self, closure=None):
    """One update of every parameter; returns ``closure()``'s loss if a closure is given.

    SGD and Adam/AdamW with one group, one arena and plain hyper-parameters (the usual case)
    update in one compiled call (eager_optimizer_step: the checks ``_check_group`` and
    ``_update`` would pass without a word, then the same kernel); anything else runs ``_step``."""
    if closure is None and eager_optimizer_step(self):
        return None
    return self._step(closure)


def optimizer_zero_grad(self, set_to_none=True):
    """Zero every gradient (one memset per arena). ``set_to_none`` is accepted for
    PyTorch compatibility; gradients always exist in fastnn, so both zero them."""
    if not eager_zero_grad(self):
        self._zero_grad(set_to_none)
