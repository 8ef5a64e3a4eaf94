"""``trainctl import``: a model Keras saved -> a complete run folder that evaluate/predict accept.

Three inputs, as Keras writes them: ``model.json`` + weights (native ``.weights.h5`` or legacy
``.h5``), a legacy whole-model ``.h5`` and a Keras 3 ``.keras`` zip. The architecture goes through
the same strict reader as everything else, so an unsupported layer or option is refused by name
(:class:`ArtifactError`) instead of being dropped. The loss, metrics and optimizer come from the
file's ``training_config``/``compile_config``; ``--loss/--metrics/--optimizer`` replace them.

An imported run has no data unless a ``data:`` section is copied from another config. Then
``config.resolved.yaml`` says ``data: null`` (valid for :class:`ImportedConfig`, not for
``RunConfig``), run.json says ``"imported": true, "data": null`` and ``preprocess.json`` is the
identity, so evaluate/predict know they must be given data.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError

from trainctl.config.base import LOSSES, METRICS, OPTIMIZERS, SCHEDULES, Family
from trainctl.config.compile import Loss
from trainctl.config.data import Data
from trainctl.config.schema import CompileSpec, RunConfig
from trainctl.errors import ArtifactError, ConfigError, Problem, TrainctlError

if TYPE_CHECKING:
    from trainctl.config.loader import LoadedConfig
    from trainctl.h5probe import H5Probe
    from trainctl.model.sequential import Sequential

STATUS = "imported"
FORMATS = ("json+weights", "h5", "keras")
USAGE = "MODEL.keras | MODEL.h5 | MODEL.json WEIGHTS.weights.h5"

# Keys of a Keras component config that change nothing we compute.
_IGNORED = frozenset({"name", "dtype", "registered_name", "ema_momentum", "ema_overwrite_frequency",
                      "jit_compile", "is_legacy_optimizer"})  # fmt: skip
# Keras options trainctl does not implement: accepted at this value only (refused by name otherwise).
_KERAS_DEFAULTS: dict[str, Any] = {
    "use_ema": False, "loss_scale_factor": None, "gradient_accumulation_steps": None, "decay": 0.0,
    "axis": -1, "num_labels": None, "label_weights": None, "fn": None,
}  # fmt: skip
_RENAMED = {"lr": "learning_rate"}  # Keras 2 spellings


class ImportedCompile(CompileSpec):
    """An imported model's compile settings: the Keras file may have no loss (``to_json`` +
    ``save_weights`` of an uncompiled model). Predict needs none; evaluate asks for one."""

    loss: Loss | None = None  # type: ignore[valid-type]


class ImportedConfig(RunConfig):
    """``config.resolved.yaml`` of an imported run: a RunConfig whose ``data`` and loss may be null."""

    data: Data | None = None  # type: ignore[valid-type]
    compile: CompileSpec | ImportedCompile  # type: ignore[assignment]  # the latter when the file had no loss


def load_resolved(path: Path | str) -> LoadedConfig:
    """Any run's ``config.resolved.yaml``: a RunConfig, or an :class:`ImportedConfig` (``data: null``)."""
    from trainctl.config import load_config
    from trainctl.config.loader import LoadedConfig, parse_yaml, problems_from

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path} ({exc})") from None
    raw, locs = parse_yaml(text, str(path))
    if raw.get("data") is not None:
        return load_config(path)
    loaded = LoadedConfig(None, path, raw, text, (), locs)
    try:
        loaded.config = ImportedConfig.model_validate(raw)
    except ValidationError as exc:
        problems = problems_from(exc, ImportedConfig, raw)
        problems = [Problem(p.message, p.key, loaded.where(p.key or "") or str(path), p.hint) for p in problems]
        raise ConfigError(f"{len(problems)} problem(s) in {path}", problems=problems) from None
    return loaded


@dataclass
class KerasSource:
    """A Keras model read from disk: our built model plus what the files said about training."""

    format: str  # one of FORMATS
    files: list[Path]
    model: Sequential
    compile_config: dict[str, Any] | None  # Keras training_config / compile_config; None: uncompiled
    keras_version: str | None
    backend: str | None


