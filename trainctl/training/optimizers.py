"""torch optimizers with Keras 3's update rules, defaults, clipping and decoupled weight decay.

Why not ``torch.optim``: Keras and torch differ where users notice (Adam's epsilon-hat, RMSprop and
Adagrad put epsilon inside the square root, ``weight_decay`` is decoupled on every optimizer,
Nadam's momentum schedule), so a Keras config must train the same way here as in Keras.

One ``step()`` is Keras's ``apply_gradients``: clip the gradients, multiply the weights by
``1 - weight_decay * lr``, apply the rule, then ``iterations += 1``. The learning rate is a host
float (a schedule is evaluated at ``iterations``), and the per-step scalars (Adam's bias
correction, ...) are computed on the host in the parameters' precision, as Keras computes them in
the variables' dtype; so a step never syncs with the device. Parameters without a gradient are
skipped, as Keras filters empty gradients.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from trainctl.errors import ArtifactError, ConfigError
from trainctl.training.schedules import LRSchedule, build_schedule

_LR_KEY = "compile.optimizer.learning_rate"
Hyper = float | bool


Group = dict[str, Any]


def _np_float(dtype: torch.dtype) -> type[np.floating[Any]]:
    """Host scalar type matching the parameters (Keras casts its scalars to the variable dtype)."""
    return np.float64 if dtype == torch.float64 else np.float32


@dataclass(frozen=True)
class StepInfo:
    """What one step's rule needs besides its param group: lr, Keras's ``local_step``, precision.

    ``f`` is the numpy scalar type of the parameters: per-step scalars such as Adam's bias
    correction are computed in it, as Keras computes them in the variables' dtype, so float32
    runs match Keras to rounding and float64 runs match exact maths.
    """

    lr: float
    t: int  # iterations + 1
    f: type[np.floating[Any]]

    @property
    def lr_cast(self) -> float:
        return float(self.f(self.lr))

    def scalar(self, value: Any) -> float:
        """A host scalar as the python float torch's foreach ops take (exact: f32 fits in f64)."""
        return float(self.f(value))


def _decay_(buffers: list[Tensor], values: list[Tensor] | tuple[Tensor, ...], rate: float) -> None:
    """Keras's moving averages, in place: ``buffer = rate * buffer + (1 - rate) * value``."""
    torch._foreach_mul_(buffers, rate)
    torch._foreach_add_(buffers, values, alpha=1 - rate)


