"""Keras ``Sequential`` JSON <-> trainctl :class:`ModelSpec`, without torch or Keras.

Two written forms (see ``shared/notes/keras-format.md`` §1): the Keras 3 ``to_json`` schema (what
``model.json`` holds, read by Keras 3 ``model_from_json``), and the "universal" form (no per-layer
``module``, plain dtype strings, no Keras-3-only keys) that Keras 3 and tf-keras 2 both read, used
for the ``model_config`` of the legacy ``model.h5``. Reading accepts both, plus tf-keras's own
``to_json`` output and the ``model_config`` Keras 3 writes into ``.h5`` files.

Each layer class is one :class:`LayerCodec` entry in :data:`CODECS`: its Keras config keys in the
order Keras writes them. Keys that are also fields of the trainctl spec are copied (converting
initializers/regularizers); the rest are Keras options trainctl does not implement, written at
their default and accepted back only at that default, so an import never silently drops a setting.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from trainctl.config.base import INITIALIZERS, LAYERS, REGULARIZERS, ComponentSpec, Family
from trainctl.config.schema import ModelSpec
from trainctl.errors import ArtifactError
from trainctl.model.shapes import AUTO_NAMES, infer, snake
from trainctl.model.shapes_graph import Graph, build_graph
from trainctl.serialization.codec import LayerCodec
from trainctl.serialization.codecs_conv import CONV_CODECS
from trainctl.serialization.codecs_merge import MERGE_CODECS
from trainctl.serialization.codecs_norm import NORM_CODECS
from trainctl.serialization.codecs_preprocess import PREPROCESS_CODECS
from trainctl.serialization.codecs_seq import SEQ_CODECS

if TYPE_CHECKING:
    from trainctl.model.sequential import Sequential


CORE_CODECS: dict[str, LayerCodec] = {
    "Dense": LayerCodec(
        (
            "units",
            "activation",
            "use_bias",
            "kernel_initializer",
            "bias_initializer",
            "kernel_regularizer",
            "bias_regularizer",
            "kernel_constraint",
            "bias_constraint",
            "quantization_config",
        ),
        built=True,
    ),
    "Activation": LayerCodec(("activation",)),
    "Dropout": LayerCodec(("rate", "seed", "noise_shape")),
    "Flatten": LayerCodec(("data_format",), built=True, none_means={"data_format": "channels_last"}),
    "Reshape": LayerCodec(("target_shape",)),
}

CODECS: dict[str, LayerCodec] = {
    **CORE_CODECS,
    **CONV_CODECS,
    **NORM_CODECS,
    **SEQ_CODECS,
    **PREPROCESS_CODECS,
    **MERGE_CODECS,
}

# Keras options trainctl does not implement: written with this value, read back only at it.
UNSUPPORTED_DEFAULTS: dict[str, Any] = {
    "kernel_constraint": None,
    "bias_constraint": None,
    "activity_regularizer": None,
    "quantization_config": None,
    "lora_rank": None,  # Keras 3.0-3.x Dense
    "lora_alpha": None,
    # sequence layers (Embedding, SimpleRNN/LSTM/GRU)
    "embeddings_constraint": None,
    "recurrent_constraint": None,
    "zero_output_for_mask": False,  # Bidirectional's inner layers: see codecs_seq.read_nested
    # norm layers (BatchNormalization, LayerNormalization)
    "beta_constraint": None,
    "gamma_constraint": None,
    "synchronized": False,
    "renorm": False,
    "renorm_clipping": None,
    "renorm_momentum": 0.99,
    "rms_scaling": False,  # deprecated in Keras 3 (scales by the variance, not the RMS)
    # conv layers (DepthwiseConv2D, SeparableConv2D)
    "depthwise_constraint": None,
    "pointwise_constraint": None,
}
# not in the universal form
KERAS3_ONLY = frozenset({"quantization_config", "lora_rank", "lora_alpha", "rms_scaling"})

_MODULES = {"initializer": "keras.initializers", "regularizer": "keras.regularizers"}
_FAMILY_BY_SUFFIX: dict[str, Family] = {"_initializer": INITIALIZERS, "_regularizer": REGULARIZERS}
_FLOAT32_NAMES = {None, "float32"}
INT_INPUTS = ("int32", "int64")
FUNCTIONAL_NAMES = ("Functional", "Model")  # Keras 3 to_json / hand-written (keras.Model)


def _policy(universal: bool) -> Any:
    if universal:
        return "float32"
    return {
        "module": "keras",
        "class_name": "DTypePolicy",
        "config": {"name": "float32"},
        "registered_name": None,
    }


def _plain(value: Any) -> Any:
    """Tuples -> lists, recursively, so ``json.dumps`` writes what Keras writes."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _to_keras(value: Any, universal: bool) -> Any:
    if isinstance(value, ComponentSpec):
        obj: dict[str, Any] = {"class_name": value.type, "config": _plain(value.kwargs())}  # type: ignore[attr-defined]
        if universal:
            return obj
        return {"module": _MODULES[value.family], **obj, "registered_name": None}
    return _plain(value)


