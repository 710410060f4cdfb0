"""Optimizers over one flat buffer: every parameter of a network, and its gradient, as a view into one
contiguous tensor, so that zeroing the gradients, clipping their norm and the Adam or RMSprop step are
each one kernel on one tensor instead of a loop over the parameter tensors (12 for a 64x64
actor-critic).

On the small networks of this library a gradient step is mostly per-call overhead, not arithmetic.
Measured in one process (a PPO minibatch of 256 rows on the 64x64 actor-critic, one CPU thread): over
12 tensors the fused Adam step took ~230 us and ``clip_grad_norm_`` ~250 us of a ~2.1 ms step; over
one flat tensor, ~80 us and ~30 us.

What changes for the rest of the code: nothing, as long as it updates parameters in place
(``copy_``, ``mul_``: loading a checkpoint, PopArt's rescaling) and never rebinds them
(``p.data = ...`` or moving the module to another device after the optimizer is made), which would
cut a parameter loose from the buffer the optimizer steps (the next step says so). Gradients are
zeroed, never set to None, so a parameter the loss does not reach has a zero gradient (Adam then
decays its moments) rather than none; a gradient that other code drops or replaces is gathered back
into the buffer before each step. The saved state keeps torch's per-parameter layout:
:meth:`state_dict` splits the flat moments into one entry per parameter and :meth:`load_state_dict`
joins them, so checkpoints read the same as a plain optimizer's, in both directions.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from policygrad.core.errors import UserInputError

if TYPE_CHECKING:  # FlatOptimizer is a mixin over a torch.optim class: type it as one
    _OptimizerBase = torch.optim.Optimizer
else:
    _OptimizerBase = object


def allocated_grad(param: torch.Tensor) -> torch.Tensor:
    """The flat parameter's gradient buffer: FlatParameters allocates it once and only ever zeroes it
    in place, so a missing one is a bug here, not a user's mistake."""
    if param.grad is None:
        raise RuntimeError("the flat gradient buffer was released: FlatParameters allocates it once")
    return param.grad