class KerasOptimizer:
    """Base class: common Keras arguments, clipping, weight decay, ``iterations`` and the lr.

    Subclasses set ``HYPER`` (their Keras arguments and defaults) and implement ``_update``.

    Not a ``torch.optim.Optimizer``: constructing one imports ``torch._dynamo`` (about 2 s on
    these machines, before the first step) and wraps every ``step``/``zero_grad`` in profiler
    hooks. It keeps torch's ``param_groups``/``state`` and state-dict layout, which is all
    ``torch.amp.GradScaler`` and the resume state use.
    """

    HYPER: ClassVar[dict[str, Hyper]] = {}
    DEFAULT_LR: ClassVar[float] = 0.001

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        learning_rate: float | LRSchedule | None = None,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        **hyper: Hyper,
    ) -> None:
        unknown = sorted(set(hyper) - set(self.HYPER))
        if unknown:
            raise ConfigError(
                f"expected arguments of {type(self).__name__} ({', '.join(self.HYPER) or 'none'}), "
                f"received {', '.join(unknown)}",
                key="compile.optimizer",
            )
        clips = [c for c in (clipnorm, clipvalue, global_clipnorm) if c is not None]
        if len(clips) > 1:
            raise ConfigError(
                "expected at most one of clipnorm, clipvalue, global_clipnorm, received several",
                key="compile.optimizer",
            )
        self.defaults: dict[str, Hyper] = {**self.HYPER, **hyper}
        self.state: defaultdict[Tensor, dict[str, Tensor]] = defaultdict(dict)
        self.param_groups: list[Group] = []
        given: list[Any] = list(params)
        groups: list[Group] = given if given and isinstance(given[0], dict) else [{"params": given}]
        for group in groups:
            self.add_param_group(dict(group))
        if learning_rate is None:
            learning_rate = self.DEFAULT_LR
        self._schedule: LRSchedule | None = None
        self._lr: float = float("nan")  # only meaningful without a schedule
        if isinstance(learning_rate, float | int):
            self._lr = float(learning_rate)
        else:
            self._schedule = learning_rate
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self.iterations: int = 0

    def add_param_group(self, group: Group) -> None:
        """torch's contract: a dict with ``params``; unset options take the defaults."""
        params = group["params"]
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_().zero_()

    # -- learning rate ---------------------------------------------------------------------------
    @property
    def learning_rate(self) -> float:
        """The rate the next step uses: the schedule's value at ``iterations`` when scheduled."""
        return self._lr if self._schedule is None else float(self._schedule(self.iterations))

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        if self._schedule is not None:
            raise ConfigError(
                f"expected an optimizer with a constant learning rate, received one driven by "
                f"{type(self._schedule).__name__}",
                key=_LR_KEY,
                hint="a schedule owns the learning rate; remove it to set the rate directly",
            )
        self._lr = float(value)

    @property
    def schedule(self) -> LRSchedule | None:
        return self._schedule

    # -- the step --------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One Keras ``apply_gradients`` over every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        work: list[tuple[dict[str, Any], list[Tensor], list[Tensor]]] = []
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                work.append((group, params, [p.grad for p in params]))
        if not work:
            return loss
        clipped = self._clip([g for _, _, grads in work for g in grads])
        lr = self.learning_rate
        start = 0
        for group, params, grads in work:
            group_grads = clipped[start : start + len(grads)]
            start += len(grads)
            info = StepInfo(lr, self.iterations + 1, _np_float(params[0].dtype))
            if self.weight_decay is not None:
                torch._foreach_mul_(params, info.scalar(1 - info.f(self.weight_decay) * info.f(lr)))
            self._update(group, params, group_grads, info)
        self._after_step()
        self.iterations += 1
        return loss

    def _clip(self, grads: list[Tensor]) -> list[Tensor]:
        """Keras's clipnorm (per tensor), global_clipnorm (all tensors) or clipvalue."""
        if self.clipnorm:
            norms = torch._foreach_clamp_min(torch._foreach_norm(grads), self.clipnorm)
            return list(torch._foreach_div(torch._foreach_mul(grads, self.clipnorm), norms))
        if self.global_clipnorm:
            norms = torch._foreach_norm(grads)
            device = grads[0].device
            total = torch.linalg.vector_norm(torch.stack([n.to(device) for n in norms]))
            # min(1/norm, 1/clip) * clip: 1 when the norm is small (also when it is 0), and NaN
            # when the norm is not finite, so a bad gradient is visible rather than silently zeroed.
            scale = self.global_clipnorm * torch.clamp_max(total.reciprocal(), 1 / self.global_clipnorm)
            scale = scale + (total - total)
            return list(torch._foreach_mul(grads, scale))
        if self.clipvalue:
            v = self.clipvalue
            return list(torch._foreach_clamp_max(torch._foreach_clamp_min(grads, -v), v))
        return grads

    def _buffers(self, params: list[Tensor], name: str, fill: float = 0.0) -> list[Tensor]:
        """The state tensor ``name`` of each parameter, created (on its device) on first use."""
        out = []
        for p in params:
            state = self.state[p]
            if name not in state:
                state[name] = torch.full_like(p, fill, memory_format=torch.preserve_format)
            out.append(state[name])
        return out

    def _update(self, group: Group, params: list[Tensor], grads: list[Tensor], s: StepInfo) -> None:
        """Apply the rule in place to ``params`` (all with a gradient) of one param group."""
        raise NotImplementedError

    def _after_step(self) -> None:
        """Hook for optimizer-wide state updated once per step (Nadam's momentum product)."""

    # -- checkpointing ---------------------------------------------------------------------------
    def _extra_state(self) -> dict[str, Any]:
        """Host-side state torch does not know about; the lr is None when a schedule drives it."""
        return {
            "iterations": self.iterations,
            "learning_rate": None if self._schedule is not None else self._lr,
        }

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        self.iterations = int(extra["iterations"])
        if self._schedule is None and extra.get("learning_rate") is not None:
            self._lr = float(extra["learning_rate"])

    def state_dict(self) -> dict[str, Any]:
        """torch's layout (state by parameter index, groups listing indices) plus ``iterations`` and
        ``learning_rate``: enough for an exact resume.

        A constant lr is saved because callbacks such as ReduceLROnPlateau change it mid-run.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            ids = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append({k: v for k, v in group.items() if k != "params"} | {"params": ids})
        state = {index[id(p)]: dict(slots) for p, slots in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups, **self._extra_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "iterations" not in state_dict:
            raise ArtifactError(
                "expected an optimizer state saved by trainctl (with 'iterations'), "
                "received a plain torch optimizer state",
                key="compile.optimizer",
            )
        saved = state_dict["param_groups"]
        sizes = ([len(g["params"]) for g in self.param_groups], [len(g["params"]) for g in saved])
        if sizes[0] != sizes[1]:
            raise ValueError(f"expected parameter groups of sizes {sizes[0]}, received {sizes[1]} in the saved state")
        by_index = {
            i: p
            for saved_group, group in zip(saved, self.param_groups, strict=True)
            for i, p in zip(saved_group["params"], group["params"], strict=True)
        }
        self.state = defaultdict(dict)
        for i, slots in state_dict["state"].items():
            p = by_index[int(i)]
            # slots follow their parameter's device and (floating) dtype, as in torch
            self.state[p] = {
                k: v.to(device=p.device, dtype=p.dtype if v.is_floating_point() else v.dtype) for k, v in slots.items()
            }
        self.param_groups = [
            {k: v for k, v in saved_group.items() if k != "params"} | {"params": group["params"]}
            for saved_group, group in zip(saved, self.param_groups, strict=True)
        ]
        self._load_extra_state(state_dict)


class SGD(KerasOptimizer):
    """``m = momentum*m - lr*g``; ``w += m``, or ``w += momentum*m - lr*g`` with Nesterov."""

    HYPER: ClassVar[dict[str, Hyper]] = {"momentum": 0.0, "nesterov": False}
    DEFAULT_LR: ClassVar[float] = 0.01

    def _update(self, group: Group, params: list[Tensor], grads: list[Tensor], s: StepInfo) -> None:
        momentum, lr = float(group["momentum"]), s.lr_cast
        if momentum == 0:
            torch._foreach_add_(params, grads, alpha=-lr)
            return
        m = self._buffers(params, "momentum")
        torch._foreach_mul_(m, momentum)
        torch._foreach_add_(m, grads, alpha=-lr)
        if group["nesterov"]:
            torch._foreach_add_(params, grads, alpha=-lr)
            torch._foreach_add_(params, m, alpha=momentum)
        else:
            torch._foreach_add_(params, m)


class Adam(KerasOptimizer):
    """``w -= lr*sqrt(1-b2^t)/(1-b1^t) * m/(sqrt(v)+eps)`` (epsilon-hat), optionally AMSGrad."""

    HYPER: ClassVar[dict[str, Hyper]] = {
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-7,
        "amsgrad": False,
    }

    def _update(self, group: Group, params: list[Tensor], grads: list[Tensor], s: StepInfo) -> None:
        b1, b2, eps = float(group["beta_1"]), float(group["beta_2"]), float(group["epsilon"])
        f, t = s.f, s.f(s.t)
        alpha = s.scalar(f(s.lr) * np.sqrt(1 - f(b2) ** t) / (1 - f(b1) ** t))
        m = self._buffers(params, "momentum")
        v = self._buffers(params, "velocity")
        _decay_(m, grads, b1)
        _decay_(v, torch._foreach_mul(grads, grads), b2)
        if group["amsgrad"]:
            v_hat = self._buffers(params, "velocity_hat")
            torch._foreach_maximum_(v_hat, v)
            v = v_hat
        denom = torch._foreach_add(torch._foreach_sqrt(v), eps)
        steps = torch._foreach_div(torch._foreach_mul(m, alpha), denom)
        torch._foreach_add_(params, steps, alpha=-1)


class AdamW(Adam):
    """Adam with Keras's default decoupled ``weight_decay=0.004``."""

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        learning_rate: float | LRSchedule | None = None,
        weight_decay: float | None = 0.004,
        **kwargs: Any,
    ) -> None:
        super().__init__(params, learning_rate, weight_decay, **kwargs)


