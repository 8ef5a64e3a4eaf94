"""Keras HDF5 weight files, written and read with h5py only (never pickle).

Layouts (``shared/notes/keras-format.md`` §2): (a) the Keras 3 native ``.weights.h5`` (groups
keyed by snake-cased class name, datasets ``0, 1, ...``); (b) the legacy weights ``.h5`` and (c) the
legacy whole-model ``.h5`` (groups by layer name, ``weight_names`` attributes, matched by position).
As in Keras, a name ending in ``.weights.h5`` selects (a) and any other ``.h5``/``.hdf5`` (b)/(c).
Our model already stores weights in Keras layout, so both directions are plain copies.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
import torch

from trainctl.atomic import atomic_path
from trainctl.errors import ArtifactError
from trainctl.h5probe import H5Probe, checked
from trainctl.model.shapes import LayerInfo
from trainctl.serialization.keras_json import model_to_json

if TYPE_CHECKING:
    from trainctl.model.sequential import Sequential

KERAS_VERSION = "3.15.1"  # the Keras release whose layout these files follow
BACKEND = "torch"
HDF5_OBJECT_HEADER_LIMIT = 64512
TRAINING_CONFIG_DEFAULTS: dict[str, Any] = {
    "loss": None, "loss_weights": None, "metrics": None, "weighted_metrics": None,
    "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False,
}  # fmt: skip  # Keras splits longer attribute lists into name0, name1, ...

# Where a layer's variables sit below ``layers/<key>`` in native files (RNN weights are on the cell).
VARS_PATH: dict[str, str] = {"LSTM": "cell/vars", "GRU": "cell/vars", "SimpleRNN": "cell/vars"}

Weights = list[tuple[LayerInfo, list[tuple[str, torch.Tensor]]]]


def keras_snake(name: str) -> str:
    """Keras's ``naming.to_snake_case`` (``Conv2D`` -> ``conv2d``, ``MaxPooling2D`` -> ``max_pooling2d``)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def native_keys(info: list[LayerInfo]) -> list[str]:
    """Group keys Keras 3 uses under ``layers/``: class names numbered per model, not layer names."""
    used: dict[str, int] = {}
    keys = []
    for row in info:
        base = keras_snake(row.class_name)
        if base in used:
            used[base] += 1
            keys.append(f"{base}_{used[base]}")
        else:
            used[base] = 0
            keys.append(base)
    return keys


def _numpy(t: torch.Tensor) -> np.ndarray:
    if not t.is_floating_point():  # integer variables (Normalization's count) keep their dtype, as Keras
        return t.detach().to("cpu").numpy()
    return t.detach().to("cpu", torch.float32).numpy()


def _shape(shape: Any) -> str:
    return str(tuple(int(d) for d in shape))


# ---------------------------------------------------------------------------------------------
# writing


Entry = tuple[LayerInfo, list[tuple[str, torch.Tensor]], Any]  # row, Keras-ordered weights, module


def keras_layers(model: Sequential) -> list[Entry]:
    """Keras's ``model.layers``, which both weight formats follow: the layer list of a Sequential;
    for a Functional model the InputLayers too, in Keras's depth-then-DFS order (keras-functional §1.5)."""
    entries = model.keras_weights()
    if not model.graph.functional:
        return [(row, w, model.layers[i]) for i, (row, w) in enumerate(entries)]
    out: list[Entry] = []
    for kind, i in model.graph.keras_order():
        if kind == "input":
            inp = model.graph.inputs[i]
            out.append((LayerInfo(-1, inp.name, "InputLayer", inp.shape, inp.shape, 0, 0), [], None))
        else:
            row, weights = entries[i]
            out.append((row, weights, model.layers[i]))
    return out


