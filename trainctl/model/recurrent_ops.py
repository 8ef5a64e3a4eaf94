"""Keras recurrences (SimpleRNN, LSTM, GRU) as functions of Keras-layout weights.

The common case runs torch's fused kernels (``torch.lstm``/``torch.gru``/``torch.rnn_tanh``/
``torch.rnn_relu``, cuDNN on GPU) on weights re-laid out per call (a transpose, and for GRU a
swap of the first two gate blocks: Keras [z, r, h] vs torch [r, z, n]). Only what no fused kernel
computes loops over timesteps: Keras's per-sequence recurrent-dropout masks, and activations other
than tanh/sigmoid.

Masking (Keras ``mask_zero``) is exact for any mask, padded before, after or in between: Keras
skips a masked step (state carried, output = the previous output, or zeros with
``zero_output_for_mask``). So each sequence's valid steps are moved to the front, in order, the
recurrence runs once over all of them, and every timestep then reads the output of the last valid
step at or before it. A recurrence is causal, so the padding moved to the back changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from trainctl.model import activations, shard

GATES = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}


@dataclass(frozen=True)
class Recurrence:
    """What a recurrent layer computes, apart from its weights."""

    kind: str  # SimpleRNN, LSTM or GRU
    units: int
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"
    go_backwards: bool = False
    return_sequences: bool = False
    zero_output_for_mask: bool = False
    dropout: float = 0.0
    recurrent_dropout: float = 0.0

    @property
    def gates(self) -> int:
        return GATES[self.kind]

    @property
    def fusable(self) -> bool:
        """torch has a kernel for these activations."""
        if self.kind == "SimpleRNN":
            return self.activation in ("tanh", "relu")
        return self.activation == "tanh" and self.recurrent_activation == "sigmoid"


def _dropout_mask(shape: tuple[int, ...], rate: float, like: Tensor) -> Tensor:
    """Keras's ``dropout(ones, rate)``: kept entries are 1/(1-rate), the rest 0."""
    # a distributed step: this rank's rows of the global batch's masks (trainctl.model.shard)
    mask = shard.global_draw(shape[0], lambda rows: like.new_empty((rows, *shape[1:])).bernoulli_(1.0 - rate))
    return mask.div_(1.0 - rate)


def _torch_weights(r: Recurrence, kernel: Tensor, recurrent: Tensor, bias: Tensor | None) -> list[Tensor]:
    """Keras layout -> torch's ``[w_ih, w_hh, b_ih, b_hh]`` (views, and for GRU one gate swap)."""
    w_ih, w_hh = kernel.t(), recurrent.t()
    if r.kind == "GRU":
        u = r.units
        w_ih = torch.cat([w_ih[u : 2 * u], w_ih[:u], w_ih[2 * u :]])
        w_hh = torch.cat([w_hh[u : 2 * u], w_hh[:u], w_hh[2 * u :]])
    if bias is None:
        return [w_ih, w_hh]
    if r.kind == "GRU":
        u = r.units
        b = torch.cat([bias[:, u : 2 * u], bias[:, :u], bias[:, 2 * u :]], dim=1)
        return [w_ih, w_hh, b[0], b[1]]
    return [w_ih, w_hh, bias, torch.zeros_like(bias)]  # Keras has one bias: torch's b_hh is 0


def _fused(r: Recurrence, x: Tensor, weights: list[Tensor], train: bool) -> Tensor:
    h0 = x.new_zeros(1, x.shape[0], r.units)
    has_bias = len(weights) == 4
    if r.kind == "LSTM":
        return torch.lstm(x, (h0, h0), weights, has_bias, 1, 0.0, train, False, True)[0]
    fn = torch.gru if r.kind == "GRU" else torch.rnn_tanh if r.activation == "tanh" else torch.rnn_relu
    return fn(x, h0, weights, has_bias, 1, 0.0, train, False, True)[0]