class RMSprop(KerasOptimizer):
    """``v = rho*v + (1-rho)*g^2``; ``w -= lr*g/sqrt(v [- a^2] + eps)`` (eps inside the root).

    With momentum, the buffer accumulates the scaled increments (``mom = momentum*mom + inc``).
    """

    HYPER: ClassVar[dict[str, Hyper]] = {
        "rho": 0.9,
        "momentum": 0.0,
        "epsilon": 1e-7,
        "centered": False,
    }

    def _update(self, group: Group, params: list[Tensor], grads: list[Tensor], s: StepInfo) -> None:
        rho, eps, momentum = float(group["rho"]), float(group["epsilon"]), float(group["momentum"])
        v = self._buffers(params, "velocity")
        _decay_(v, torch._foreach_mul(grads, grads), rho)
        denom = torch._foreach_add(v, eps)
        if group["centered"]:
            avg = self._buffers(params, "average_gradient")
            _decay_(avg, grads, rho)
            torch._foreach_add_(denom, torch._foreach_mul(avg, avg), alpha=-1)
        torch._foreach_sqrt_(denom)
        increments: tuple[Tensor, ...] | list[Tensor] = torch._foreach_div(torch._foreach_mul(grads, s.lr_cast), denom)
        if momentum > 0:
            mom = self._buffers(params, "momentum")
            torch._foreach_mul_(mom, momentum)
            torch._foreach_add_(mom, increments)
            increments = mom
        torch._foreach_add_(params, increments, alpha=-1)