def _native_groups(
    module: Any, row: LayerInfo, weights: list[tuple[str, torch.Tensor]]
) -> list[tuple[str, list[tuple[str, torch.Tensor]]]]:
    """``(path below layers/<key>, weights)`` per variable group: one group for most layers;
    wrappers nest theirs (``forward_layer/cell/vars``, ``layer/vars``) via ``keras_groups()``."""
    groups = getattr(module, "keras_groups", None)
    if groups is not None:
        return list(groups())
    return [(VARS_PATH.get(row.class_name, "vars"), weights)]


def save_weights_h5(model: Sequential, path: Path) -> None:
    """Keras 3 ``save_weights("x.weights.h5")`` layout, with the empty ``vars`` groups tf-keras needs."""
    entries = keras_layers(model)
    with atomic_path(Path(path)) as tmp, h5py.File(tmp, "w") as f:
        f.create_group("vars").attrs["name"] = model.name
        layers = f.create_group("layers")
        for key, (row, weights, module) in zip(native_keys([e[0] for e in entries]), entries, strict=True):
            layer = layers.create_group(key)
            layer.create_group("vars").attrs["name"] = row.name
            for sub, group_weights in _native_groups(module, row, weights):
                group = layer
                for part in sub.split("/")[:-1]:  # tf-keras wants every `vars` group on the path
                    group = group.require_group(part)
                    group.require_group("vars")
                group = group.require_group(sub.rsplit("/", 1)[-1])
                for j, (_, tensor) in enumerate(group_weights):
                    group.create_dataset(str(j), data=_numpy(tensor))


def _set_attr_list(group: h5py.Group, name: str, items: list[str]) -> None:
    """Keras's ``save_attributes_to_hdf5_group``: byte strings, split when over the header limit."""
    data = np.array([s.encode("utf8") for s in items]) if items else np.array([])
    chunks = 1
    while any(c.nbytes > HDF5_OBJECT_HEADER_LIMIT for c in np.array_split(data, chunks)):
        chunks += 1
    if chunks == 1:
        group.attrs[name] = data
    else:
        for i, chunk in enumerate(np.array_split(data, chunks)):
            group.attrs[f"{name}{i}"] = chunk


def _write_legacy_weights(group: h5py.Group, model: Sequential) -> None:
    entries = keras_layers(model)
    _set_attr_list(group, "layer_names", [row.name for row, _, _ in entries])
    group.attrs["backend"] = BACKEND
    group.attrs["keras_version"] = KERAS_VERSION
    for row, weights, _ in entries:
        if "/" in row.name:
            raise ArtifactError(f"expected a layer name without '/', received {row.name!r}")
        layer = group.create_group(row.name)
        names = [f"{row.name}/{wname}:0" for wname, _ in weights]  # tf-keras's spelling
        _set_attr_list(layer, "weight_names", names)
        for wname, (_, tensor) in zip(names, weights, strict=True):
            layer.create_dataset(wname, data=_numpy(tensor))
    _set_attr_list(group.create_group("top_level_model_weights"), "weight_names", [])


def save_model_h5(model: Sequential, path: Path, *, training_config: dict[str, Any] | None = None) -> None:
    """Legacy whole-model ``model.save("x.h5")``: loads with ``load_model`` in Keras 3 and tf-keras.

    ``training_config`` (Keras's ``loss``/``metrics``/``optimizer_config`` dict) makes
    ``load_model`` return a compiled model; without it Keras returns an uncompiled one. Keys Keras
    reads unconditionally (``loss_weights``...) are filled with Keras's values when left out.
    """
    if training_config is not None:
        if "optimizer_config" not in training_config:
            raise ArtifactError(
                "expected training_config to contain 'optimizer_config' "
                "({'class_name': 'Adam', 'config': {...}}), as Keras's load_model requires"
            )
        training_config = {**TRAINING_CONFIG_DEFAULTS, **training_config}
    config = model_to_json(model, universal=True)
    with atomic_path(Path(path)) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["backend"] = BACKEND
        f.attrs["keras_version"] = KERAS_VERSION
        f.attrs["model_config"] = config
        if training_config is not None:
            f.attrs["training_config"] = json.dumps(training_config)
        _write_legacy_weights(f.create_group("model_weights"), model)