@dataclass
class ImportResult:
    run_dir: Path
    source: KerasSource
    config: ImportedConfig

    @property
    def has_data(self) -> bool:
        return self.config.data is not None


# ---------------------------------------------------------------------------------------------
# reading the Keras files


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _h5_attrs(path: Path, probe: H5Probe) -> dict[str, str]:
    import h5py

    if not h5py.is_hdf5(path):
        raise ArtifactError(f"{path.name}: expected an HDF5 file, received something else")
    probe.check(path.name)
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: _text(f.attrs[k]) for k in ("model_config", "training_config", "keras_version", "backend")
                     if k in f.attrs}  # fmt: skip
            group = f.get("model_weights", f)
            for key in ("keras_version", "backend"):
                if key not in attrs and key in group.attrs:
                    attrs[key] = _text(group.attrs[key])
    except (OSError, RuntimeError, KeyError, ValueError) as exc:  # h5py's errors on a damaged file
        raise ArtifactError(f"{path.name}: the file is truncated or corrupt ({exc})") from None
    return attrs


def _json_obj(text: str, label: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{label}: expected JSON, received text that is not JSON ({exc})") from None


def _build(config_text: str, label: str) -> Sequential:
    import torch

    from trainctl.model.sequential import build_model
    from trainctl.serialization import model_spec_from_json

    try:
        spec = model_spec_from_json(config_text)
        with torch.random.fork_rng(devices=[]):
            return build_model(spec)
    except TrainctlError as exc:
        raise ArtifactError(f"{label}: {exc.render()}") from None


def _compile_of(obj: Any) -> dict[str, Any] | None:
    """Keras 3's ``compile_config`` (``{}`` when the model was never compiled)."""
    cfg = obj.get("compile_config") if isinstance(obj, dict) else None
    return cfg if isinstance(cfg, dict) and cfg else None


def _classify(paths: Sequence[Path]) -> tuple[str, list[Path]]:
    names = [p.name for p in paths]
    zips = [p for p in paths if p.suffix == ".keras"]
    jsons = [p for p in paths if p.suffix == ".json"]
    h5s = [p for p in paths if p.suffix in (".h5", ".hdf5")]
    odd = [p.name for p in paths if p not in zips + jsons + h5s]
    if odd:
        raise ConfigError(f"expected .keras, .json, .weights.h5 or .h5 files, received {', '.join(odd)}", hint=USAGE)
    if len(zips) == 1 and len(paths) == 1:
        return "keras", zips
    if len(jsons) == 1 and len(h5s) == 1 and len(paths) == 2:
        return "json+weights", [jsons[0], h5s[0]]
    if len(h5s) == 1 and len(paths) == 1:
        if h5s[0].name.endswith(".weights.h5"):
            raise ConfigError(
                f"{h5s[0].name} holds weights only; give the model's JSON too",
                hint=f"trainctl import model.json {h5s[0].name} --out RUN",
            )
        return "h5", h5s
    if len(jsons) == 1 and len(paths) == 1:
        raise ConfigError(f"{jsons[0].name} holds the architecture only; give its weights file too", hint=USAGE)
    raise ConfigError(f"expected one of: {USAGE}; received {' '.join(names) or 'no files'}")


def read_keras_model(paths: Sequence[Path | str]) -> KerasSource:
    """Read a Keras model saved in any of the three forms (see module doc); never runs Keras."""
    from trainctl.h5probe import H5Probe
    from trainctl.serialization import load_weights_h5, read_keras_zip

    files = [Path(p) for p in paths]
    kind, files = _classify(files)
    for p in files:
        if not p.is_file():
            raise ArtifactError(f"{p.name}: file not found ({p})")
    if kind == "keras":
        with tempfile.TemporaryDirectory(prefix="trainctl-import-") as tmp:
            archive = read_keras_zip(files[0], Path(tmp))
            with H5Probe(archive.weights) as probe:  # overlaps with building the model
                model = _build(archive.config, f"{files[0].name}: config.json")
                try:
                    load_weights_h5(model, archive.weights, probe)
                except ArtifactError as exc:
                    raise ArtifactError(f"{files[0].name}: {exc.render()}") from None
        obj = _json_obj(archive.config, files[0].name)
        return KerasSource(kind, files, model, _compile_of(obj), archive.keras_version, None)
    if kind == "h5":
        with H5Probe(files[0]) as probe:
            attrs = _h5_attrs(files[0], probe)
            if "model_config" not in attrs:
                raise ConfigError(
                    f"{files[0].name} holds weights only (it has no model_config); give the model's JSON too",
                    hint=f"trainctl import model.json {files[0].name} --out RUN",
                )
            model = _build(attrs["model_config"], f"{files[0].name}: model_config")
            load_weights_h5(model, files[0], probe)
        training = _json_obj(attrs["training_config"], files[0].name) if "training_config" in attrs else None
        return KerasSource(kind, files, model, training, attrs.get("keras_version"), attrs.get("backend"))
    json_path, weights = files
    try:
        text = json_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{json_path.name}: cannot read ({exc})") from None
    with H5Probe(weights) as probe:  # overlaps with building the model
        model = _build(text, json_path.name)
        load_weights_h5(model, weights, probe)
        attrs = {} if weights.name.endswith(".weights.h5") else _h5_attrs(weights, probe)
    obj = _json_obj(text, json_path.name)
    return KerasSource(kind, files, model, _compile_of(obj), attrs.get("keras_version"), attrs.get("backend"))


# ---------------------------------------------------------------------------------------------
# Keras training_config -> compile spec


def _f32(value: Any) -> Any:
    """Keras stores hyper-parameters as float32 (0.01 -> 0.009999999776482582): undo that."""
    if isinstance(value, float) and float(np.float32(value)) == value:
        return float(str(np.float32(value)))
    return value


def _component(value: Any, family: Family, where: str, *, round32: bool = False) -> Any:
    """A Keras serialized loss/metric/optimizer/schedule -> what our spec validates."""
    if isinstance(value, dict) and value.get("class_name") == "function":  # Keras 3 plain function
        value = value.get("config")
    if isinstance(value, str):
        if family.canonical(value) is None:
            raise ArtifactError(
                f"{where}: {family.name} {value!r} is not supported yet; expected one of: {', '.join(family.names())}"
            )
        return value
    if not isinstance(value, dict) or not isinstance(value.get("class_name"), str):
        raise ArtifactError(
            f"{where}: expected a Keras {family.name} (a name, or class_name and config), received {value!r}"
        )
    cls_name = value["class_name"].removeprefix("Custom>")
    canonical = family.canonical(cls_name)
    if canonical is None:
        raise ArtifactError(
            f"{where}: {family.name} {cls_name!r} is not supported yet; expected one of: {', '.join(family.names())}"
        )
    fields = family.specs[canonical].model_fields
    out: dict[str, Any] = {family.tag: canonical}
    for key, item in (value.get("config") or {}).items():
        key = _RENAMED.get(key, key)
        if key == "learning_rate" and isinstance(item, dict):
            out[key] = _component(item, SCHEDULES, f"{where}.learning_rate", round32=True)
        elif key == "reduction" and item == "auto":  # Keras 2's name for sum_over_batch_size
            out[key] = "sum_over_batch_size"
        elif key in fields and key != family.tag:
            out[key] = _f32(item) if round32 else item
        elif key in _IGNORED or (key in _KERAS_DEFAULTS and item == _KERAS_DEFAULTS[key]):
            continue
        else:
            raise ArtifactError(f"{where}: {family.name} {cls_name} option {key}={item!r} is not supported yet")
    return out


def _single(value: Any, what: str, where: str) -> Any:
    """Sequential has one output: unwrap Keras's per-output list, refuse per-output dicts."""
    if isinstance(value, list) and len(value) == 1 and (what == "loss" or isinstance(value[0], list)):
        return value[0]
    if isinstance(value, dict) and "class_name" not in value:
        raise ArtifactError(f"{where}: expected one {what} for the single output, received a per-output mapping")
    return value


def _per_output(training: dict[str, Any], label: str, skip: set[str], outputs: list[str]) -> dict[str, Any]:
    """Keras's per-output settings (dicts by output name, or lists in output order)."""

    def by_name(value: Any) -> dict[str, Any] | None:
        if isinstance(value, dict) and "class_name" not in value:
            return value
        if isinstance(value, list) and len(value) == len(outputs):
            return dict(zip(outputs, value, strict=True))
        return None

    out: dict[str, Any] = {}
    if training.get("weighted_metrics") not in (None, [], {}):
        raise ArtifactError(f"{label}: weighted_metrics={training['weighted_metrics']!r} is not supported yet")
    loss = training.get("loss")
    if loss is not None and "loss" not in skip:
        per = by_name(loss)
        out["loss"] = (
            {k: _component(v, LOSSES, f"{label}.loss.{k}") for k, v in per.items()}
            if per is not None
            else _component(loss, LOSSES, f"{label}.loss")
        )
    weights = training.get("loss_weights")
    if weights not in (None, [], {}):
        out["loss_weights"] = by_name(weights) or weights
    metrics = training.get("metrics")
    if metrics not in (None, [], {}) and "metrics" not in skip:
        per = by_name(metrics)
        if per is None:
            raise ArtifactError(
                f"{label}.metrics: expected metrics per output ({', '.join(outputs)}), received {metrics!r}"
            )
        out["metrics"] = {
            k: [
                _component(m, METRICS, f"{label}.metrics.{k}[{i}]")
                for i, m in enumerate(v if isinstance(v, list) else [v])
            ]
            for k, v in per.items()
            if v is not None
        }
    optimizer = training.get("optimizer_config", training.get("optimizer"))
    if optimizer is not None and "optimizer" not in skip:
        out["optimizer"] = _component(optimizer, OPTIMIZERS, f"{label}.optimizer", round32=True)
    return out


def _from_file(
    training: dict[str, Any], label: str, skip: set[str], outputs: list[str] | None = None
) -> dict[str, Any]:
    """Translate the file's settings, except those a flag replaces (so a flag rescues them)."""
    if outputs is not None and len(outputs) > 1:
        return _per_output(training, label, skip, outputs)
    out: dict[str, Any] = {}
    for key in ("loss_weights", "weighted_metrics"):
        if training.get(key) not in (None, [], {}):
            raise ArtifactError(f"{label}: {key}={training[key]!r} is not supported yet")
    loss = _single(training.get("loss"), "loss", f"{label}.loss")
    if loss is not None and "loss" not in skip:
        out["loss"] = _component(loss, LOSSES, f"{label}.loss")
    metrics = _single(training.get("metrics"), "metrics", f"{label}.metrics")
    if metrics is not None and "metrics" not in skip:
        if not isinstance(metrics, list):
            metrics = [metrics]
        out["metrics"] = [_component(m, METRICS, f"{label}.metrics[{i}]") for i, m in enumerate(metrics)]
    optimizer = training.get("optimizer_config", training.get("optimizer"))
    if optimizer is not None and "optimizer" not in skip:
        out["optimizer"] = _component(optimizer, OPTIMIZERS, f"{label}.optimizer", round32=True)
    return out


def compile_spec(
    training: dict[str, Any] | None,
    *,
    loss: str | None = None,
    metrics: Sequence[str] | None = None,
    optimizer: str | None = None,
    label: str = "training_config",
    require_loss: bool = True,
    outputs: list[str] | None = None,
) -> CompileSpec:
    """Keras's training settings, with the command-line values winning. Without ``require_loss``
    a file with no loss gives an :class:`ImportedCompile` whose loss is None."""
    from trainctl.config.loader import problems_from

    given = {k: v for k, v in (("loss", loss), ("metrics", metrics), ("optimizer", optimizer)) if v is not None}
    raw = _from_file(training, label, set(given), outputs) if training else {}
    raw |= {k: list(v) if k == "metrics" else v for k, v in given.items()}
    if "loss" not in raw and not require_loss:
        return ImportedCompile.model_validate(raw)
    if "loss" not in raw:
        raise ConfigError(
            "expected --loss: the Keras file has no loss (the model was saved uncompiled), and evaluating needs one",
            key="--loss",
            hint="e.g. --loss categorical_crossentropy --metrics accuracy",
        )
    try:
        return CompileSpec.model_validate(raw)
    except ValidationError as exc:
        problems = problems_from(exc, CompileSpec, raw)
        cli = [Problem(p.message, f"--{p.key.split('[')[0].split('.')[0]}", hint=p.hint)
               for p in problems if p.key and p.key.split("[")[0].split(".")[0] in given]  # fmt: skip
        if cli:
            raise ConfigError(cli[0].message, problems=cli) from None
        rendered = [Problem(p.message, f"{label}.{p.key}" if p.key else label, hint=p.hint) for p in problems]
        raise ArtifactError(rendered[0].message, problems=rendered) from None


# ---------------------------------------------------------------------------------------------
# the data section (optional)


def _with_data(data_config: Path, base: dict[str, Any]) -> tuple[RunConfig, Any, Path]:
    """Copy ``data:`` (and ``seed:``) from another config; validate and load that data."""
    from trainctl.config.loader import LoadedConfig, parse_yaml, problems_from
    from trainctl.data import load_data

    path = Path(data_config)
    if not path.is_file():
        raise ConfigError(f"data config not found: {path}", key="--data-config")
    text = path.read_text(encoding="utf-8")
    raw, locs = parse_yaml(text, str(path))
    if "data" not in raw:
        raise ConfigError(f"expected a data: section in {path}", key="--data-config")
    seed = raw.get("seed")
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    full = {**base, "seed": seed, "data": raw["data"]}
    loaded = LoadedConfig(None, path, full, text, (), locs)
    try:
        cfg = RunConfig.model_validate(full, context={"base_dir": str(path.parent)})
    except ValidationError as exc:
        problems = problems_from(exc, RunConfig, full)
        problems = [p for p in problems if (p.key or "").startswith(("data", "seed"))] or problems
        problems = [Problem(p.message, p.key, loaded.where(p.key or "") or str(path), p.hint) for p in problems]
        raise ConfigError(f"{len(problems)} problem(s) in {path}", problems=problems) from None
    try:
        ds = load_data(cfg.data, base_dir=path.parent, seed=seed)
    except TrainctlError as exc:
        exc.locate(loaded.where)
        raise
    return cfg, ds, path.parent


def _check_fit(model: Sequential, cfg: RunConfig, ds: Any) -> None:
    from trainctl.api import check_input
    from trainctl.training.losses import check_targets

    check_input(model, ds.x_train.shape[1:])
    check_targets(cfg.compile.loss, tuple(ds.y_train.shape), (None, *model.output_shape))


# ---------------------------------------------------------------------------------------------
# the run folder


def _run_name(out: Path, name: str | None) -> str:
    if name is not None:
        return name
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", out.resolve().name).lstrip("._-")
    return cleaned or "imported"


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        what = "a file" if not out.is_dir() else "a folder that is not empty"
        raise ConfigError(
            f"expected a new or empty folder, received {what}: {out}",
            key="--out",
            hint="choose another --out, or remove that folder first",
        )


def _header(source: KerasSource, has_data: bool) -> str:
    lines = [f"# imported by `trainctl import` from {' '.join(p.name for p in source.files)}"]
    if not has_data:
        lines.append("# data: null -- no data source: give evaluate/predict the data (--data)")
    return "\n".join(lines) + "\n"


def _origins(training: dict[str, Any] | None, given: dict[str, Any]) -> dict[str, str]:
    """Where each compile setting came from: the command line, the Keras file, or Keras's default."""
    t = training or {}
    in_file = {"loss": t.get("loss"), "metrics": t.get("metrics"),
               "optimizer": t.get("optimizer_config", t.get("optimizer"))}  # fmt: skip
    return {k: "flag" if given.get(k) is not None else "file" if v is not None else "default"
            for k, v in in_file.items()}  # fmt: skip


def _write_run(
    tmp: Path, source: KerasSource, cfg: ImportedConfig, ds: Any, base_dir: Path | None, origins: dict[str, str]
) -> None:
    from trainctl import __version__
    from trainctl.api import render_summary, resolved_yaml, training_config
    from trainctl.data import Preprocessor
    from trainctl.runs import RunDir
    from trainctl.serialization import save_keras_artifacts

    run = RunDir(tmp)
    model = source.model
    save_keras_artifacts(model, tmp, training_config=training_config(cfg) if cfg.compile.loss is not None else None)
    body = resolved_yaml(cfg)
    run.write_text(RunDir.RESOLVED, _header(source, ds is not None) + body)
    run.write_text(RunDir.CONFIG, _header(source, ds is not None) + body)
    pre = ds.preprocessor if ds is not None else Preprocessor([], [])
    run.write_json(RunDir.PREPROCESS, pre.to_json() | {"class_names": ds.class_names if ds is not None else None})
    run.write_text(RunDir.SUMMARY, render_summary(model))
    import torch

    now = datetime.now(UTC).isoformat(timespec="seconds")
    run.update_run(
        name=cfg.name,
        status=STATUS,
        imported=True,
        started=now,
        ended=now,
        epochs=0,
        seed=cfg.seed,
        data=cfg.data.model_dump(mode="json") if cfg.data is not None else None,
        base_dir=str(base_dir.resolve()) if base_dir is not None else None,
        source={
            "format": source.format,
            "files": [str(p.resolve()) for p in source.files],
            "keras_version": source.keras_version,
            "backend": source.backend,
        },
        keras_version=source.keras_version,
        compile_from=origins,
        params=sum(r.params for r in model.info),
        versions={"trainctl": __version__, "torch": torch.__version__, "numpy": np.__version__},
        command=sys.argv,
    )


def import_keras(
    paths: Sequence[Path | str],
    out: Path | str,
    *,
    loss: str | None = None,
    metrics: Sequence[str] | None = None,
    optimizer: str | None = None,
    data_config: Path | str | None = None,
    name: str | None = None,
) -> ImportResult:
    """Read a Keras model and write a complete run folder at ``out`` (new or empty; all or nothing)."""
    from trainctl.training.losses import build_loss

    out = Path(out)
    _check_out(out)
    source = read_keras_model(paths)
    label = source.files[0].name + (": training_config" if source.format == "h5" else ": compile_config")
    comp = compile_spec(
        source.compile_config, loss=loss, metrics=metrics, optimizer=optimizer, label=label,
        require_loss=data_config is not None,  # the data check needs the loss; predict does not
        outputs=list(source.model.output_names),
    )  # fmt: skip
    if comp.loss is not None:
        for i, spec in enumerate(comp.loss.values() if isinstance(comp.loss, dict) else [comp.loss]):
            build_loss(spec, source.model.final_activations[i])  # from_logits vs the last activation, now
    base = {"name": _run_name(out, name), "device": "auto", "model": source.model.spec, "compile": comp}
    ds: Any = None
    base_dir: Path | None = None
    extra: dict[str, Any] = {"seed": None, "data": None}
    if data_config is not None:
        run_cfg, ds, base_dir = _with_data(Path(data_config), base)
        _check_fit(source.model, run_cfg, ds)
        extra = {"seed": run_cfg.seed, "data": run_cfg.data}
    try:
        cfg = ImportedConfig.model_validate(base | extra)
    except ValidationError as exc:  # only --name can be wrong here
        raise ConfigError(exc.errors()[0]["msg"].removeprefix("Value error, "), key="--name") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{uuid.uuid4().hex[:12]}.tmp"
    tmp.mkdir()  # a sibling, so the final rename is atomic; mkdir honours the umask like train's
    try:
        given = {"loss": loss, "metrics": metrics, "optimizer": optimizer}
        _write_run(tmp, source, cfg, ds, base_dir, _origins(source.compile_config, given))
        os.replace(tmp, out)  # replaces an empty folder, never a full one
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if out.exists():
            _check_out(out)  # someone filled it meanwhile: say so plainly
        raise ArtifactError(f"could not write the run folder {out} ({exc})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ImportResult(out, source, cfg)
