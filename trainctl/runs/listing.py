"""What ``trainctl runs list|show|compare`` reads: one record per run folder, read from its files.

Pure file reading (JSON, YAML): no torch, so listing a hundred runs stays instant. A broken run
folder never breaks the listing; it shows up with status ``corrupt`` and the reason.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trainctl.runs.rundir import _STAMP, FORMAT_VERSION, RunDir

# history keys that are not metrics (the same as the learning-curve plots skip)
NOT_METRICS = ("lr", "learning_rate", "epoch_time")
SPLITS = ("train", "val", "test")


class _Missing:
    """A config key one run has and another lacks (``None`` is a real YAML value)."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class BestMetric:
    """The best value of a validation quantity over the epochs, and the (1-based) epoch it came from."""

    key: str
    value: float
    epoch: int
    mode: str  # "max" or "min"


@dataclass(frozen=True)
class RunRecord:
    """One row of ``runs list``: the facts of a run folder, whatever state it is in."""

    folder: Path
    name: str
    status: str
    started: str | None = None
    ended: str | None = None
    duration_s: float | None = None
    epochs: int | None = None
    best_val: BestMetric | None = None
    test: tuple[str, float] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    order: tuple[float, int] = (0.0, 0)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.folder),
            "name": self.name,
            "status": self.status,
            "started": self.started,
            "ended": self.ended,
            "duration_s": self.duration_s,
            "epochs": self.epochs,
            "best_val": None
            if self.best_val is None
            else {
                "key": self.best_val.key,
                "value": self.best_val.value,
                "epoch": self.best_val.epoch,
                "mode": self.best_val.mode,
            },
            "test": None if self.test is None else {"key": self.test[0], "value": self.test[1]},
            "problems": list(self.problems),
        }


# ------------------------------------------------------------------------------------ reading
def _read_json(path: Path) -> Any:
    """Parsed JSON; raises ``ValueError`` with a short reason for a missing or broken file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path.name} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path.name} is not valid JSON ({exc})") from None
    except RecursionError:
        raise ValueError(f"{path.name} is not valid JSON (nested too deeply)") from None


def _floats(values: Any) -> list[float]:
    """history.json values as floats: ``null`` is NaN, ``"inf"`` is infinite, junk is NaN."""
    out = []
    for v in values if isinstance(values, list) else []:
        try:
            out.append(math.nan if v is None or isinstance(v, bool) else float(v))
        except (TypeError, ValueError):
            out.append(math.nan)
    return out


def parse_time(text: Any) -> datetime | None:
    """run.json's UTC ISO 8601 times; a naive time is taken as UTC."""
    if not isinstance(text, str):
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def duration(started: Any, ended: Any) -> float | None:
    """Seconds from start to end (a resumed run counts the pause too); None while running."""
    t0, t1 = parse_time(started), parse_time(ended)
    return None if t0 is None or t1 is None else (t1 - t0).total_seconds()


def first_metric(history: Mapping[str, Any], metrics: Mapping[str, Any] | None = None) -> str | None:
    """The first compiled metric, in Keras's history order (loss, metrics, val_...); None if none."""
    keys = list(history) or list((metrics or {}).get("train") or {})
    for key in keys:
        if key != "loss" and not key.startswith("val_") and key not in NOT_METRICS:
            return key
    return None


# Keras metric classes' ``_direction`` by canonical metric type. The callbacks keep the same table
# (``trainctl.training.callbacks.monitor``), but importing it pulls in numpy and every callback;
# a test keeps the two equal.
DIRECTIONS: dict[str, str] = {
    "accuracy": "max",
    "binary_accuracy": "max",
    "categorical_accuracy": "max",
    "sparse_categorical_accuracy": "max",
    "top_k_categorical_accuracy": "max",
    "sparse_top_k_categorical_accuracy": "max",
    "precision": "max",
    "recall": "max",
    "auc": "max",
    "mean_squared_error": "min",
    "mean_absolute_error": "min",
    "root_mean_squared_error": "min",
}


def direction(key: str, types: Mapping[str, str] | None = None) -> str | None:
    """``"max"``/``"min"`` for a logged name as Keras's ``mode="auto"`` decides it, else None.

    ``types`` maps display names to metric types (``{"top3": "top_k_categorical_accuracy"}``)
    for metrics the config renamed.
    """
    import trainctl.config.compile  # noqa: F401  (fills the METRICS registry; pydantic, no torch)
    from trainctl.config.base import METRICS

    base = key.removeprefix("val_")
    if base == "loss":
        return "min"
    canonical = METRICS.canonical((types or {}).get(base, base))
    return DIRECTIONS.get(canonical) if canonical else None


def metric_types(config: Mapping[str, Any]) -> dict[str, str]:
    """Display name -> metric type, from a resolved config's ``compile.metrics``."""
    metrics = (config.get("compile") or {}).get("metrics") or []
    return {m["name"]: m["type"] for m in metrics if isinstance(m, dict) and m.get("name") and m.get("type")}