# ---------------------------------------------------------------------------------------------
# reading


def _get_attr_list(group: h5py.Group, name: str) -> list[str] | None:
    if name in group.attrs:
        raw = list(group.attrs[name])
    elif f"{name}0" in group.attrs:
        raw, i = [], 0
        while f"{name}{i}" in group.attrs:
            raw.extend(group.attrs[f"{name}{i}"])
            i += 1
    else:
        return None
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in raw]


class _Stored:
    """A dataset not read yet: its declared shape is checked against the model's first, so a
    file declaring 10^12 elements is refused from its header (see :func:`_match`)."""

    def __init__(self, ds: Any, label: str, where: str) -> None:
        if not isinstance(ds, h5py.Dataset):
            raise ArtifactError(f"{label}: expected a dataset at {where}, received a group")
        self.ds, self.label, self.where = ds, label, where
        self.shape = tuple(int(d) for d in ds.shape) if ds.shape is not None else ()

    def read(self) -> np.ndarray:
        try:
            return _array(self.ds, self.label, self.where)
        except (OSError, ValueError, TypeError) as exc:  # a corrupt chunk, an unreadable dtype
            raise ArtifactError(f"{self.label}: cannot read the dataset at {self.where} ({exc})") from None


def _array(ds: Any, label: str, where: str) -> np.ndarray:
    if not isinstance(ds, h5py.Dataset):
        raise ArtifactError(f"{label}: expected a dataset at {where}, received a group")
    arr = ds[()]
    if ds.attrs.get("dtype") == "bfloat16" and arr.dtype.itemsize == 2:
        bits = np.frombuffer(arr.tobytes(), dtype=np.uint16).astype(np.uint32) << 16
        return bits.view(np.float32).reshape(ds.shape)
    arr = np.asarray(arr)
    if arr.dtype.kind not in "fiub":
        raise ArtifactError(f"{label}: expected numbers at {where}, received dtype {arr.dtype}")
    return arr


def _weighted(model: Sequential) -> Weights:
    return [(row, w) for row, w, _ in keras_layers(model) if w]


def _layer_count_error(label: str, ours: list[str], theirs: list[str]) -> ArtifactError:
    return ArtifactError(
        f"{label}: layer count mismatch: the model has {len(ours)} layers with weights "
        f"({', '.join(ours) or 'none'}), the file has {len(theirs)} ({', '.join(theirs) or 'none'})"
    )


def _match(label: str, row: LayerInfo, weights: list[tuple[str, torch.Tensor]],
           values: list[_Stored]) -> list[tuple[torch.Tensor, np.ndarray]]:  # fmt: skip
    if len(values) != len(weights):
        names = ", ".join(n for n, _ in weights)
        raise ArtifactError(
            f"{label}: layer {row.name!r} expects {len(weights)} weights ({names}), the file has {len(values)}"
        )
    pairs = []
    for (wname, tensor), arr in zip(weights, values, strict=True):
        if tuple(arr.shape) != tuple(tensor.shape):
            raise ArtifactError(
                f"{label}: layer {row.name!r} expects {wname} of shape {_shape(tensor.shape)}, "
                f"the file has {_shape(arr.shape)}"
            )
        pairs.append((tensor, arr.read()))  # read only now: the shape is the model's own
    return pairs


def _count_datasets(group: h5py.Group) -> int:
    found: list[str] = []
    group.visititems(lambda n, obj: found.append(n) if isinstance(obj, h5py.Dataset) else None)
    return len(found)


