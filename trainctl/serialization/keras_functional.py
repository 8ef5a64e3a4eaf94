"""Keras Functional model config -> trainctl graph :class:`ModelSpec` (no torch, no Keras).

Reads Keras 3's node form (``{"args": [...], "kwargs": {...}}``) and Keras 2's
(``[[name, node, tensor, kwargs], ...]``), in any layer order: nodes are replayed in passes as Keras
does, each once its inputs exist. A layer called several times becomes one layer entry plus
``call:`` entries. Facts: ``shared/notes/keras-functional.md`` §1.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from trainctl.config.schema import ModelSpec
from trainctl.errors import ArtifactError

# call keywords Keras records in nodes that carry no information at inference (keras-functional §1.3)
_HARMLESS_KWARGS = {"mask": None, "training": False}


def _triple(value: Any, where: str) -> tuple[str, int]:
    """A tensor reference -> (layer name, node index); only single-output layers are supported."""
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        value = (value.get("config") or {}).get("keras_history")
    if not (isinstance(value, list | tuple) and len(value) >= 3 and isinstance(value[0], str)):
        raise ArtifactError(f"{where}: expected a tensor reference [layer, node, tensor], received {value!r}")
    if value[2] != 0:
        raise ArtifactError(
            f"{where}: expected output 0 of {value[0]!r}, received output {value[2]} "
            "(layers with several outputs are not supported)"
        )
    return value[0], int(value[1])


def _node(node: Any, where: str) -> tuple[list[tuple[str, int]], bool]:
    """One inbound node -> (input references, whether the layer was called on a list)."""
    if isinstance(node, dict):  # Keras 3
        args, kwargs = node.get("args") or [], node.get("kwargs") or {}
        for key, value in kwargs.items():
            if key not in _HARMLESS_KWARGS or value != _HARMLESS_KWARGS[key]:
                raise ArtifactError(f"{where}: call option {key}={value!r} is not supported by trainctl")
        if len(args) != 1:
            raise ArtifactError(
                f"{where}: expected a call on one tensor or one list of tensors, received {len(args)} arguments"
            )
        first = args[0]
        if isinstance(first, list):
            return [_triple(t, where) for t in first], True
        return [_triple(first, where)], False
    if isinstance(node, list):  # Keras 2: one [name, node, tensor, kwargs] per input tensor
        refs = [_triple(t, where) for t in node]
        return refs, len(refs) > 1
    raise ArtifactError(f"{where}: expected an inbound node, received {node!r}")


def _ends(value: Any, what: str) -> list[tuple[str, int]]:
    if isinstance(value, dict):  # dict inputs/outputs: Keras flattens them by sorted key
        return [_triple(value[k], what) for k in sorted(value)]
    if isinstance(value, list) and value and isinstance(value[0], str):
        return [_triple(value, what)]
    if isinstance(value, list) and value:
        return [_triple(v, what) for v in value]
    raise ArtifactError(f"{what}: expected [layer, node, tensor] triples, received {value!r}")


def functional_spec_from_config(config: Any) -> ModelSpec:
    from trainctl.serialization.keras_json import _label, _layer_from, _validation_error

    if not isinstance(config, dict) or not isinstance(config.get("layers"), list) or not config["layers"]:
        raise ArtifactError("expected a Functional model whose config.layers lists its layers, received none")
    if config.get("trainable", True) is not True:
        raise ArtifactError("model: option trainable=false on the whole model is not supported")
    inputs: dict[str, dict[str, Any]] = {}
    layers: dict[str, tuple[int, dict[str, Any], list[tuple[list[tuple[str, int]], bool]]]] = {}
    for i, entry in enumerate(config["layers"]):
        where = _label(i, entry)
        parsed = _layer_from(entry, where)
        name = entry.get("name") or (entry.get("config") or {}).get("name")
        if not isinstance(name, str):
            raise ArtifactError(f"{where}: expected a 'name'")
        if name in inputs or name in layers:
            raise ArtifactError(f"{where}: the name {name!r} is used twice in the model")
        if parsed["type"] == "InputLayer":
            if "shape" not in parsed:
                raise ArtifactError(f"{where}: expected a batch_shape whose batch axis is None")
            inputs[name] = {"name": name, "shape": parsed["shape"]}
            if "dtype" in parsed:
                inputs[name]["dtype"] = parsed["dtype"]
            continue
        nodes = [_node(n, f"{where} node {k}") for k, n in enumerate(entry.get("inbound_nodes") or [])]
        if not nodes:
            continue  # a layer not called inside this model (Keras leaves it out too)
        parsed["name"] = name
        layers[name] = (i, parsed, nodes)

    alias: dict[tuple[str, int], str] = {(n, 0): n for n in inputs}
    taken = set(inputs) | set(layers)

    def alias_of(layer: str, k: int) -> str:
        if k == 0:
            return layer
        name = f"{layer}_call{k}"
        while name in taken:
            name += "_"
        taken.add(name)
        return name

    out: list[dict[str, Any]] = []
    done = {n: 0 for n in layers}  # next node to place, per layer
    pending = sum(len(v[2]) for v in layers.values())
    while pending:
        placed = 0
        for name, (_, parsed, nodes) in layers.items():
            while done[name] < len(nodes):
                k = done[name]
                refs, listed = nodes[k]
                if not all(r in alias for r in refs):
                    break
                names = [alias[r] for r in refs]
                arg: Any = names if listed else names[0]
                if k == 0:
                    out.append({**parsed, "inputs": arg})
                else:
                    out.append({"call": name, "name": alias_of(name, k), "inputs": arg})
                alias[(name, k)] = out[-1]["name"]
                done[name] += 1
                placed += 1
        if not placed:
            waiting = [r for n, (_, _, nodes) in layers.items() if done[n] < len(nodes) for r in nodes[done[n]][0]]
            unknown = sorted({r[0] for r in waiting if r[0] not in layers and r[0] not in inputs})
            raise ArtifactError(
                "model: the graph is disconnected or cyclic: "
                + (f"nodes refer to unknown layers {', '.join(unknown)}" if unknown else "no node can run next")
            )
        pending -= placed
    in_refs = _ends(config.get("input_layers"), "model: input_layers")
    out_refs = _ends(config.get("output_layers"), "model: output_layers")
    for ref in in_refs:
        if ref[0] not in inputs:
            raise ArtifactError(f"model: input_layers names {ref[0]!r}, which is not an InputLayer")
    for ref in out_refs:
        if ref not in alias:
            raise ArtifactError(f"model: output_layers names {ref[0]!r} node {ref[1]}, which the model does not have")
    spec = {
        "name": config.get("name") or "functional",
        "inputs": [inputs[r[0]] for r in in_refs],
        "layers": out,
        "outputs": [alias[r] for r in out_refs],
    }
    try:
        return ModelSpec.model_validate(spec)
    except ValidationError as exc:
        labels = [f"layer {e.get('name')!r}" for e in out]
        raise _validation_error(exc, labels) from None