def _loop(r: Recurrence, x: Tensor, kernel: Tensor, recurrent: Tensor, bias: Tensor | None,
          in_masks: Tensor | None, rec_masks: Tensor | None) -> Tensor:  # fmt: skip
    """Keras's cell step by step (``implementation=1`` when masks are given: one mask per gate)."""
    n, steps, features = x.shape
    g, u = r.gates, r.units
    act: Callable[[Tensor], Tensor] = activations.get(r.activation)
    ract: Callable[[Tensor], Tensor] = activations.get(r.recurrent_activation)
    if in_masks is None:
        xw = x @ kernel
    else:  # (N, G, F): every gate sees its own dropped-out copy of the input, fixed over time
        xg = x.unsqueeze(2) * in_masks.unsqueeze(1)
        xw = torch.einsum("ntgf,fgu->ntgu", xg, kernel.view(features, g, u)).reshape(n, steps, g * u)
    rec_bias = None
    if bias is not None:
        xw = xw + (bias[0] if r.kind == "GRU" else bias)
        rec_bias = bias[1] if r.kind == "GRU" else None
    h = x.new_zeros(n, u)
    c = x.new_zeros(n, u)
    outputs = []
    for t in range(steps):
        if rec_masks is None:
            hw = h @ recurrent
        else:
            hw = torch.einsum("ngu,ugv->ngv", h.unsqueeze(1) * rec_masks, recurrent.view(u, g, u)).reshape(n, g * u)
        if rec_bias is not None:
            hw = hw + rec_bias
        xt = xw[:, t]
        if r.kind == "LSTM":
            i, f, cc, o = (xt + hw).chunk(4, dim=1)
            c = ract(f) * c + ract(i) * act(cc)
            h = ract(o) * act(c)
        elif r.kind == "GRU":
            xz, xr, xh = xt.chunk(3, dim=1)
            hz, hr, hh = hw.chunk(3, dim=1)
            z = ract(xz + hz)
            h = z * h + (1.0 - z) * act(xh + ract(xr + hr) * hh)
        else:
            h = act(xt + hw)
        outputs.append(h)
    return torch.stack(outputs, dim=1)


def _compact(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Valid steps first (stable), and per timestep how many valid steps it has seen."""
    order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)
    x = x.gather(1, order.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
    return x, mask.cumsum(dim=1)


def _uncompact(r: Recurrence, out: Tensor, mask: Tensor, seen: Tensor) -> Tensor:
    """Each timestep's Keras output: the last valid step's output, zeros before any (or when
    ``zero_output_for_mask`` and the step is masked)."""
    if not r.return_sequences:
        seen, mask = seen[:, -1:], mask[:, -1:]
    picked = out.gather(1, (seen - 1).clamp(min=0).unsqueeze(-1).expand(-1, -1, out.shape[-1]))
    keep = seen > 0
    if r.zero_output_for_mask:
        keep = keep & mask
    picked = torch.where(keep.unsqueeze(-1), picked, torch.zeros((), dtype=out.dtype, device=out.device))
    return picked if r.return_sequences else picked[:, 0]


def run(r: Recurrence, x: Tensor, kernel: Tensor, recurrent: Tensor, bias: Tensor | None, *,
        mask: Tensor | None = None, training: bool = False) -> Tensor:  # fmt: skip
    """The layer's output for ``x`` (N, T, F): (N, T, units) with return_sequences, else (N, units).

    ``mask`` (N, T) bool marks the valid timesteps. With ``go_backwards`` the sequence is read
    from the end and, as in Keras, the returned sequence is in that reversed order.
    """
    if r.go_backwards:
        x = x.flip(1)
        mask = None if mask is None else mask.flip(1)
    n, features = x.shape[0], x.shape[-1]
    in_masks = rec_masks = None
    per_gate = training and r.recurrent_dropout > 0.0  # Keras then switches to implementation=1
    if training and r.dropout > 0.0:
        if per_gate:
            in_masks = _dropout_mask((n, r.gates, features), r.dropout, x)
        else:  # one mask per sequence, the same at every timestep
            x = x * _dropout_mask((n, 1, features), r.dropout, x)
    if per_gate:
        rec_masks = _dropout_mask((n, r.gates, r.units), r.recurrent_dropout, x)
    seen = None
    if mask is not None:
        x, seen = _compact(x, mask)
    if in_masks is None and rec_masks is None and r.fusable:
        out = _fused(r, x, _torch_weights(r, kernel, recurrent, bias), training)
    else:
        out = _loop(r, x, kernel, recurrent, bias, in_masks, rec_masks)
    if mask is not None and seen is not None:
        return _uncompact(r, out, mask, seen)
    return out if r.return_sequences else out[:, -1]
