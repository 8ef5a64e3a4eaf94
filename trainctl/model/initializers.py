"""Keras initializers on torch tensors, with Keras's fan rules and defaults.

Tensors are in Keras layout (Dense kernel ``(in, out)``, conv kernel ``(..., in, out)``), so fans
are computed exactly as Keras computes them: receptive field times the last two axes.
"""

from __future__ import annotations

import math
from typing import Any

import torch


def fans(shape: tuple[int, ...]) -> tuple[float, float]:
    """Keras ``compute_fans``: for rank > 2 the leading axes are the receptive field."""
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    receptive = math.prod(shape[:-2])
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


def _generator(seed: int | None) -> torch.Generator | None:
    if seed is None:
        return None
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def _truncated_normal(t: torch.Tensor, std: float, mean: float, gen: torch.Generator | None) -> None:
    # Keras truncates at two standard deviations; resample outside values (vectorised, bounded).
    with torch.no_grad():
        t.normal_(0.0, 1.0, generator=gen)
        for _ in range(100):
            bad = t.abs() > 2.0
            if not bool(bad.any()):
                break
            t[bad] = torch.empty(int(bad.sum()), dtype=t.dtype).normal_(0.0, 1.0, generator=gen)
        t.mul_(std).add_(mean)


def _variance_scaling(t: torch.Tensor, scale: float, mode: str, distribution: str, seed: int | None) -> None:
    fan_in, fan_out = fans(tuple(t.shape))
    denom = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
    scale = scale / max(1.0, denom)
    gen = _generator(seed)
    with torch.no_grad():
        if distribution == "truncated_normal":
            # 0.879... is the stddev of a unit normal truncated to [-2, 2]
            _truncated_normal(t, math.sqrt(scale) / 0.87962566103423978, 0.0, gen)
        elif distribution == "untruncated_normal":
            t.normal_(0.0, math.sqrt(scale), generator=gen)
        else:
            limit = math.sqrt(3.0 * scale)
            t.uniform_(-limit, limit, generator=gen)


_SCALING = {
    "GlorotUniform": (1.0, "fan_avg", "uniform"),
    "GlorotNormal": (1.0, "fan_avg", "truncated_normal"),
    "HeUniform": (2.0, "fan_in", "uniform"),
    "HeNormal": (2.0, "fan_in", "truncated_normal"),
    "LecunUniform": (1.0, "fan_in", "uniform"),
    "LecunNormal": (1.0, "fan_in", "truncated_normal"),
}


def initialize(t: torch.Tensor, spec: Any) -> None:
    """Fill ``t`` (Keras layout) in place according to an initializer spec."""
    kind = spec.type
    seed = getattr(spec, "seed", None)
    with torch.no_grad():
        if kind in _SCALING:
            _variance_scaling(t, *_SCALING[kind], seed)
        elif kind == "VarianceScaling":
            _variance_scaling(t, spec.scale, spec.mode, spec.distribution, seed)
        elif kind == "Zeros":
            t.zero_()
        elif kind == "Ones":
            t.fill_(1.0)
        elif kind == "Constant":
            t.fill_(spec.value)
        elif kind == "RandomNormal":
            t.normal_(spec.mean, spec.stddev, generator=_generator(seed))
        elif kind == "RandomUniform":
            t.uniform_(spec.minval, spec.maxval, generator=_generator(seed))
        elif kind == "TruncatedNormal":
            _truncated_normal(t, spec.stddev, spec.mean, _generator(seed))
        elif kind == "Orthogonal":
            _orthogonal(t, spec.gain, _generator(seed))
        elif kind == "Identity":
            if t.dim() != 2:
                raise ValueError("Identity initializer needs a 2-D kernel")
            t.copy_(torch.eye(*t.shape, dtype=t.dtype) * spec.gain)
        else:  # pragma: no cover - the config registry and this table are tested together
            raise KeyError(kind)


def _orthogonal(t: torch.Tensor, gain: float, gen: torch.Generator | None) -> None:
    """Keras ``Orthogonal``: QR of a normal matrix shaped (prod(shape[:-1]), shape[-1])."""
    rows = math.prod(t.shape[:-1]) if t.dim() > 1 else 1
    cols = t.shape[-1]
    flat = torch.empty(max(rows, cols), min(rows, cols), dtype=torch.float64).normal_(generator=gen)
    q, r = torch.linalg.qr(flat)
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
    if rows < cols:
        q = q.T
    t.copy_((gain * q[:rows, :cols]).reshape(t.shape).to(t.dtype))
