"""``trainctl export``: a finished run's model as ONNX (checked in onnxruntime by the tests) or as a
``torch.export`` program (``.pt2``). Beside serialization: it starts from a run folder, like predict.

Both formats go through one ``torch.export.export`` of the model with a dynamic batch axis; ONNX is
then translated from that program by ``torch.onnx.export`` (the dynamo exporter: the TorchScript
one cannot translate the masked recurrences' stable sort, nor channels-last transposes). With
``raw_inputs`` the run's fitted ``data.x`` steps run first, inside the graph. Never prints.

A model with several inputs or outputs takes one argument per model input, named after it (the
Keras input names), and returns one tensor per output, named after its output layer. Its data has
no preprocessing steps (:mod:`trainctl.data.multi` refuses them), so its raw inputs *are* the model
inputs: ``raw_inputs`` writes the same graph, taking the arrays ``trainctl predict`` reads from the
``.npz`` (integer inputs as int64, the rest float32).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import math
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from trainctl.errors import ArtifactError, ConfigError, TrainctlError

Format = Literal["onnx", "torch"]
FORMATS: tuple[str, ...] = ("onnx", "torch")
SUFFIX = {"onnx": ".onnx", "torch": ".pt2"}
DEFAULT_OPSET = 18
EXAMPLE_BATCH = 3  # traced with 3 rows; the batch axis stays symbolic


@dataclass
class ExportResult:
    run_dir: Path
    format: str
    path: Path
    raw_inputs: bool
    input_shape: list[int | str]  # the first input's, "batch" first
    input_dtype: str
    opset: int | None
    bytes: int
    inputs: list[dict[str, Any]]  # one {name, shape, dtype} per graph input, in model order
    outputs: list[str]  # the graph's output names, in model order

    def record(self) -> dict[str, Any]:
        """What ``run.json``'s ``exports`` and ``trainctl export --json`` say about the file."""
        return {
            "format": self.format,
            "path": str(self.path),
            "raw_inputs": self.raw_inputs,
            "input_shape": self.input_shape,
            "input_dtype": self.input_dtype,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "opset": self.opset,
            "bytes": self.bytes,
        }


@dataclass
class _Input:
    shape: tuple[int, ...]  # one sample
    dtype: Any  # torch dtype
    ids_below: int | None  # an Embedding first: example ids must be valid
    name: str = "x"

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "shape": ["batch", *self.shape], "dtype": str(self.dtype).removeprefix("torch.")}


@dataclass
class _Signature:
    """What the traced module takes and returns: one ``_Input`` per argument, the output names."""

    inputs: list[_Input]
    outputs: list[str]


def export_run(
    run: str | Path,
    *,
    fmt: str = "onnx",
    output: Path | None = None,
    opset: int | None = None,
    raw_inputs: bool = False,
    runs_dir: Path = Path("runs"),
) -> ExportResult:
    """Export the run's model to ``output`` (default ``<run>/export/model[.raw].onnx|.pt2``), atomically,
    and record the file in run.json's ``exports``."""
    if fmt not in FORMATS:
        raise ConfigError(f"expected --format onnx or torch, received {fmt!r}", key="--format")
    if opset is not None and fmt != "onnx":
        raise ConfigError("--opset applies to --format onnx only", key="--opset")
    if opset is not None and not 7 <= opset <= 23:
        raise ConfigError(f"expected an ONNX opset between 7 and 23, received {opset}", key="--opset")
    if fmt == "onnx":
        _require("onnx", "onnxscript")
    import torch

    from trainctl.evaluation import open_run

    lr = open_run(run, runs_dir=runs_dir, device="cpu")
    model = lr.model.eval()
    module, sig = _wrap(lr, model, raw_inputs)
    target = Path(output) if output is not None else _default_path(lr.run.path, fmt, raw_inputs)
    target.parent.mkdir(parents=True, exist_ok=True)
    xs = tuple(_example(spec) for spec in sig.inputs)
    batch = torch.export.Dim("batch")
    with _quiet():
        program = _trace(module, model, xs, batch)
        if fmt == "torch":
            data = _save_pt2(program)
            used_opset = None
        else:
            used_opset = opset or DEFAULT_OPSET
            data = _to_onnx(program, model, used_opset, sig)
    from trainctl.atomic import atomic_write_bytes

    atomic_write_bytes(target, data)
    described = [spec.describe() for spec in sig.inputs]
    first = described[0]
    result = ExportResult(
        lr.run.path, fmt, target, raw_inputs, first["shape"], first["dtype"], used_opset, len(data),
        described, sig.outputs,
    )  # fmt: skip
    _record(lr.run, result, hashlib.sha256(data).hexdigest())
    return result


