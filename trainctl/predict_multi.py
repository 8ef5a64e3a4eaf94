"""``trainctl predict`` for a model with several inputs or outputs.

The input is an ``.npz`` keyed by input name (a single input may also use ``x``/``x_test``); the
output is an ``.npz`` keyed by output name, or a ``.csv``/``.jsonl`` whose columns are
``<output>_<i>`` (each output flattened per row, outputs side by side). Raw outputs only: what
``--proba``/``--classes`` mean differs per output.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import numpy as np

from trainctl.errors import ConfigError, DataError


def several_io(model: Any) -> bool:
    return len(model.graph.inputs) > 1 or len(model.graph.outputs) > 1


def read_inputs(model: Any, source: Any, data: Any = None) -> Any:
    """One array per model input, cast to its dtype, as a TensorTuple (or one array).

    From an ``.npz`` keyed by input name or, for a run trained on a CSV (``data``, the run's data
    spec), a CSV with the same column groups per input (target columns may be absent)."""
    from trainctl.model.tensors import TensorTuple

    path = Path(source) if isinstance(source, str | Path) else None
    if path is not None and path.suffix.lower() == ".csv" and getattr(data, "source", None) == "csv":
        from trainctl.data.csvfile import read_groups

        if not path.is_file():
            raise DataError(f"input file not found: {path}")
        arrays, _ = read_groups(data, path, model.graph.input_names, list(model.input_dtypes), None)
        return TensorTuple(arrays) if len(arrays) > 1 else arrays[0]
    if path is None or path.suffix.lower() != ".npz":
        raise DataError(
            f"expected an .npz keyed by input name for a model with several inputs or outputs, received {source}",
            hint="np.savez('in.npz', " + ", ".join(f"{n}=..." for n in model.graph.input_names) + ")",
        )
    if not path.is_file():
        raise DataError(f"input file not found: {path}")
    with np.load(path, allow_pickle=False) as archive:
        names, files = model.graph.input_names, list(archive.files)
        arrays = []
        for name, dtype in zip(names, model.input_dtypes, strict=True):
            options = [name, *(["x", "x_test"] if len(names) == 1 else [])]
            key = next((o for o in options if o in files), None)
            if key is None:
                raise DataError(f"expected the array {name!r} in {path}, received keys {', '.join(files) or 'none'}")
            arrays.append(np.asarray(archive[key]).astype(np.int64 if dtype.startswith("int") else np.float32))
    if len({len(a) for a in arrays}) != 1:
        raise DataError(f"expected the input arrays in {path} to share their rows, received {[len(a) for a in arrays]}")
    return TensorTuple(arrays) if len(arrays) > 1 else arrays[0]


def predict_arrays(model: Any, x: Any, batch_size: int, device: Any) -> dict[str, np.ndarray]:
    """Raw outputs by output name, a batch at a time under inference mode."""
    import torch

    from trainctl.devices import to_device

    model.eval()
    parts: list[list[np.ndarray]] = [[] for _ in model.output_names]
    n = int(x.shape[0])
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            xb = to_device(x[start : start + batch_size], device)
            out = model(xb)
            for k, o in enumerate(out if len(parts) > 1 else (out,)):
                parts[k].append(o.float().cpu().numpy())
    shapes = model.output_shapes
    return {
        name: np.concatenate(p) if p else np.zeros((0, *(d or 0 for d in shapes[k])), np.float32)
        for k, (name, p) in enumerate(zip(model.output_names, parts, strict=True))
    }


def write_outputs(outputs: dict[str, np.ndarray], out: Path) -> list[str]:
    """``.npz`` keyed by output name, or ``.csv``/``.jsonl`` with ``<output>_<i>`` columns."""
    from trainctl.atomic import atomic_path
    from trainctl.data.outputs import open_writer

    suffix = out.suffix.lower()
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".npz":
        with atomic_path(out) as tmp, tmp.open("wb") as raw:
            np.savez(raw, **outputs)  # type: ignore[arg-type]
        return list(outputs)
    if suffix not in (".csv", ".jsonl"):
        raise ConfigError(f"expected an --output file ending in .npz, .csv or .jsonl, received {str(out)!r}",
                          key="--output")  # fmt: skip
    flat = [a.reshape(len(a), -1) for a in outputs.values()]
    columns = [f"{name}_{i}" for name, a in zip(outputs, flat, strict=True) for i in range(a.shape[1])]
    table = np.concatenate(flat, axis=1)
    with atomic_path(out) as tmp:
        fh: IO[Any] = tmp.open("w", newline="", encoding="utf-8")
        with fh:
            writer = open_writer(suffix, fh, columns=columns, dtype=table.dtype, row_shape=table.shape[1:], rows=None)
            writer.write(table)
            writer.close()
    return columns


def eval_arrays(lr: Any, data: Path | None) -> tuple[str, Any, Any]:
    """(description, x, y) for ``evaluate``: the run's own test arrays, or those of ``--data``
    (an .npz with the same keys as training: ``x_test_<input>``..., else ``x_train_<input>``...)."""
    from types import SimpleNamespace

    from trainctl.data.multi import load_multi

    graph = lr.model.graph
    inputs = [(i.name, i.dtype) for i in graph.inputs]
    if data is None:
        if lr.config.data is None:
            raise DataError(f"{lr.run.path} was imported without a data source", hint="give --data FILE.npz")
        spec, base, where = lr.config.data, lr.base_dir, f"test split ({lr.config.data.source})"
    else:
        path = Path(data).expanduser()
        trained = lr.config.data
        if path.suffix.lower() == ".csv" and trained is not None and trained.source == "csv":
            # the run's own column groups and target columns, on another file: all of its rows
            spec = trained.model_copy(update={"path": str(path.resolve()), "test_path": None, "test_split": None})
        elif path.suffix.lower() != ".npz":
            raise DataError(
                f"expected --data FILE.npz for a model with several inputs or outputs, received {path}",
                hint="a run trained on a CSV also takes --data FILE.csv with the same columns",
            )
        else:
            spec = SimpleNamespace(source="npz", path=str(path.resolve()), test_split=None, steps=lambda: ([], []))
        base, where = path.parent, str(path)
    saved = lr.run.read_json(lr.run.PREPROCESS) if data is not None else {}
    vocab = saved.get("output_class_names") if isinstance(saved, dict) else None
    ds = load_multi(
        spec, base_dir=base, seed=lr.config.seed or 0, inputs=inputs, outputs=graph.output_names, vocab=vocab
    )
    if ds.x_test is not None and ds.y_test is not None:
        return where, ds.x_test, ds.y_test
    if data is None:
        raise DataError(f"{lr.run.path}: the data has no test arrays (x_test_*, y_test_*)", hint="give --data FILE.npz")
    return where, ds.x_train, ds.y_train