class FlatParameters:
    """``params`` rebound as views of one flat parameter ``param``, their gradients as views of
    ``param.grad`` (allocated now, zeroed in place from then on)."""

    def __init__(self, params) -> None:
        self.params = list(params)
        if not self.params:
            raise UserInputError("an optimizer needs at least one parameter")
        first = self.params[0]
        if any(p.device != first.device or p.dtype != first.dtype for p in self.params):
            raise UserInputError("a flat optimizer needs every parameter on one device with one dtype")
        if any(hasattr(p, "_flat_optimizer_buffer") for p in self.params):
            raise UserInputError("these parameters are already stepped by a flat optimizer: make one per network "
                                 "(or pass flat=False)")
        self.sizes = [p.numel() for p in self.params]
        self.param = nn.Parameter(torch.cat([p.detach().reshape(-1) for p in self.params]))
        self.param.grad = torch.zeros_like(self.param)
        self.grads = self.split(self.param.grad)
        for p, value, grad in zip(self.params, self.split(self.param.data), self.grads):
            p.data = value
            p.grad = grad
            p._flat_optimizer_buffer = True
        self.addresses = [p.data_ptr() for p in self.params]

    def gather_gradients(self, keep: bool = True) -> None:
        """Make sure every gradient is in the flat buffer. A gradient that other code set to None
        (``module.zero_grad()``) or replaced gets its view back, holding that gradient (None: zeros;
        ``keep=False``: left as the buffer has it). A parameter rebound elsewhere (moved to another
        device, say) is an error: this optimizer would no longer reach it. A dozen identity checks."""
        for i, (p, view) in enumerate(zip(self.params, self.grads)):
            if p.grad is not view:
                if p.data_ptr() != self.addresses[i]:
                    raise RuntimeError(f"parameter {i} ({tuple(p.shape)}) was rebound after its flat optimizer was "
                                       "made (moved to another device?): make the optimizer after moving the network")
                if keep:
                    view.zero_() if p.grad is None else view.copy_(p.grad)
                p.grad = view

    def split(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """``flat`` (one value per element of the buffer) as one tensor per parameter, shaped like it."""
        return [part.view_as(p) for part, p in zip(flat.split(self.sizes), self.params)]


class FlatOptimizer(_OptimizerBase):
    """Mixin over a ``torch.optim`` class: the optimizer steps one flat parameter (see the module)."""

    def __init__(self, params, **options: Any) -> None:
        self.flat = FlatParameters(params)
        super().__init__([self.flat.param], **options)

    # torch.optim marks add_param_group, state_dict and load_state_dict as not to be traced by
    # torch.compile with torch._disable_dynamo, which imports torch._dynamo on the first call (~2 s of
    # CPU, most of the start of a run) only to place that mark. Nothing compiles these optimizers, so
    # they call those methods unmarked, until something else has imported torch._dynamo anyway.
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        _unmarked(torch.optim.Optimizer.add_param_group)(self, param_group)

    @property
    def flat_grad(self) -> torch.Tensor:
        """The gradients of every parameter, gathered (see :meth:`FlatParameters.gather_gradients`)."""
        self.flat.gather_gradients()
        return allocated_grad(self.flat.param)

    def step(self, closure=None):
        self.flat.gather_gradients()
        return super().step(closure)

    def zero_grad(self, set_to_none: bool = True) -> None:
        # The parameters' gradients are views of this buffer: they are zeroed, never dropped.
        allocated_grad(self.flat.param).zero_()
        self.flat.gather_gradients(keep=False)

    def state_dict(self) -> dict[str, Any]:
        saved = _unmarked(torch.optim.Optimizer.state_dict)(self)
        count = len(self.flat.params)
        groups = [{**saved["param_groups"][0], "params": list(range(count))}]
        entries = saved["state"].get(0)
        if not entries:
            return {"state": {}, "param_groups": groups}
        state: dict[int, dict[str, Any]] = {i: {} for i in range(count)}
        for key, value in entries.items():
            if torch.is_tensor(value) and value.shape == self.flat.param.shape:
                for i, part in enumerate(self.flat.split(value)):
                    state[i][key] = part
            else:  # the step count: the same for every parameter
                for i in range(count):
                    state[i][key] = value.clone() if torch.is_tensor(value) else value
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        groups = state_dict["param_groups"]
        count = len(self.flat.params)
        if len(groups) != 1 or list(groups[0]["params"]) != list(range(count)):
            raise UserInputError(f"the saved state is for {sum(len(g['params']) for g in groups)} parameters in "
                                 f"{len(groups)} groups, this optimizer has {count} in one")
        saved = state_dict["state"]
        entries: dict[str, Any] = {}
        if saved:
            keys = set().union(*(saved.get(i, {}).keys() for i in range(count)))
            for key in keys:
                values = [saved.get(i, {}).get(key) for i in range(count)]
                if any(torch.is_tensor(v) and v.dim() > 0 for v in values):  # a moment: one value per element
                    # (a parameter without state, saved by a plain optimizer that never saw its gradient: zeros)
                    entries[key] = torch.cat([torch.zeros_like(p).reshape(-1) if v is None else v.reshape(-1)
                                              for v, p in zip(values, self.flat.params)])
                else:  # the step count: one per parameter, the same for all in a flat optimizer's save
                    entries[key] = next(v for v in values if v is not None)
        _unmarked(torch.optim.Optimizer.load_state_dict)(self, {"state": {0: entries} if entries else {},
                                                                "param_groups": [{**groups[0], "params": [0]}]})


def _unmarked(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` of torch.optim.Optimizer without its torch._disable_dynamo wrapper while torch._dynamo
    is not imported (see FlatOptimizer); the method as it is once it is."""
    return method if "torch._dynamo" in sys.modules else getattr(method, "__wrapped__", method)


class FlatAdam(FlatOptimizer, torch.optim.Adam):
    """Adam over one flat parameter (see the module).

    With fused Adam and nothing that needs ``torch.optim``'s general step (a closure, step hooks,
    AMSGrad, a tensor learning rate, capturable or differentiable mode, gradient scaling), a step is
    the two calls ``Adam.step`` ends in, the step count's increment and ``torch._fused_adam_``, with the
    same arguments, on the state ``Adam.step`` would create: the same update, bit for bit, without
    ~150 us of Python per step (its profiling wrapper, grad-mode switches and torch._dynamo graph
    breaks, which import torch._dynamo on the first step, ``_init_group``, grouping the tensors by
    device). Every other case takes ``Adam.step``."""

    def step(self, closure=None):
        if closure is None and self._fused_step():
            return None
        return self._hooked_step(closure)

    # torch.optim wraps a class's ``step`` in its profiling and hooks wrapper unless it is marked as
    # already wrapped; this one is marked, and takes the wrapped step whenever hooks could be set
    step.hooked = True  # type: ignore[attr-defined]

    def _hooked_step(self, closure=None):
        return _HOOKED_STEP(self, closure)

    def _fused_step(self) -> bool:
        group = self.param_groups[0]
        param = self.flat.param
        if (_step_hooks(self) or not group["fused"] or group["amsgrad"] or group["capturable"]
                or group["differentiable"] or group.get("decoupled_weight_decay") or torch.is_tensor(group["lr"])
                or getattr(self, "grad_scale", None) is not None or getattr(self, "found_inf", None) is not None):
            return False
        self.flat.gather_gradients()
        state = self.state[param]
        if not state:  # Adam's lazy initialization, as _init_group makes it for fused Adam
            state["step"] = torch.zeros((), dtype=torch.float32, device=param.device)
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        beta1, beta2 = group["betas"]
        step = state["step"]
        with torch.no_grad():
            torch._foreach_add_([step], 1)
            grad = allocated_grad(param)
            torch._fused_adam_([param], [grad], [state["exp_avg"]], [state["exp_avg_sq"]], [], [step],
                               amsgrad=False, lr=group["lr"], beta1=beta1, beta2=beta2,
                               weight_decay=group["weight_decay"], eps=group["eps"], maximize=group["maximize"],
                               grad_scale=None, found_inf=None)
        return True


def _plain_step(self, closure=None):
    self.flat.gather_gradients()
    step: Any = torch.optim.Adam.step  # without the wrapper torch.optim puts on it once a plain Adam exists
    return (step.__wrapped__ if getattr(step, "hooked", False) else step)(self, closure)


# Adam.step as torch.optim's own wrapper runs it (profiling, pre- and post-step hooks)
_HOOKED_STEP = torch.optim.Optimizer.profile_hook_step(_plain_step)


def _step_hooks(optimizer: torch.optim.Optimizer) -> bool:
    """Whether any optimizer step hook is registered (on ``optimizer`` or globally)."""
    from torch.optim import optimizer as module

    return bool(optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks
                or getattr(module, "_global_optimizer_pre_hooks", None)
                or getattr(module, "_global_optimizer_post_hooks", None))


class FlatRMSprop(FlatOptimizer, torch.optim.RMSprop):
    """RMSprop over one flat parameter (see the module)."""


def saved_parameters(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The parameters that ``optimizer.state_dict()`` numbers, in its order."""
    if isinstance(optimizer, FlatOptimizer):
        return optimizer.flat.params
    return [p for group in optimizer.param_groups for p in group["params"]]