# ---------------------------------------------------------------------------------------------
# spec -> Keras JSON


def _input_entry(spec: ModelSpec, names: dict[int, str], universal: bool) -> dict[str, Any]:
    first: Any = spec.layers[0]
    if first.type == "InputLayer":
        name = first.name or "input_layer"
        batch = first.batch_shape or first.batch_input_shape
    else:
        # tf-keras's convention for the InputLayer it adds for ``input_shape=`` on the first layer;
        # reading it back folds the shape into that layer again, so the spec round-trips.
        name = f"{names[0]}_input"
        batch = first.batch_input_shape
    if batch is None:
        batch = (None, *first.declared_input_shape())
    dtype = getattr(first, "dtype", "float32") if first.type == "InputLayer" else "float32"
    if universal:
        cfg: dict[str, Any] = {"batch_input_shape": list(batch), "dtype": dtype, "name": name}
        return {"class_name": "InputLayer", "config": cfg}
    cfg = {"batch_shape": list(batch), "dtype": dtype, "sparse": False, "ragged": False,
           "name": name, "optional": False}  # fmt: skip
    return {"module": "keras.layers", "class_name": "InputLayer", "config": cfg, "registered_name": None}


def _layer_entry(layer: Any, name: str, in_shape: tuple[Any, ...], universal: bool) -> dict[str, Any]:
    codec = CODECS.get(layer.type)
    if codec is None:
        raise ArtifactError(
            f"cannot write layer {name!r} as Keras JSON: expected one of {', '.join(CODECS)}, received {layer.type!r}"
        )
    fields = type(layer).model_fields
    common = {"name": name, "trainable": layer.trainable, "dtype": _policy(universal or not codec.head)}
    cfg: dict[str, Any] = {key: common[key] for key in codec.head}
    if getattr(layer, "activity_regularizer", None) is not None:
        cfg["activity_regularizer"] = _to_keras(layer.activity_regularizer, universal)
    nested: dict[str, Any] = {}  # wrappers: whole layer entries (see LayerCodec.write_nested)
    if codec.write_nested is not None:
        nested = codec.write_nested(layer, name, in_shape, lambda s, n, shape: _layer_entry(s, n, shape, universal))
    for key in codec.keys:
        if universal and key in KERAS3_ONLY:
            continue
        if key in common:  # codecs with an empty head (SpatialDropout)
            cfg[key] = common[key]
        elif key in nested:
            cfg[key] = nested[key]
        elif key in fields:
            value = getattr(layer, key)
            if value is None and key in codec.none_means:
                value = codec.none_means[key]
            cfg[key] = _to_keras(value, universal)
        else:
            cfg[key] = UNSUPPORTED_DEFAULTS[key]
    if universal:
        return {"class_name": layer.type, "config": cfg}
    entry: dict[str, Any] = {"module": "keras.layers", "class_name": layer.type, "config": cfg,
                             "registered_name": None}  # fmt: skip
    if codec.built:
        entry["build_config"] = {"input_shape": [None, *in_shape]}
    return entry


def _tensor(graph: Graph, value: int, universal: bool) -> Any:
    name, node, index = graph.history(value)
    if universal:  # the Keras 2 node entry, which Keras 3 and tf-keras both read
        return [name, node, index, {}]
    n = len(graph.inputs)
    dtype = graph.inputs[value].dtype if value < n else "float32"
    shape = [None, *graph.shape_of(value)]
    return {
        "class_name": "__keras_tensor__",
        "config": {"shape": shape, "dtype": dtype, "keras_history": [name, node, index]},
    }