def best_val(history: Mapping[str, Any], types: Mapping[str, str] | None = None) -> BestMetric | None:
    """The best ``val_<first metric>`` (max for accuracy-like, min for error-like), else the best
    ``val_loss``; the first epoch wins a tie, as in Keras's checkpoint logic."""
    metric = first_metric(history)
    candidates = [] if metric is None else [f"val_{metric}"]
    for key in [*candidates, "val_loss"]:
        mode = direction(key, types)
        values = _floats(history.get(key))
        finite = [(v, i) for i, v in enumerate(values) if not math.isnan(v)]
        if mode is None or not finite:
            continue
        pick = max if mode == "max" else min
        value = pick(v for v, _ in finite)
        epoch = next(i for v, i in finite if v == value)
        return BestMetric(key=key, value=value, epoch=epoch + 1, mode=mode)
    return None


def final_metrics(folder: Path) -> dict[str, dict[str, Any]]:
    """``metrics.json`` (train/val/test); for a run that never finished, the last epoch of
    ``history.json`` as train and val. Empty when neither can be read."""
    try:
        metrics = _read_json(folder / RunDir.METRICS)
        if isinstance(metrics, dict):
            return {s: dict(metrics[s]) for s in SPLITS if isinstance(metrics.get(s), dict)}
    except ValueError:
        pass
    try:
        history = _read_json(folder / RunDir.HISTORY_JSON)
    except ValueError:
        return {}
    out: dict[str, dict[str, Any]] = {"train": {}, "val": {}}
    for key, values in history.items() if isinstance(history, dict) else ():
        if key in NOT_METRICS or not isinstance(values, list) or not values:
            continue
        split, base = ("val", key[4:]) if key.startswith("val_") else ("train", key)
        out[split][base] = values[-1]
    return {s: m for s, m in out.items() if m}


def read_record(folder: Path) -> RunRecord:
    """The record of one run folder (one that has a run.json); never raises for a broken one."""
    folder = Path(folder)
    stamp = _STAMP.match(folder.name)
    fallback_name = stamp["name"] if stamp else folder.name
    order_n = int(stamp["n"] or 1) if stamp else 1
    try:
        info = _read_json(folder / RunDir.RUN)
        if not isinstance(info, dict):
            raise ValueError(f"{RunDir.RUN} is not a JSON object")
        if info.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{RunDir.RUN} has format_version {info.get('format_version')!r}, expected {FORMAT_VERSION}"
            )
    except ValueError as exc:
        return RunRecord(
            folder, fallback_name, "corrupt", problems=(str(exc),), order=(_folder_time(folder, stamp), order_n)
        )
    problems: list[str] = []
    history: dict[str, Any] = {}
    if (folder / RunDir.HISTORY_JSON).exists():  # absent before the first epoch, and for imports
        try:
            found = _read_json(folder / RunDir.HISTORY_JSON)
            history = found if isinstance(found, dict) else {}
        except ValueError as exc:
            problems.append(str(exc))
    metrics = final_metrics(folder)
    metric = first_metric(history, metrics) or "loss"
    # a renamed metric (``{type: accuracy, name: acc_top}``): its type, from the config, decides
    types = metric_types(read_config(folder)) if direction(metric) is None else None
    test_split = metrics.get("test", {})
    test_key = metric if metric in test_split else "loss"
    test_value = _floats([test_split.get(test_key)])[0] if test_key in test_split else math.nan
    epochs = info.get("epochs")
    if not isinstance(epochs, int):
        epochs = len(history.get("loss") or []) if history else None
    started = parse_time(info.get("started"))
    return RunRecord(
        folder=folder,
        name=str(info.get("name") or fallback_name),
        status=str(info.get("status") or "unknown"),
        started=info.get("started"),
        ended=info.get("ended"),
        duration_s=duration(info.get("started"), info.get("ended")),
        epochs=epochs,
        best_val=best_val(history, types),
        test=None if math.isnan(test_value) else (test_key, test_value),
        info=info,
        problems=tuple(problems),
        order=(started.timestamp() if started else _folder_time(folder, stamp), order_n),
    )


def _folder_time(folder: Path, stamp: Any) -> float:
    """When a run without a readable start time began: its folder's timestamp (local time)."""
    if stamp:
        try:
            return datetime.strptime(stamp["stamp"], "%Y%m%d-%H%M%S").timestamp()
        except ValueError:
            pass
    try:
        return folder.stat().st_mtime
    except OSError:
        return 0.0


