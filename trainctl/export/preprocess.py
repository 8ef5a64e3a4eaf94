"""The run's fitted ``data.x`` steps as a torch module, so an exported model takes raw inputs.

Each step mirrors :func:`trainctl.data.preprocess._apply` on tensors: the same arithmetic in the
same dtype (a floating input keeps its dtype, anything else becomes float32), then float32 at the
end unless a ``cast`` step chose the dtype. Statistics are constants of the graph.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainctl.errors import ArtifactError

DTYPES = {
    "float16": torch.float16,
    "float32": torch.float32,
    "float64": torch.float64,
    "bfloat16": torch.bfloat16,
    "int8": torch.int8,
    "int16": torch.int16,
    "int32": torch.int32,
    "int64": torch.int64,
    "uint8": torch.uint8,
    "bool": torch.bool,
}


def _float(x: torch.Tensor) -> torch.Tensor:
    return x if x.is_floating_point() else x.to(torch.float32)


class RawInputs(nn.Module):
    """``Preprocessor.transform_x`` as a graph: scale, standardize, normalize, clip, reshape, flatten, cast."""

    def __init__(self, steps: list[Any]) -> None:
        super().__init__()
        self.ops: list[tuple[str, Any]] = []
        for i, step in enumerate(steps):
            if step.op in ("standardize", "normalize"):
                lo, hi = ("mean", "std") if step.op == "standardize" else ("min", "range")
                self.register_buffer(f"a{i}", torch.as_tensor(step.stats[lo]), persistent=True)
                self.register_buffer(f"b{i}", torch.as_tensor(step.stats[hi]), persistent=True)
            elif step.op == "cast" and str(step.arg) not in DTYPES:
                raise ArtifactError(
                    f"expected a cast to one of {', '.join(DTYPES)} for export, received {step.arg!r}",
                    key=step.key,
                )
            elif step.op not in ("scale", "clip", "reshape", "flatten", "cast", "standardize", "normalize"):
                raise ArtifactError(
                    f"the preprocessing step {step.op!r} cannot be folded into an exported model",
                    key=step.key,
                    hint="export without --raw-inputs and apply the step before calling the model",
                )
            self.ops.append((step.op, step.arg))
        self.casts = any(op == "cast" for op, _ in self.ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, (op, arg) in enumerate(self.ops):
            if op == "scale":
                x = _float(x) / float(arg)
            elif op in ("standardize", "normalize"):
                x = _float(x)
                x = (x - getattr(self, f"a{i}").to(x.dtype)) / getattr(self, f"b{i}").to(x.dtype)
            elif op == "clip":
                x = torch.clamp(_float(x), float(arg[0]), float(arg[1]))
            elif op == "flatten":
                x = x.reshape(x.shape[0], -1)
            elif op == "reshape":
                x = x.reshape(x.shape[0], *[int(d) for d in arg])
            elif op == "cast":
                if arg == "bfloat16":  # numpy keeps float32 storage of bfloat16-rounded values
                    x = x.to(torch.float32).to(torch.bfloat16).to(torch.float32)
                else:
                    x = x.to(DTYPES[str(arg)])
        return x if self.casts else x.to(torch.float32)