class Adagrad(KerasOptimizer):
    """``acc += g^2`` (from ``initial_accumulator_value``); ``w -= lr*g/sqrt(acc + eps)``."""

    HYPER: ClassVar[dict[str, Hyper]] = {"initial_accumulator_value": 0.1, "epsilon": 1e-7}

    def _update(self, group: Group, params: list[Tensor], grads: list[Tensor], s: StepInfo) -> None:
        acc = self._buffers(params, "accumulator", float(group["initial_accumulator_value"]))
        torch._foreach_add_(acc, torch._foreach_mul(grads, grads))
        denom = torch._foreach_sqrt(torch._foreach_add(acc, float(group["epsilon"])))
        steps = torch._foreach_div(torch._foreach_mul(grads, s.lr_cast), denom)
        torch._foreach_add_(params, steps, alpha=-1)


class Adadelta(KerasOptimizer):
    """Zeiler's rule scaled by ``lr`` (Keras default 0.001, not torch's 1.0); eps inside roots."""

    HYPER: ClassVar[dict[str, Hyper]] = {"rho": 0.95, "epsilon": 1e-7}

    def _update(self, group: Group, params: list[Tensor], grads: list[Tensor], s: StepInfo) -> None:
        rho, eps = float(group["rho"]), float(group["epsilon"])
        acc_g = self._buffers(params, "accumulated_grad")
        acc_d = self._buffers(params, "accumulated_delta_var")
        _decay_(acc_g, torch._foreach_mul(grads, grads), rho)
        rms_d = torch._foreach_sqrt(torch._foreach_add(acc_d, eps))
        rms_g = torch._foreach_sqrt(torch._foreach_add(acc_g, eps))
        delta = torch._foreach_div(torch._foreach_mul(rms_d, grads), rms_g)  # minus Keras's delta
        _decay_(acc_d, torch._foreach_mul(delta, delta), rho)
        torch._foreach_add_(params, delta, alpha=-s.lr_cast)