def _require(*names: str) -> None:
    import importlib.util

    missing = [n for n in names if importlib.util.find_spec(n) is None]
    if missing:
        raise ConfigError(
            f"ONNX export needs {', '.join(missing)}, which is not installed",
            hint="pip install 'trainctl[export]'",
        )


def _default_path(run_dir: Path, fmt: str, raw: bool) -> Path:
    return run_dir / "export" / (("model.raw" if raw else "model") + SUFFIX[fmt])


# ---------------------------------------------------------------------------------------------
# what the exported graph takes


def _wrap(lr: Any, model: Any, raw_inputs: bool) -> tuple[Any, _Signature]:
    """The module to trace (the model, or raw-input steps then the model) and its signature."""
    import torch
    from torch import nn

    from trainctl.export.preprocess import RawInputs
    from trainctl.predict_multi import several_io

    if several_io(model):
        return _wrap_several(lr, model)
    ids_below = _embedding_vocab(model)
    model_in = _Input(tuple(int(d) for d in model.input_shape), torch.float32, ids_below)
    if ids_below is not None:
        model_in.dtype = torch.int64
    if not raw_inputs:
        return model, _Signature([model_in], ["y"])
    steps = list(lr.preprocessor.x_steps)
    pre = RawInputs(steps)

    class WithRawInputs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.preprocess = pre
            self.model = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model(self.preprocess(x))

    shape, dtype = _raw_input(lr, model_in.shape, steps)
    return WithRawInputs().eval(), _Signature([_Input(shape, dtype, ids_below)], ["y"])


def _wrap_several(lr: Any, model: Any) -> tuple[Any, _Signature]:
    """A model with several inputs or outputs: one argument per input, a tuple of outputs.

    Raw inputs are the model inputs here (the data has no preprocessing steps), so ``--raw-inputs``
    changes nothing in the graph; the inputs are what ``trainctl predict`` reads from the .npz.
    """
    import torch
    from torch import nn

    if list(getattr(lr.preprocessor, "x_steps", [])):  # pragma: no cover - data.multi refuses steps
        raise ArtifactError(
            "expected no data.x steps for a model with several inputs or outputs, received some",
            key="data.x",
        )
    graph = model.graph
    inputs = []
    for k, (inp, dtype) in enumerate(zip(graph.inputs, model.input_dtypes, strict=True)):
        integer = dtype.startswith("int")  # predict_multi.read_inputs: int64 ids, else float32
        spec = _Input(tuple(int(d) for d in inp.shape), torch.int64 if integer else torch.float32, None, inp.name)
        spec.ids_below = _embedding_vocab(model, k)
        inputs.append(spec)
    outputs = list(model.output_names)
    names = [i.name for i in inputs] + outputs
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ArtifactError(
            f"expected distinct input and output names to name the exported graph's tensors, "
            f"received {', '.join(repr(n) for n in clash)} more than once",
            hint="name each output layer of the model differently (an output cannot be an input or a repeat)",
        )
    several_out = len(outputs) > 1

    class SeveralInputs(nn.Module):
        """``model((x_0, x_1, ...))`` as ``forward(x_0, x_1, ...)``, outputs as a plain tuple."""

        varargs = True

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *xs: torch.Tensor) -> Any:
            out = self.model(tuple(xs) if len(xs) > 1 else xs[0])
            return tuple(out) if several_out else out

    return SeveralInputs().eval(), _Signature(inputs, outputs)


def _embedding_vocab(model: Any, value: int = 0) -> int | None:
    """An Embedding that reads model input ``value`` takes integer ids below its ``input_dim``
    (in a Sequential model: an Embedding as the first layer)."""
    graph = getattr(model, "graph", None)
    if graph is None:
        candidates = list(getattr(model, "layers", []))[:1]
    else:
        candidates = [model.layers[node.layer] for node in graph.nodes if value in node.args and not node.merge]
    for layer in candidates:
        weights = getattr(layer, "embeddings", None)
        if weights is not None:
            return int(weights.shape[0])
    return None


