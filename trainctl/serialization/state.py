"""Training state for exact resume: one safetensors file, written atomically after every epoch.

Tensors (model weights, optimizer slots, RNG states, callback tensors) are safetensors entries;
everything else (epoch, history, callback counters, optimizer hyper-parameters) is JSON in the
file's metadata. No pickle anywhere, so a state file from a stranger cannot run code.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from trainctl.atomic import atomic_write_bytes
from trainctl.errors import ArtifactError

STATE_FORMAT = 1
_T = "__tensor__:"


def _split(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace tensors in a nested structure by references, collecting them in ``tensors``."""
    if isinstance(obj, torch.Tensor):
        key = prefix or "root"
        tensors[key] = obj.detach().to("cpu").contiguous().clone()
        return _T + key
    if isinstance(obj, dict):
        return {"__dict__": [[_split(k, "", {}), _split(v, f"{prefix}/{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {
            "__list__": [_split(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)],
            "tuple": isinstance(obj, tuple),
        }
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"__float__": repr(obj)}
    return obj


def _join(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, str) and obj.startswith(_T):
        return tensors[obj[len(_T) :]]
    if isinstance(obj, dict):
        if "__dict__" in obj:
            return {_join(k, tensors): _join(v, tensors) for k, v in obj["__dict__"]}
        if "__list__" in obj:
            items = [_join(v, tensors) for v in obj["__list__"]]
            return tuple(items) if obj.get("tuple") else items
        if "__float__" in obj:
            return float(obj["__float__"])
    return obj


def save_state(path: Path, state: dict[str, Any], *, durable: bool = True) -> None:
    """Write a nested dict of tensors and plain values to ``path`` atomically."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _split(state, "", tensors)
    meta = {"format": "trainctl-state", "format_version": str(STATE_FORMAT), "skeleton": json.dumps(skeleton)}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(Path(path), st_save(tensors, metadata=meta), durable=durable)


def load_state(path: Path) -> dict[str, Any]:
    """Read a state file; any damage is an :class:`ArtifactError` naming the file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(f"{path}: missing; this run saved no resumable state") from None
    try:
        tensors = st_load(raw)
        meta = _metadata(raw)
    except (SafetensorError, ValueError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path}: not a readable state file ({exc})") from None
    if meta.get("format") != "trainctl-state":
        raise ArtifactError(f"{path}: not a trainctl state file")
    if meta.get("format_version") != str(STATE_FORMAT):
        raise ArtifactError(
            f"{path}: expected state format_version {STATE_FORMAT}, received {meta.get('format_version')}"
        )
    try:
        state = _join(json.loads(meta["skeleton"]), tensors)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError) as exc:
        raise ArtifactError(f"{path}: not a readable state file (damaged metadata: {exc!r})") from None
    if not isinstance(state, dict):
        raise ArtifactError(f"{path}: not a readable state file (expected a mapping, received {type(state).__name__})")
    return state


def _metadata(raw: bytes) -> dict[str, str]:
    if len(raw) < 8:
        raise ValueError("file is truncated")
    n = int.from_bytes(raw[:8], "little")
    if n <= 0 or 8 + n > len(raw):
        raise ValueError("file is truncated")
    header = json.loads(raw[8 : 8 + n])
    return dict(header.get("__metadata__", {}))