class Adamax(KerasOptimizer):
    """``u = max(b2*u, |g|)``; ``w -= lr*m / ((1-b1^t) * (u + eps))``."""

    HYPER: ClassVar[dict[str, Hyper]] = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}

    def _update(self, group: Group, params: list[Tensor], grads: list[Tensor], s: StepInfo) -> None:
        b1, b2, eps = float(group["beta_1"]), float(group["beta_2"]), float(group["epsilon"])
        correction = s.scalar(1 - s.f(b1) ** s.f(s.t))
        m = self._buffers(params, "momentum")
        u = self._buffers(params, "norm")
        _decay_(m, grads, b1)
        torch._foreach_mul_(u, b2)
        torch._foreach_maximum_(u, torch._foreach_abs(grads))
        denom = torch._foreach_mul(torch._foreach_add(u, eps), correction)
        steps = torch._foreach_div(torch._foreach_mul(m, s.lr_cast), denom)
        torch._foreach_add_(params, steps, alpha=-1)


class Nadam(KerasOptimizer):
    """Keras 3 Nadam: momentum cache ``u_t = b1*(1 - 0.5*0.96^t)`` and its running product.

    Keras 3 dropped Keras 2's ``schedule_decay`` (0.004) from the exponent. The product is
    optimizer-wide state, a host float saved in the state dict.
    """

    HYPER: ClassVar[dict[str, Hyper]] = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.u_product: float = 1.0
        self._next_u_product: float | None = None

    def _update(self, group: Group, params: list[Tensor], grads: list[Tensor], s: StepInfo) -> None:
        b1, b2, eps = float(group["beta_1"]), float(group["beta_2"]), float(group["epsilon"])
        f, t = s.f, s.f(s.t)
        u_t = f(b1) * (1 - f(0.5) * f(0.96) ** t)
        u_next = f(b1) * (1 - f(0.5) * f(0.96) ** (t + 1))
        u_prod = f(self.u_product) * u_t
        u_prod_next = u_prod * u_next
        if self._next_u_product is None:  # one product per step, shared by all groups
            self._next_u_product = float(u_prod)
        m = self._buffers(params, "momentum")
        v = self._buffers(params, "velocity")
        _decay_(m, grads, b1)
        _decay_(v, torch._foreach_mul(grads, grads), b2)
        m_hat = torch._foreach_div(torch._foreach_mul(m, s.scalar(u_next)), s.scalar(1 - u_prod_next))
        g_part = torch._foreach_div(torch._foreach_mul(grads, s.scalar(1 - u_t)), s.scalar(1 - u_prod))
        torch._foreach_add_(m_hat, g_part)
        v_hat = torch._foreach_div(v, s.scalar(1 - f(b2) ** t))
        denom = torch._foreach_add(torch._foreach_sqrt(v_hat), eps)
        steps = torch._foreach_div(torch._foreach_mul(m_hat, s.lr_cast), denom)
        torch._foreach_add_(params, steps, alpha=-1)

    def _after_step(self) -> None:
        if self._next_u_product is not None:
            self.u_product, self._next_u_product = self._next_u_product, None

    def _extra_state(self) -> dict[str, Any]:
        return {**super()._extra_state(), "u_product": self.u_product}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        super()._load_extra_state(extra)
        self.u_product = float(extra["u_product"])


OPTIMIZERS: dict[str, type[KerasOptimizer]] = {
    cls.__name__: cls for cls in (SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, Adamax, Nadam)
}


def build_optimizer(spec: Any, params: Iterable[Tensor]) -> KerasOptimizer:
    """The optimizer for a validated ``compile.optimizer`` spec, over ``params``."""
    cls = OPTIMIZERS.get(getattr(spec, "type", ""))
    if cls is None:
        raise ConfigError(
            f"expected one of {', '.join(OPTIMIZERS)}, received {getattr(spec, 'type', spec)!r}",
            key="compile.optimizer",
        )
    kwargs = spec.kwargs()
    lr = kwargs.pop("learning_rate")
    learning_rate: float | LRSchedule = float(lr) if isinstance(lr, float | int) else build_schedule(lr)
    return cls(params, learning_rate=learning_rate, **kwargs)