def _raw_input(lr: Any, model_shape: tuple[int, ...], steps: list[Any]) -> tuple[tuple[int, ...], Any]:
    """Raw samples as ``trainctl predict`` reads them: the shape and dtype of the run's source data.

    The steps before a reshape/flatten keep the sample shape, so without one the raw shape is the
    model's; the dtype is the source's (uint8 pixels, float64 features...), else float32.
    """
    import numpy as np
    import torch

    shape: tuple[int, ...] = model_shape
    dtype = torch.float32
    raw = _raw_sample(lr)
    reshaped = any(s.op in ("reshape", "flatten") for s in steps)
    if raw is not None and (not reshaped or math.prod(raw.shape[1:]) == math.prod(model_shape)):
        if not reshaped and tuple(raw.shape[1:]) != model_shape:
            raw = None  # predict adds a channel axis to (N, H, W) images; the graph takes the model's
        else:
            shape = tuple(int(d) for d in raw.shape[1:])
    if raw is not None:
        kind = np.dtype(raw.dtype)
        if kind in (np.uint8, np.int8, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64):
            dtype = getattr(torch, kind.name)
    elif reshaped:
        first = next(s for s in steps if s.op in ("reshape", "flatten"))
        stats = [s for s in steps[: steps.index(first)] if s.stats]
        shape = tuple(next(iter(stats[0].stats.values())).shape) if stats else (math.prod(model_shape),)
    return shape, dtype


def _raw_sample(lr: Any) -> Any:
    """A few raw training rows from the run's data source, or None when it cannot be read."""
    from trainctl.data.sources import LOADERS, load_raw

    if lr.config.data is None or lr.config.data.source not in LOADERS:
        return None  # image_directory: predict decodes the files; the graph takes float pixels

    try:
        raw = load_raw(lr.config.data, base_dir=lr.base_dir, seed=lr.config.seed or 0)
    except (TrainctlError, OSError):
        return None
    return raw.x[:EXAMPLE_BATCH]


def _example(spec: _Input) -> Any:
    import torch

    gen = torch.Generator().manual_seed(0)
    size = (EXAMPLE_BATCH, *spec.shape)
    if spec.ids_below is not None and not spec.dtype.is_floating_point:
        return torch.randint(0, spec.ids_below, size, generator=gen).to(spec.dtype)
    if spec.dtype.is_floating_point:
        return torch.rand(size, generator=gen).to(spec.dtype)
    return torch.randint(0, 2, size, generator=gen).to(spec.dtype)


# ---------------------------------------------------------------------------------------------
# tracing and writing


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporters print progress and warn a lot; the library never prints."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _layers(model: Any) -> dict[str, Any]:
    """Qualified module name -> module, for the modules that are Keras layers."""
    return {name: m for name, m in model.named_modules() if hasattr(m, "keras_name")}


def _describe(model: Any, module: Any) -> str:
    """``'lstm' (LSTM, model.layers[1])`` from the model's summary rows when it has them."""
    name = module.keras_name
    for row in getattr(model, "info", []) or []:
        if getattr(row, "name", None) == name:
            try:
                kind = model.spec.layers[row.index].type
                return f"{name!r} ({kind}, model.layers[{row.index}])"
            except (AttributeError, IndexError):
                break
    return f"{name!r} ({type(module).__name__})"


