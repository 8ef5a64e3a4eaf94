"""Build the same Functional model in trainctl and in real Keras from one config dict.

Our YAML keys are Keras's argument names, so the Keras side is a direct translation: each entry
becomes ``getattr(keras.layers, type)(name=..., **args)`` called on the tensors its ``inputs`` name,
and a ``call:`` entry calls the named Keras layer object again.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch

from trainctl.config import load_config
from trainctl.model.sequential import Model, build_model


def build_ours(model_cfg: dict[str, Any], seed: int = 0) -> Model:
    cfg = {"data": {"source": "synthetic", "kind": "random"}, "model": model_cfg, "compile": {"loss": "mse"}}
    torch.manual_seed(seed)
    model = build_model(load_config(None, text=json.dumps(cfg)).config.model)
    with torch.no_grad():  # non-zero biases and BN statistics, so a misplaced weight shows
        g = torch.Generator().manual_seed(seed + 1)
        for name, p in [*model.named_parameters(), *model.named_buffers()]:
            if p.is_floating_point():
                p.add_(0.1 * torch.randn(p.shape, generator=g))
                if "var" in name:
                    p.abs_()
    return model.eval()


def build_keras(keras: Any, model_cfg: dict[str, Any]) -> Any:
    tensors: dict[str, Any] = {}
    ins = []
    for spec in model_cfg["inputs"]:
        t = keras.Input(shape=tuple(spec["shape"]), dtype=spec.get("dtype", "float32"), name=spec["name"])
        tensors[spec["name"]] = t
        ins.append(t)
    prev = ins[0] if len(ins) == 1 else None
    objects: dict[str, Any] = {}
    for entry in model_cfg["layers"]:
        refs = entry.get("inputs")
        arg = prev if refs is None else [tensors[r] for r in refs] if isinstance(refs, list) else tensors[refs]
        if "call" in entry:
            layer = objects[entry["call"]]
        else:
            kwargs = {k: v for k, v in entry.items() if k not in ("type", "name", "inputs")}
            layer = getattr(keras.layers, entry["type"])(name=entry["name"], **kwargs)
            objects[entry["name"]] = layer
        prev = tensors[entry["name"]] = layer(arg)
    outs = [tensors[o] for o in model_cfg.get("outputs", [model_cfg["layers"][-1]["name"]])]
    return keras.Model(ins if len(ins) > 1 else ins[0], outs if len(outs) > 1 else outs[0], name=model_cfg["name"])


def copy_weights(ours: Model, theirs: Any) -> None:
    """Our weights into the Keras model, layer by layer by name, in Keras's variable order."""
    for row, weights in ours.keras_weights():
        if weights:
            theirs.get_layer(row.name).set_weights([t.detach().numpy() for _, t in weights])


def inputs_for(model_cfg: dict[str, Any], n: int = 5, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for spec in model_cfg["inputs"]:
        shape = (n, *spec["shape"])
        if spec.get("dtype", "float32").startswith("int"):
            out.append(rng.integers(0, 10, size=shape).astype(spec["dtype"]))
        else:
            out.append(rng.normal(size=shape).astype(np.float32))
    return out


def predict_ours(model: Model, xs: list[np.ndarray]) -> list[np.ndarray]:
    with torch.no_grad():
        ts = [torch.from_numpy(x) for x in xs]
        out = model(tuple(ts) if len(ts) > 1 else ts[0])
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


def predict_keras(keras: Any, model: Any, xs: list[np.ndarray]) -> list[np.ndarray]:
    out = model(xs if len(xs) > 1 else xs[0], training=False)
    return [keras.ops.convert_to_numpy(o) for o in (out if isinstance(out, list | tuple) else [out])]