def _functional_dict(spec: ModelSpec, graph: Graph, universal: bool) -> dict[str, Any]:
    """Keras 3's Functional ``to_json`` (keras-functional.md §1): the layers in Keras's
    ``model.layers`` order, InputLayers included, each with its ``name`` and ``inbound_nodes``."""
    layers: list[dict[str, Any]] = []
    for kind, i in graph.keras_order():
        if kind == "input":
            inp = graph.inputs[i]
            batch = [None, *inp.shape]
            if universal:
                cfg: dict[str, Any] = {"batch_input_shape": batch, "dtype": inp.dtype, "name": inp.name}
                layers.append({"class_name": "InputLayer", "config": cfg, "name": inp.name, "inbound_nodes": []})
                continue
            cfg = {"batch_shape": batch, "dtype": inp.dtype, "sparse": False, "ragged": False,
                   "name": inp.name, "optional": False}  # fmt: skip
            layers.append({"module": "keras.layers", "class_name": "InputLayer", "config": cfg,
                           "registered_name": None, "name": inp.name, "inbound_nodes": []})  # fmt: skip
            continue
        row = graph.layers[i]
        calls = [node for node in graph.nodes if node.layer == i]
        entry = _layer_entry(spec.layers[row.index], row.name, row.input_shape, universal)
        if calls[0].merge and not universal:  # a merge is built on the list of its input shapes
            entry["build_config"] = {"input_shape": [[None, *s] for s in calls[0].in_shapes]}
        nodes: list[Any] = []
        for node in calls:
            args = [_tensor(graph, a, universal) for a in node.args]
            if universal:
                nodes.append(args)
            else:
                nodes.append({"args": [args] if node.merge else args, "kwargs": {}})
        entry["name"] = row.name
        entry["inbound_nodes"] = nodes
        layers.append(entry)

    def ends(values: tuple[int, ...]) -> Any:
        triples = [list(graph.history(v)) for v in values]
        return triples[0] if len(triples) == 1 else triples

    config = {"name": spec.name, "trainable": True, "layers": layers,
              "input_layers": ends(tuple(range(len(graph.inputs)))), "output_layers": ends(graph.outputs)}  # fmt: skip
    if universal:
        return {"class_name": "Functional", "config": config}
    return {"module": "keras.src.models.functional", "class_name": "Functional", "config": config,
            "registered_name": "Functional", "build_config": {"input_shape": None}, "compile_config": {}}  # fmt: skip


def spec_to_dict(spec: ModelSpec, *, universal: bool = False) -> dict[str, Any]:
    """The Keras config of ``spec`` as a dict (see :func:`model_to_json`): ``Sequential`` for a
    chain, ``Functional`` for a graph."""
    if spec.is_graph:
        return _functional_dict(spec, build_graph(spec), universal)
    _, info = infer(list(spec.layers))
    names = {i: row.name for i, row in enumerate(info)}
    entry = _input_entry(spec, names, universal)
    layers = [entry]
    layers += [_layer_entry(spec.layers[r.index], r.name, r.input_shape, universal) for r in info]
    batch = entry["config"]["batch_input_shape" if universal else "batch_shape"]
    if universal:
        return {
            "module": "keras",
            "class_name": "Sequential",
            "config": {"name": spec.name, "layers": layers},
        }
    config = {"name": spec.name, "trainable": True, "dtype": _policy(False), "layers": layers,
              "build_input_shape": batch}  # fmt: skip
    return {"module": "keras", "class_name": "Sequential", "config": config, "registered_name": None,
            "build_config": {"input_shape": batch}}  # fmt: skip


def model_to_json(model: Sequential, *, universal: bool = False) -> str:
    """Keras 3 ``model.to_json()`` for our model (``universal=True``: the §1.4 form for ``.h5``).

    Compile settings are left out on purpose: a torch-backend ``compile_config`` names a
    backend-specific optimizer module that Keras on TensorFlow cannot import.
    """
    return json.dumps(spec_to_dict(model.spec, universal=universal))


# ---------------------------------------------------------------------------------------------
# Keras JSON -> spec


def _label(index: int, entry: Any) -> str:
    entry = entry if isinstance(entry, dict) else {}
    cfg = entry.get("config")
    name = cfg.get("name") if isinstance(cfg, dict) else None
    cls = entry.get("class_name")
    return f"layer #{index} {name!r} ({cls})" if name else f"layer #{index} ({cls})"


def _check_dtype(value: Any, where: str) -> None:
    name = value
    if isinstance(value, dict):
        name = (value.get("config") or {}).get("name")
    if name not in _FLOAT32_NAMES:
        raise ArtifactError(f"{where}: expected dtype float32 (trainctl computes in float32), received {name!r}")