def _unsupported(model: Any, module: Any | None, target: str, reason: str) -> ArtifactError:
    what = f"layer {_describe(model, module)}" if module is not None else "the model"
    return ArtifactError(
        f"{what} cannot be exported to {target}: {reason}",
        hint="export a model without this layer, or use the Keras files (model.keras, model.h5)",
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _trace(module: Any, model: Any, xs: tuple[Any, ...], batch: Any) -> Any:
    """``torch.export.export`` with a dynamic batch axis; a failure names the layer it failed in."""
    import torch

    active: list[Any] = []

    def enter(mod: Any, _args: Any) -> None:
        active.append(mod)

    def leave(_mod: Any, _args: Any, _out: Any) -> None:
        if active:
            active.pop()

    handles = []
    for m in _layers(model).values():
        handles.append(m.register_forward_pre_hook(enter))
        handles.append(m.register_forward_hook(leave))
    try:
        with torch.no_grad():
            dims = tuple({0: batch} for _ in xs)
            shapes = (dims,) if getattr(module, "varargs", False) else dims  # ``forward(*xs)``: one entry
            return torch.export.export(module, xs, dynamic_shapes=shapes)
    except Exception as exc:  # torch raises many kinds; each becomes an artifact error
        raise _unsupported(model, active[-1] if active else None, "torch.export", _first_line(exc)) from None
    finally:
        for h in handles:
            h.remove()


def _save_pt2(program: Any) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.export.save(program, buf)
    return buf.getvalue()


def _sort_stable(self: Any, dim: int = -1, descending: bool = False, stable: bool | None = None) -> Any:
    """``aten.sort.stable`` (the masked recurrences order valid steps first) as ONNX ``TopK`` over the
    whole axis: TopK breaks ties by the lower index, so it is a stable sort. Values go through float,
    which TopK takes for every dtype here (0/1 flags and small ints are exact)."""
    from onnxscript import opset18 as op

    k = op.Shape(self, start=dim) if dim == -1 else op.Shape(self, start=dim, end=dim + 1)
    values, indices = op.TopK(op.Cast(self, to=1), k, axis=dim, largest=descending, sorted=True)  # type: ignore[type-var]
    return op.CastLike(values, self), indices  # type: ignore[type-var]


def _to_onnx(program: Any, model: Any, opset: int, sig: _Signature) -> bytes:
    import torch

    try:
        onnx_program = torch.onnx.export(
            program,
            dynamo=True,
            opset_version=opset,
            input_names=[spec.name for spec in sig.inputs],
            output_names=list(sig.outputs),
            custom_translation_table={torch.ops.aten.sort.stable: _sort_stable},
            verbose=False,
            optimize=True,
        )
    except Exception as exc:
        raise _onnx_failure(program, model, exc) from None
    if onnx_program is None:  # pragma: no cover - only when f= is given
        raise ArtifactError("torch.onnx.export returned no program")
    proto = onnx_program.model_proto
    _name_batch_axis(proto)
    return bytes(proto.SerializeToString())


def _name_batch_axis(proto: Any) -> None:
    """The traced symbol (``s77``) becomes ``batch`` wherever it names a dimension."""
    graph = proto.graph
    first = graph.input[0].type.tensor_type.shape.dim[0] if graph.input else None
    symbol = first.dim_param if first is not None else ""
    if not symbol:
        return
    for value in [*graph.input, *graph.output, *graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param == symbol:
                dim.dim_param = "batch"


def _onnx_failure(program: Any, model: Any, exc: BaseException) -> ArtifactError:
    """Find the graph node ONNX could not translate, and the layer it came from."""
    text = str(exc)
    found = re.search(r"translating node %(\w+)", text)
    op = re.search(r"No ONNX function found for <OpOverload\(op='([\w.]+)', overload='(\w+)'\)>", text)
    reason = f"no ONNX translation for {op[1]}.{op[2]}" if op else _first_line(exc)
    # the exporter decomposes the program first, so its node names may not be ours: fall back
    # to the first of our nodes that calls the same operator (``prims.bessel_j0`` ~ ``special_bessel_j0``)
    nodes = list(program.graph.nodes)
    node = next((n for n in nodes if found and n.name == found[1]), None)
    if node is None and op:
        node = next((n for n in nodes if n.op == "call_function" and op[1].split(".")[-1] in str(n.target)), None)
    layers = _layers(model)
    module = None
    stack = list((node.meta.get("nn_module_stack") or {}).values()) if node is not None else []
    for fqn, _cls in reversed(stack):
        path = re.sub(r"^L\['self'\]\.?", "", str(fqn)).removeprefix("model.")
        if path in layers:
            module = layers[path]
            break
    return _unsupported(model, module, "ONNX", reason)


def _record(run: Any, result: ExportResult, sha256: str) -> None:
    info = run.read_json(run.RUN)
    entry = {**result.record(), "sha256": sha256, "exported": datetime.now(UTC).isoformat(timespec="seconds")}
    kept = [e for e in info.get("exports", []) if e.get("path") != entry["path"]]
    with contextlib.suppress(OSError):  # a read-only run folder can still be exported elsewhere
        run.update_run(exports=[*kept, entry])


__all__ = ["FORMATS", "ExportResult", "export_run"]
