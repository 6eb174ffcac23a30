"""Optimizer base: PyTorch's parameter groups and state_dict over flat arenas.

At construction each parameter group's parameters are gathered into arenas
(``fastnn.nn.arena``; one per dtype), so ``step()`` is one fused kernel call per
arena and ``zero_grad()`` one memset. Optimizer state (momentum buffers, Adam
moments) is kept as flat arrays of the arena's layout; ``state_dict()``
presents it per parameter, in PyTorch's format, so checkpoints are portable
and training resumes bit for bit.

Hyper-parameters are read from ``param_groups[i]`` at every step, so changing
``opt.param_groups[0]['lr']`` (as schedulers do) takes effect immediately.

Subclasses define ``defaults``, ``_check_group(group)``, ``_update(arena,
state, group)``, where ``state`` is the arena's dict of flat buffers plus the
step count, and their state schema: ``state_slots`` (the buffers' names, in the
order compiled engines take them) and ``_ensure_state(arena, state, group)``,
which makes what one update needs, as PyTorch makes it. ``_update`` and the
engines that update an arena themselves (compiled plans, the one-call eager
step) go through the schema; those engines get the state from
:meth:`Optimizer.flat_state` and never look inside the optimizer.

The step count (``state["step"]``) is kept as a float64 0-d array updated in
place, so an engine advances it with one store; ``state_dict()`` presents it
as a float, as before.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .. import _core, _native
from ..nn.arena import Arena, consolidate
from ..nn.parameter import Parameter
from ..ops.optim import check_real


def _plain(value):
    """A state value as an ndarray or a Python scalar: 0-d arrays and array-likes (a PyTorch
    checkpoint's ``step`` tensor, its moment tensors) are converted, so such checkpoints load."""
    if value is None or isinstance(value, (bool, int, float, np.ndarray)):
        return value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value
    if hasattr(value, "__array__"):
        a = np.asarray(value)
        return a.item() if a.ndim == 0 else a
    return value


def _step_box(value=0.0) -> np.ndarray:
    """The step count's storage: a float64 0-d array, advanced in place."""
    return np.array(float(value), dtype=np.float64)


def _is_buffer(value) -> bool:
    """A flat state buffer of an arena's layout (not the 0-d step count)."""
    return isinstance(value, np.ndarray) and value.ndim == 1


class FlatState:
    """One parameter group's flat state, as :meth:`Optimizer.flat_state` hands it out.

    ``arena``: the group's arena (parameters and gradients, one flat buffer each);
    ``buffers``: the state arrays named by the optimizer's ``state_slots``, in that order
    (``None`` where not made: every slot the group's current hyper-parameters use is made);
    ``step``: the step count (updates applied so far) as a writable float64 0-d array, or
    ``None`` for optimizers that keep none (SGD); ``first``: the next update is the first to
    use a buffer made just now and must initialise it (SGD's momentum: PyTorch copies the
    gradient into it).
    """

    __slots__ = ("arena", "buffers", "step", "first")

    def __init__(self, arena, buffers, step, first):
        self.arena, self.buffers, self.step, self.first = arena, buffers, step, first

    def __repr__(self) -> str:
        names = ", ".join("None" if b is None else f"array({b.size})" for b in self.buffers)
        return (f"FlatState(arena of {self.arena.size}, buffers=({names}), "
                f"step={None if self.step is None else float(self.step)}, first={self.first})")


class Optimizer:
    # Per-parameter state that is an array of the parameter's shape (the rest are scalars).
    _ARRAY_STATE = frozenset({"momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq",
                              "square_avg", "grad_avg", "sum"})
    # The state arrays in the order compiled engines take them (src_c/plan.h's fnn_plan_arena
    # state0, state1, state2); each optimizer names its own.
    state_slots: Tuple[str, ...] = ()

    def __init__(self, params, defaults: Dict[str, Any]):
        self.defaults = dict(defaults)
        self.param_groups: List[Dict[str, Any]] = []
        # Bumped whenever a flat state buffer or step count is made, replaced or dropped, or an
        # arena rebuilt: engines holding flat_state()'s answer ask again when it changed.
        self.flat_version = 0
        self._arenas: List[List[Arena]] = []     # per group, one arena per dtype
        self._states: List[List[dict]] = []      # per group, per arena: flat state buffers
        if isinstance(params, Parameter):
            raise TypeError("params: expected an iterable of Parameters or of dicts, got a single Parameter")
        try:
            groups = list(params)
        except TypeError:
            raise TypeError(f"params: expected an iterable of Parameters or of dicts, got "
                            f"{type(params).__name__}") from None
        if not groups:
            raise ValueError("params: optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # --- groups -------------------------------------------------------------------
    def add_param_group(self, group: Dict[str, Any]) -> None:
        if not isinstance(group, dict):
            raise TypeError(f"group: expected a dict, got {type(group).__name__}")
        params = group.get("params")
        params = [params] if isinstance(params, Parameter) else list(params or [])
        if not params:
            raise ValueError("group['params']: a parameter group needs at least one parameter")
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(f"params: expected fastnn.nn.Parameter objects, got {type(p).__name__}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or any(id(p) in seen for p in params):
            raise ValueError("params: some parameters appear in more than one group (or twice in one)")
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise TypeError(f"group: unknown option(s) {sorted(unknown)} for {type(self).__name__}")
        full = dict(self.defaults)
        full.update(group)
        full["params"] = [p for p in params if p.requires_grad]
        if not full["params"]:
            raise ValueError("params: every parameter in this group has requires_grad=False")
        self._check_group(full)
        self.param_groups.append(full)
        arenas = consolidate(full["params"])
        self._arenas.append(arenas)
        self._states.append([{} for _ in arenas])
        self.flat_version += 1

    def _check_group(self, group: Dict[str, Any]) -> None:
        check_real(group["lr"], "lr", low=0.0)

    # --- arenas ---------------------------------------------------------------------
    def group_arenas(self, gi: int, rebuild: bool = True) -> List[Arena]:
        """Parameter group ``gi``'s arenas (one per dtype, in first-seen order): the flat
        ``data`` and ``grad`` buffers its parameters are views of. With ``rebuild`` (the
        default) an arena whose parameters another owner moved is rebuilt first, its state
        carried over; ``rebuild=False`` returns them as they are (check ``arena.stale``)."""
        return self._current_arenas(gi) if rebuild else list(self._arenas[gi])

    def _current_arenas(self, gi: int) -> List[Arena]:
        """The group's arenas, rebuilt (state carried over) if another owner moved its parameters."""
        arenas = self._arenas[gi]
        for a in arenas:
            if a.stale:
                break
        else:
            return arenas
        old_views = [{k: a.views(v) for k, v in st.items() if _is_buffer(v)}
                     for a, st in zip(arenas, self._states[gi])]
        old_params = [a.params for a in arenas]
        new_arenas = consolidate(self.param_groups[gi]["params"])
        new_states = []
        for a in new_arenas:
            st = {}
            for old_a_params, views, old_st in zip(old_params, old_views, self._states[gi]):
                if old_a_params[0].dtype != a.dtype:
                    continue
                for k, v in old_st.items():
                    if not _is_buffer(v):
                        st[k] = v
                for k, per_param in views.items():
                    flat = a.zeros_like()
                    for dst, src in zip(a.views(flat), per_param):
                        dst[...] = src
                    st[k] = flat
            new_states.append(st)
        self._arenas[gi], self._states[gi] = new_arenas, new_states
        self.flat_version += 1
        return new_arenas

    # --- the state schema, for engines that update an arena themselves ---------------------
    def _ensure_state(self, arena: Arena, state: dict, group: Dict[str, Any]) -> bool:
        """Make the state one update of ``arena`` with ``group``'s hyper-parameters uses, as
        PyTorch makes it (through _new_buffer / _new_step); True when a buffer made now must be
        initialised by that update (SGD's momentum). Shared by _update and flat_state."""
        return False

    def _new_buffer(self, arena: Arena, state: dict, name: str) -> np.ndarray:
        buf = state[name] = arena.zeros_like()
        self.flat_version += 1
        return buf

    def _new_step(self, state: dict) -> np.ndarray:
        box = state.get("step")
        if isinstance(box, np.ndarray) and box.ndim == 0 and box.dtype == np.float64 and box.flags.writeable:
            return box
        box = state["step"] = _step_box(0.0 if box is None else box)
        self.flat_version += 1
        return box

    def flat_state(self, gi: int) -> FlatState:
        """Parameter group ``gi``'s flat state (a :class:`FlatState`), made ready for one update
        with the group's current hyper-parameters exactly as ``step()`` makes it (missing
        buffers created as PyTorch creates them), for engines that run the update on the arena
        themselves (a compiled plan, the one-call eager step).

        The arrays are the optimizer's own, not copies: the engine updates them in place and
        then counts the updates it applied, by adding them to ``FlatState.step`` (a float64 0-d
        array) or through :meth:`advance_steps`. What it holds stays valid while
        ``flat_version`` is unchanged and the hyper-parameters use no slot that is ``None``;
        otherwise it asks again. Hyper-parameters are the engine's to read from
        ``param_groups[gi]`` at every update (schedulers change them). ValueError when the
        group's parameters have several dtypes (one arena each)."""
        arenas = self._current_arenas(gi)
        if len(arenas) != 1:
            raise ValueError(f"group {gi}: its parameters have {len(arenas)} dtypes (one arena each); "
                             f"flat_state describes a group of one arena")
        arena, state = arenas[0], self._states[gi][0]
        first = bool(self._ensure_state(arena, state, self.param_groups[gi]))
        step = state.get("step")
        return FlatState(arena, tuple(state.get(k) for k in self.state_slots),
                         step if isinstance(step, np.ndarray) else None, first)

    def advance_steps(self, gi: int, steps: int) -> None:
        """After an engine applied ``steps`` updates to group ``gi`` with flat_state()'s
        buffers: count them (optimizers without a step count have nothing to do)."""
        for state in self._states[gi]:
            box = state.get("step")
            if isinstance(box, np.ndarray):
                box[()] = float(box) + steps

    # --- the training-loop API ----------------------------------------------------------
    # zero_grad(set_to_none=True): zero every gradient (one memset per arena). ``set_to_none`` is
    # accepted for PyTorch compatibility; gradients always exist in fastnn, so both zero them.
    # Compiled (_core.optimizer_zero_grad): one group with one current arena is one memset there,
    # anything else runs _zero_grad.
    zero_grad = (_core.optimizer_zero_grad if _native.available()
                 else lambda self, set_to_none=True: self._zero_grad(set_to_none))

    def _zero_grad(self, set_to_none: bool = True) -> None:
        for gi in range(len(self.param_groups)):
            for arena in self._current_arenas(gi):
                arena.zero_grad()

    # step(closure=None): one update of every parameter; returns ``closure()``'s loss if a closure
    # is given. Compiled (_core.optimizer_step): SGD and Adam/AdamW with one group, one arena and
    # plain hyper-parameters (the usual case) update in one call there, with the checks
    # _check_group and _update would pass without a word and the same kernel
    # (fastnn/_plan_eager.pxi); anything else runs _step.
    step = _core.optimizer_step if _native.available() else lambda self, closure=None: self._step(closure)

    def _step(self, closure=None):
        loss = closure() if closure is not None else None
        states = self._states
        for gi, group in enumerate(self.param_groups):
            self._check_group(group)
            arenas = self._current_arenas(gi)
            if len(arenas) == 1:  # the usual single-dtype group
                self._update(arenas[0], states[gi][0], group)
            else:
                for arena, state in zip(arenas, states[gi]):
                    self._update(arena, state, group)
        return loss

    def _update(self, arena: Arena, state: dict, group: Dict[str, Any]) -> None:
        raise NotImplementedError

    # --- checkpoints ----------------------------------------------------------------------
    def _param_index(self):
        order = [p for g in self.param_groups for p in g["params"]]
        return order, {id(p): i for i, p in enumerate(order)}

    def state_dict(self) -> Dict[str, Any]:
        """PyTorch's layout: ``{"state": {index: {name: array, "step": n}}, "param_groups": [...]}``
        with parameters numbered across groups in order. Arrays are copies."""
        _, index = self._param_index()
        state: Dict[int, Dict[str, Any]] = {}
        for gi in range(len(self.param_groups)):
            for arena, st in zip(self._current_arenas(gi), self._states[gi]):
                for k, v in st.items():
                    if isinstance(v, np.ndarray) and v.ndim == 0:
                        v = float(v)  # the step count's box
                    per_param = arena.views(v) if isinstance(v, np.ndarray) else [v] * len(arena.params)
                    for p, value in zip(arena.params, per_param):
                        state.setdefault(index[id(p)], {})[k] = (
                            value.copy() if isinstance(value, np.ndarray) else copy.copy(value))
        groups = []
        for g in self.param_groups:
            entry = {k: copy.deepcopy(v) for k, v in g.items() if k != "params"}
            entry["params"] = [index[id(p)] for p in g["params"]]
            groups.append(entry)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restore hyper-parameters and state. Everything is checked before anything changes."""
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict or "state" not in state_dict:
            raise ValueError("state_dict: expected a dict with 'state' and 'param_groups' (from Optimizer.state_dict())")
        groups = state_dict["param_groups"]
        if not isinstance(groups, (list, tuple)) or not all(
                isinstance(g, dict) and isinstance(g.get("params"), (list, tuple)) for g in groups):
            raise ValueError("state_dict: 'param_groups' must be a list of dicts, each with a 'params' list")
        if not isinstance(state_dict["state"], dict):
            raise ValueError("state_dict: 'state' must be a dict keyed by parameter index")
        if len(groups) != len(self.param_groups):
            raise ValueError(f"state_dict: has {len(groups)} parameter groups, this optimizer has {len(self.param_groups)}")
        for gi, (saved, mine) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(mine["params"]):
                raise ValueError(f"state_dict: group {gi} has {len(saved['params'])} parameters, "
                                 f"this optimizer's has {len(mine['params'])}")
        try:
            saved_state = {int(k): v for k, v in state_dict["state"].items()}
        except (TypeError, ValueError):
            raise ValueError("state_dict: 'state' keys must be parameter indices (integers)") from None
        staged_states = []
        for gi, (saved, mine) in enumerate(zip(groups, self.param_groups)):
            mapping = dict(zip(saved["params"], mine["params"]))  # saved index -> my Parameter
            by_param = {id(p): saved_state.get(i, {}) for i, p in mapping.items()}
            new_states = []
            for arena in self._current_arenas(gi):
                st = {}
                entries = [by_param[id(p)] for p in arena.params]
                keys = set().union(*[set(e) for e in entries])
                for k in keys:
                    values = [_plain(e.get(k)) for e in entries]
                    if any(v is None for v in values):
                        raise ValueError(f"state_dict: state {k!r} is missing for some parameters of group {gi}")
                    if k in self._ARRAY_STATE or isinstance(values[0], np.ndarray):
                        flat = arena.zeros_like()
                        for p, dst, v in zip(arena.params, arena.views(flat), values):
                            v = np.asarray(v)
                            if v.dtype.kind not in "fiu":
                                raise ValueError(f"state_dict: state {k!r} must be a real numeric array, "
                                                 f"got dtype {v.dtype}")
                            if v.shape != p.shape:
                                raise ValueError(f"state_dict: state {k!r} has shape {v.shape}, parameter has {p.shape}")
                            dst[...] = v
                        st[k] = flat
                    else:
                        if not all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                                   for v in values):
                            raise ValueError(f"state_dict: state {k!r} must be a number")
                        if any(v != values[0] for v in values):
                            raise ValueError(f"state_dict: {k!r} differs between parameters of one group")
                        st[k] = _step_box(values[0]) if k == "step" else copy.copy(values[0])
                new_states.append(st)
            staged_states.append(new_states)
        staged_groups = []
        for saved, mine in zip(groups, self.param_groups):
            g = dict(mine)
            g.update({k: copy.deepcopy(v) for k, v in saved.items() if k != "params"})
            self._check_group(g)
            staged_groups.append(g)
        for gi, g in enumerate(staged_groups):
            self.param_groups[gi].update({k: v for k, v in g.items() if k != "params"})
            self._states[gi] = staged_states[gi]
        self.flat_version += 1

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(k for k in g if k != "params"):
                lines.append(f"    {k}: {g[k]}")
        return "\n".join(lines) + "\n)"