def _component(value: Any, family: Family, where: str) -> Any:
    """A serialized Keras initializer/regularizer -> the mapping our spec field validates."""
    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, dict) or "class_name" not in value:
        raise ArtifactError(f"{where}: expected a Keras {family.name} object, received {value!r}")
    cls_name = value["class_name"]
    canonical = family.canonical(cls_name) if isinstance(cls_name, str) else None
    if canonical is None:
        raise ArtifactError(
            f"{where}: {family.name} {cls_name!r} is not supported; expected one of: {', '.join(family.names())}"
        )
    fields = family.specs[canonical].model_fields
    out: dict[str, Any] = {"type": canonical}
    for key, item in (value.get("config") or {}).items():
        if key in fields and key != "type":
            out[key] = item
        elif item is not None:  # Keras-only options are harmless at None (e.g. input_axes)
            raise ArtifactError(f"{where}: {family.name} option {key}={item!r} is not supported")
    return out


def _input_from(cfg: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "InputLayer"}
    for key, value in cfg.items():
        if key in ("batch_shape", "batch_input_shape") and value is not None:
            batch = list(value)
            if batch and batch[0] is None:
                out["shape"] = batch[1:]
            else:
                out["batch_shape"] = batch
        elif key == "shape" and value is not None:
            out["shape"] = list(value)
        elif key == "name":
            out["name"] = value
        elif key == "dtype":
            dtype = (value.get("config") or {}).get("name") if isinstance(value, dict) else value
            if dtype in INT_INPUTS:  # token ids: Input(dtype="int32") feeding an Embedding
                out["dtype"] = dtype
            else:
                _check_dtype(value, where)
        elif key in ("sparse", "ragged", "optional"):
            if value:
                raise ArtifactError(f"{where}: InputLayer option {key}=true is not supported")
        elif key not in ("batch_size", "input_tensor") or value is not None:
            raise ArtifactError(f"{where}: InputLayer option {key}={value!r} is not supported")
    return out


def _layer_from(entry: Any, where: str) -> dict[str, Any]:
    if not isinstance(entry, dict) or not isinstance(entry.get("config", {}), dict):
        raise ArtifactError(f"{where}: expected a layer entry with 'class_name' and 'config'")
    cls_name = entry.get("class_name")
    cfg = entry.get("config") or {}
    if cls_name == "InputLayer":
        return _input_from(cfg, where)
    codec = CODECS.get(cls_name)  # type: ignore[arg-type]
    if codec is None:
        raise ArtifactError(
            f"{where}: Keras layer {cls_name!r} is not supported by trainctl; "
            f"expected one of: InputLayer, {', '.join(CODECS)}"
        )
    fields = LAYERS.specs[cls_name].model_fields  # type: ignore[index]
    out: dict[str, Any] = {"type": cls_name}
    if codec.read_nested is not None:  # wrappers: parse their whole layer entries
        cfg, nested = codec.read_nested(cfg, where, _layer_from)
        out.update(nested)
    for key, value in cfg.items():
        if key in ("name", "trainable"):
            out[key] = value
        elif key == "dtype":
            _check_dtype(value, where)
        elif key in ("batch_input_shape", "input_shape") and key in fields:
            if value is not None:
                out[key] = value
        elif key in fields and (key in codec.keys or key == "activity_regularizer"):
            family = next((f for s, f in _FAMILY_BY_SUFFIX.items() if key.endswith(s)), None)
            if family is not None:
                out[key] = _component(value, family, f"{where}: {key}")
            elif key in codec.none_means and value == codec.none_means[key]:
                continue
            else:
                out[key] = value
        elif key in UNSUPPORTED_DEFAULTS:
            if value != UNSUPPORTED_DEFAULTS[key]:
                raise ArtifactError(f"{where}: option {key}={value!r} is not supported by trainctl")
        else:
            raise ArtifactError(f"{where}: option {key}={value!r} is not supported by trainctl")
    return out


def _fold_input(layers: list[dict[str, Any]]) -> None:
    """An InputLayer named ``<first layer>_input`` came from ``input_shape=``: put it back there."""
    if len(layers) < 2 or layers[0]["type"] != "InputLayer":
        return
    first, nxt = layers[0], layers[1]
    if set(first) - {"type", "name", "shape", "batch_shape"} or "name" not in nxt:
        return
    if first.get("name") != f"{nxt['name']}_input" or "batch_input_shape" in nxt:
        return
    if "shape" in first:
        nxt["input_shape"] = first["shape"]
    else:
        nxt["batch_input_shape"] = first["batch_shape"]
    del layers[0]