def _read_native(f: h5py.File, model: Sequential, label: str) -> list[tuple[torch.Tensor, np.ndarray]]:
    layers = f.get("layers")
    if layers is not None and not isinstance(layers, h5py.Group):
        raise ArtifactError(f"{label}: expected a 'layers' group (Keras 3 .weights.h5 layout)")
    entries = keras_layers(model)
    keys = native_keys([e[0] for e in entries])
    ours = [k for k, (_, w, _) in zip(keys, entries, strict=True) if w]
    groups = [layers[k] for k in layers] if layers is not None else []
    theirs = [g.name.rsplit("/", 1)[-1] for g in groups if isinstance(g, h5py.Group) and _count_datasets(g)]
    if len(ours) != len(theirs):
        raise _layer_count_error(label, ours, theirs)
    pairs = []
    for key, (row, weights, module) in zip(keys, entries, strict=True):
        for sub, group_weights in _native_groups(module, row, weights):
            where = f"layers/{key}/{sub}"
            group = f.get(where)
            values = []
            if isinstance(group, h5py.Group):  # a missing group means "no variables", as in Keras
                values = [_Stored(group.get(str(i)), label, f"{where}/{i}") for i in range(len(group))]
            pairs += _match(label, row, group_weights, values)
    return pairs


def _read_legacy(f: h5py.File, model: Sequential, label: str) -> list[tuple[torch.Tensor, np.ndarray]]:
    group: h5py.Group = f
    if _get_attr_list(f, "layer_names") is None and isinstance(f.get("model_weights"), h5py.Group):
        group = f["model_weights"]  # a whole-model file: Keras's load_weights reads this group
    names = _get_attr_list(group, "layer_names")
    if names is None:
        raise ArtifactError(
            f"{label}: expected a Keras .h5 weights file (attribute 'layer_names'); "
            "for a Keras 3 native weights file the name must end in .weights.h5"
        )
    saved = []  # position matching among layers that have weights, as Keras does
    for name in names:
        lg = group.get(name)
        if not isinstance(lg, h5py.Group):
            raise ArtifactError(f"{label}: layer_names lists {name!r} but the file has no such group")
        wnames = _get_attr_list(lg, "weight_names") or []
        if wnames:
            saved.append((name, [_Stored(lg.get(w), label, f"{name}/{w}") for w in wnames]))
    ours = _weighted(model)
    if len(ours) != len(saved):
        raise _layer_count_error(label, [r.name for r, _ in ours], [n for n, _ in saved])
    pairs = []
    for (row, weights), (_, values) in zip(ours, saved, strict=True):
        pairs += _match(label, row, weights, values)
    return pairs


def load_weights_h5(model: Sequential, path: Path, probe: H5Probe | None = None) -> None:
    """Keras ``load_weights``: native ``.weights.h5`` or legacy ``.h5`` (chosen by suffix, as Keras).

    All arrays are read and checked (layer count, weight count, shapes) before any is assigned, so
    a bad file leaves the model untouched. Errors are :class:`ArtifactError` naming the file. The
    file is read in a child process first (``probe``, started by the caller to overlap with
    building the model, else here), so a file that crashes the HDF5 library is refused.
    """
    path = Path(path)
    label = path.name
    if not path.is_file():
        raise ArtifactError(f"{label}: file not found ({path})")
    native = path.name.endswith(".weights.h5")
    if not native and path.suffix not in (".h5", ".hdf5"):
        raise ArtifactError(f"{label}: expected a name ending in .weights.h5, .h5 or .hdf5")
    if not h5py.is_hdf5(path):
        raise ArtifactError(f"{label}: not an HDF5 file ({path})")
    if probe is None:
        checked(path, label)
    else:
        probe.check(label)
    try:
        with h5py.File(path, "r") as f:
            pairs = _read_native(f, model, label) if native else _read_legacy(f, model, label)
    except ArtifactError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise ArtifactError(f"{label}: the file is truncated or corrupt ({exc})") from None
    with torch.no_grad():
        for tensor, arr in pairs:
            tensor.copy_(torch.from_numpy(np.array(arr, order="C")))  # 0-d stays 0-d (Normalization's count)