def scan_runs(runs_dir: Path) -> list[RunRecord]:
    """Every run folder (a folder with a run.json) directly under ``runs_dir``, newest first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    folders = [
        p for p in runs_dir.iterdir() if not p.name.startswith(".") and p.is_dir() and (p / RunDir.RUN).is_file()
    ]
    records = [read_record(p) for p in folders]
    return sorted(records, key=lambda r: (r.order, r.folder.name), reverse=True)


def find_run(arg: str | Path, runs_dir: Path = Path("runs")) -> RunDir:
    """A run folder path, a folder name under ``runs_dir``, or a run name (its newest folder)."""
    inside = Path(runs_dir) / str(arg)
    if not Path(arg).is_dir() and "/" not in str(arg) and (inside / RunDir.RUN).is_file():
        return RunDir.open(inside)
    return RunDir.find(arg, runs_dir)


# ------------------------------------------------------------------------------------ configs
def read_config(folder: Path) -> dict[str, Any]:
    """The run's ``config.resolved.yaml`` as plain data ({} when missing or unreadable)."""
    import yaml

    try:
        data = yaml.safe_load((Path(folder) / RunDir.RESOLVED).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys as overrides spell them: ``compile.optimizer.learning_rate``,
    ``model.layers[1].units``. Lists of plain values stay one value (``input_shape: [28, 28]``)."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out |= flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return out if out or not prefix else {prefix: {}}
    if isinstance(node, list) and any(isinstance(v, (dict, list)) for v in node):
        out = {}
        for i, value in enumerate(node):
            out |= flatten(value, f"{prefix}[{i}]")
        return out
    return {prefix: node}


@dataclass(frozen=True)
class Difference:
    """One config key, or one split/metric, across the compared runs (MISSING where absent)."""

    key: str
    values: tuple[Any, ...]
    deltas: tuple[float | None, ...] = ()


def config_diff(configs: Sequence[Mapping[str, Any]]) -> list[Difference]:
    """Only the keys whose values differ between the configs, in first-seen order."""
    flat = [flatten(dict(c)) for c in configs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    out = []
    for key in keys:
        values = tuple(f.get(key, MISSING) for f in flat)
        if any(not _same(v, values[0]) for v in values[1:]):
            out.append(Difference(key, values))
    return out


def _same(a: Any, b: Any) -> bool:
    return a is b if MISSING in (a, b) else (type(a) is type(b) or _numbers(a, b)) and a == b


def _numbers(a: Any, b: Any) -> bool:
    return all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b))


def metric_diff(metrics: Sequence[Mapping[str, Mapping[str, Any]]]) -> list[Difference]:
    """Every split/metric any run has, side by side (``val.accuracy``), with each run's delta
    against the first run (None where either value is missing)."""
    keys = list(dict.fromkeys(f"{s}.{m}" for s in SPLITS for run in metrics for m in run.get(s, {})))
    out = []
    for key in keys:
        split, metric = key.split(".", 1)
        values = tuple(_floats([run[split][metric]])[0] if metric in run.get(split, {}) else MISSING for run in metrics)
        base = values[0]
        deltas = tuple(None if MISSING in (base, v) or math.isnan(base) or math.isnan(v) else v - base for v in values)
        out.append(Difference(key, values, deltas))
    return out


def _type(node: Any) -> Any:
    """A component as written: ``Adam`` for ``{type: Adam, ...}``, the value itself otherwise."""
    return node.get("type", node.get("source")) if isinstance(node, dict) else node


def _file(value: Any) -> str | None:
    return value if isinstance(value, str) else None  # npy's ``x`` is a file, others' are steps


def highlights(config: Mapping[str, Any]) -> dict[str, Any]:
    """The few config facts a person compares runs by: model, optimizer, loss, fit settings."""
    model, comp, fit, data = (config.get(k) or {} for k in ("model", "compile", "fit", "data"))
    optimizer = comp.get("optimizer")
    rate = optimizer.get("learning_rate") if isinstance(optimizer, dict) else None
    out = {
        "model": model.get("name"),
        "layers": [_type(layer) for layer in model.get("layers") or []],
        "optimizer": _type(optimizer),
        "learning_rate": _type(rate),
        "loss": _type(comp.get("loss")),
        "metrics": [m.get("name") or m.get("type") if isinstance(m, dict) else m for m in comp.get("metrics") or []],
        "data": _type(data),
        "data_name": data.get("name") or data.get("path") or data.get("images") or _file(data.get("x")),
        "epochs": fit.get("epochs"),
        "batch_size": fit.get("batch_size"),
        "validation_split": fit.get("validation_split"),
        "callbacks": [_type(c) for c in fit.get("callbacks") or []],
    }
    return {k: v for k, v in out.items() if v not in (None, [], {})}


def config_file(arg: str, runs_dir: Path = Path("runs")) -> Path:
    """``arg`` itself when it is (or names) a YAML file; else a run's ``config.resolved.yaml``."""
    path = Path(arg)
    if path.is_file() or path.suffix.lower() in (".yaml", ".yml"):
        return path
    resolved = find_run(arg, runs_dir).file(RunDir.RESOLVED)
    if not resolved.is_file():
        from trainctl.errors import ArtifactError

        raise ArtifactError(f"{resolved}: missing", hint="the run folder is incomplete")
    return resolved