def _fold_names(layers: list[dict[str, Any]]) -> None:
    """Drop names equal to the automatic name trainctl would give (mirrors ``shapes.infer``)."""
    counts: dict[str, int] = {}
    used: set[str] = set()
    for layer in layers:
        if layer["type"] == "InputLayer":
            if layer.get("name") == "input_layer":
                del layer["name"]
            continue
        base = AUTO_NAMES.get(layer["type"]) or snake(layer["type"])
        n = counts.get(base, 0)
        auto = base if n == 0 else f"{base}_{n}"
        while auto in used:
            n += 1
            auto = f"{base}_{n}"
        name = layer.get("name")
        if name is None or name == auto:
            layer.pop("name", None)
            counts[base] = n + 1
            used.add(auto)
        else:
            used.add(name)


def _validation_error(exc: ValidationError, labels: list[str]) -> ArtifactError:
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        where = "model"
        if len(loc) >= 2 and loc[0] == "layers" and isinstance(loc[1], int) and loc[1] < len(labels):
            where = labels[loc[1]]
            loc = loc[3:] if len(loc) > 2 and loc[2] in LAYERS.specs else loc[2:]
        key = ".".join(str(p) for p in loc)
        lines.append(f"{where}: {key + ': ' if key else ''}{err['msg']}")
    return ArtifactError("; ".join(lines))


def model_spec_from_dict(obj: Any) -> ModelSpec:
    """A parsed Keras ``Sequential`` config (any form :mod:`this module <.keras_json>` reads)."""
    if not isinstance(obj, dict) or "config" not in obj:
        raise ArtifactError("expected a Keras model config with 'class_name' and 'config'")
    if obj.get("class_name") in FUNCTIONAL_NAMES:
        from trainctl.serialization.keras_functional import functional_spec_from_config

        return functional_spec_from_config(obj["config"])
    if obj.get("class_name") != "Sequential":
        raise ArtifactError(
            f"expected a Keras Sequential model, received {obj.get('class_name')!r} "
            "(Sequential and Functional models are supported; subclassed models are not)"
        )
    config = obj["config"]
    if isinstance(config, list):  # Keras 2.0-2.2: the layer list itself
        config = {"name": "sequential", "layers": config}
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise ArtifactError("expected config.layers to be a list of layer entries")
    _check_dtype(config.get("dtype"), "model")
    if config.get("trainable", True) is not True:
        raise ArtifactError("model: option trainable=false on the whole model is not supported")
    entries = config["layers"]
    layers = [_layer_from(e, _label(i, e)) for i, e in enumerate(entries)]
    labels = [_label(i, e) for i, e in enumerate(entries)]
    if not layers:
        raise ArtifactError("expected at least one layer, received none")
    build = config.get("build_input_shape")
    if layers[0]["type"] != "InputLayer" and "batch_input_shape" not in layers[0] and build:
        layers[0]["batch_input_shape"] = list(build)  # Keras builds such models from this
    if layers[0]["type"] == "InputLayer":
        before = len(layers)
        _fold_input(layers)
        labels = labels[before - len(layers) :]
    _fold_names(layers)
    try:
        return ModelSpec.model_validate({"name": config.get("name", "sequential"), "layers": layers})
    except ValidationError as exc:
        raise _validation_error(exc, labels) from None


def model_spec_from_json(text: str) -> ModelSpec:
    """Keras model JSON (Keras 3 ``to_json``, universal, tf-keras ``to_json``) -> :class:`ModelSpec`.

    Unsupported layers or options raise :class:`ArtifactError` naming them: a silently dropped
    option would give a different model.
    """
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, TypeError) as exc:
        raise ArtifactError(f"expected Keras model JSON, received text that is not JSON ({exc})") from None
    except RecursionError:
        raise ArtifactError("expected Keras model JSON, received JSON nested too deeply to be a model") from None
    try:
        return model_spec_from_dict(obj)
    except (TypeError, KeyError, AttributeError, IndexError, RecursionError) as exc:
        # the file is someone else's: a list where a mapping belongs, a mapping where a name does...
        # (found by tests/serialization/test_fuzz_import.py); report it as a malformed model
        raise ArtifactError(
            f"expected Keras model JSON in the Keras 3 layout, received a malformed structure "
            f"({type(exc).__name__}: {exc})"
        ) from None
