"""``evaluate`` and ``predict``: start from a finished run folder alone, never from the original config.

A run folder holds everything needed: ``config.resolved.yaml`` (loss, metrics, data source, seed),
``preprocess.json`` (the fitted steps, replayed exactly: refitting could differ), ``model.json`` +
``model.weights.h5``. So a run folder can be copied or moved and still be evaluated. Never prints.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np

from trainctl.errors import ArtifactError, ConfigError, DataError, TrainctlError
from trainctl.runs import RunDir

Mode = Literal["raw", "proba", "classes"]
EVAL_METRICS = "eval/metrics.json"
LABEL_COLUMNS = ("target", "label", "labels", "y", "class")
PREDICT_BATCH = 1024
CROSSENTROPY = ("categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy")


@dataclass
class LoadedRun:
    """What a run folder holds, rebuilt: the config, the saved preprocessing and the model."""

    run: RunDir
    config: Any  # RunConfig
    info: dict[str, Any]
    preprocessor: Any  # trainctl.data.Preprocessor
    class_names: list[str] | None
    model: Any  # trainctl.model.sequential.Sequential, in eval mode on ``device``
    device: Any

    @property
    def base_dir(self) -> Path:
        return Path(self.info.get("base_dir") or self.run.path)


@dataclass
class EvalResult:
    run_dir: Path
    data: str
    samples: int
    metrics: dict[str, float] = field(default_factory=dict)
    saved: Path | None = None


@dataclass
class PredictResult:
    run_dir: Path
    input: str
    output: str
    rows: int
    mode: str
    columns: list[str]


def open_run(run: str | Path, *, runs_dir: Path = Path("runs"), device: str | None = None) -> LoadedRun:
    """Load a run folder (a path, or a run name: the newest under ``runs_dir``)."""
    from trainctl.h5probe import H5Probe

    rd = RunDir.find(run, Path(runs_dir))
    weights = rd.file("model.weights.h5")
    # the weights file's child-process read starts before torch loads, so it costs no time
    probe = H5Probe(weights) if weights.is_file() else None
    with probe if probe is not None else contextlib.nullcontext():
        return _open_run(rd, device, probe)


def _open_run(rd: RunDir, device: str | None, probe: Any) -> LoadedRun:
    import torch

    from trainctl.api import default_threads, resolve_device
    from trainctl.data import Preprocessor
    from trainctl.importer import load_resolved
    from trainctl.serialization import load_model_from_dir

    info = rd.read_json(RunDir.RUN)
    resolved = rd.file(RunDir.RESOLVED)
    if not resolved.is_file():
        raise ArtifactError(f"{RunDir.RESOLVED}: file not found in {rd.path}")
    try:
        loaded = load_resolved(resolved)  # an imported run may have `data: null`
    except ConfigError as exc:
        raise ArtifactError(f"{resolved}: not a valid run config ({exc.render()})") from None
    raw_pre = rd.read_json(RunDir.PREPROCESS)
    try:
        pre = Preprocessor.from_json(raw_pre)
    except (KeyError, TypeError, ValueError) as exc:
        detail = exc.render() if isinstance(exc, TrainctlError) else repr(exc)
        raise ArtifactError(f"{rd.file(RunDir.PREPROCESS)}: not a saved preprocessor ({detail})") from None
    names = raw_pre.get("class_names") if isinstance(raw_pre, dict) else None
    cfg = loaded.config
    dev = resolve_device(device or "auto")
    torch.set_num_threads(cfg.threads or default_threads())
    model = load_model_from_dir(rd.path, probe).to(dev).eval()
    return LoadedRun(rd, cfg, info, pre, [str(n) for n in names] if names else None, model, dev)


def require_loss(cfg: Any) -> None:
    """Evaluating needs a loss; an imported Keras file saved uncompiled has none (predict does not)."""
    if cfg.compile.loss is None:
        raise ConfigError(
            "expected a loss to evaluate with, received none: this run was imported from a Keras file "
            "saved without one (uncompiled)",
            key="compile.loss",
            hint="import it again with --loss, e.g. `trainctl import model.json model.weights.h5 --out RUN "
            "--loss sparse_categorical_crossentropy --metrics accuracy`",
        )


def _fmt(shape: tuple[Any, ...]) -> str:
    return f"{shape[0]} features per sample" if len(shape) == 1 else f"samples of shape {shape}"


def check_raw(lr: LoadedRun, shape: tuple[int, ...], where: str) -> None:
    """Raw samples must fit the model once the saved steps run; say so before a step fails deep inside.

    Without a reshape/flatten step every step keeps the sample shape, so it must be the model's
    input shape; with one, at least the number of values per sample must agree.
    """
    want, got = tuple(lr.model.input_shape), tuple(shape)
    if any(s.op in ("reshape", "flatten") for s in lr.preprocessor.x_steps):
        if None not in want and math.prod(want) != math.prod(got):
            raise DataError(
                f"expected {math.prod(want)} values per sample (the model takes {want} after the run's "
                f"preprocessing), received {_fmt(got)} in {where}"
            )
        return
    check_samples(lr.model, got, where)


def check_samples(model: Any, shape: tuple[int, ...], where: str) -> None:
    """Preprocessed samples must fit the model's input: "expected 64 features, received 10"."""
    want, got = tuple(model.input_shape), tuple(shape)
    if len(want) == len(got) and all(w is None or w == g for w, g in zip(want, got, strict=True)):
        return
    if len(want) == 1 and len(got) == 1:
        msg = f"expected {want[0]} features per sample, received {got[0]} in {where}"
    else:
        msg = f"expected {_fmt(want)}, received {_fmt(got)} in {where}"
    raise DataError(msg, hint=f"the model's input shape is {want}")


# ---------------------------------------------------------------------------------------------
# evaluate


def _test_split(lr: LoadedRun, spec: Any, base_dir: Path, seed: int, rows: int | None) -> tuple[Any, Any]:
    from trainctl.data.dataset import load_test_split

    split = load_test_split(spec, base_dir=base_dir, seed=seed, preprocessor=lr.preprocessor, rows=rows)
    if split is None:
        raise DataError(
            f"expected data with a test split, received a {spec.source} source without one",
            key="data.test_split",
            hint="evaluate on other data with --data FILE.npz, FILE.csv or CONFIG.yaml",
        )
    return split


def _npz_xy(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``x_test``/``y_test``, else ``x``/``y``, else ``x_train``/``y_train``."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = set(archive.files)
            for xk, yk in (("x_test", "y_test"), ("x", "y"), ("x_train", "y_train")):
                if {xk, yk} <= keys:
                    return np.asarray(archive[xk]), np.asarray(archive[yk])
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"expected an .npz archive in {path}, received an unreadable one ({exc})") from None
    raise DataError(
        f"expected keys x_test/y_test, x/y or x_train/y_train in {path}, received {', '.join(sorted(keys))}"
    )


def _csv_xy(lr: LoadedRun, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A labelled CSV: the run's own csv columns when it was trained on CSV, else a label column."""
    import csv as csvmod

    from trainctl.config.data import csv as CsvSpec  # noqa: N812
    from trainctl.data.csvfile import load_csv

    spec = lr.config.data
    if spec is not None and spec.source == "csv":
        spec = spec.model_copy(update={"path": str(path), "test_path": None})
    else:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            header = [h.strip() for h in next(csvmod.reader(fh), [])]
        target = next((h for h in header if h.lower() in LABEL_COLUMNS), None)
        if target is None:
            raise DataError(
                f"expected a label column named {', '.join(LABEL_COLUMNS)} in {path}, received columns "
                f"{', '.join(header) or '(none)'}",
                hint="the run was not trained on CSV, so its label column is not known",
            )
        spec = CsvSpec(path=str(path), target=target)
    x, y, _, _, names = load_csv(spec, path.parent)
    if names is not None:  # text labels: map through the run's saved vocabulary, not this file's
        vocab = {n: i for i, n in enumerate(lr.class_names or [])}
        unknown = sorted(set(names) - set(vocab))
        if unknown:
            raise DataError(
                f"expected labels among the run's classes ({', '.join(vocab) or 'none'}), received "
                f"{', '.join(repr(u) for u in unknown[:5])} in {path}"
            )
        y = np.asarray([vocab[n] for n in names], dtype=np.int64)[y]
    return x, y


def _eval_data(lr: LoadedRun, data: Path | None) -> tuple[str, Any, Any]:
    """(description, x, y) after the run's saved preprocessing."""
    from trainctl.api import SMOKE_TEST_ROWS
    from trainctl.config import load_config

    cfg = lr.config
    if data is None and cfg.data is None:
        raise DataError(
            f"{lr.run.path} was imported without a data source, so it has no test split",
            hint="give --data FILE.npz, FILE.csv or CONFIG.yaml",
        )
    if data is None:
        rows = SMOKE_TEST_ROWS if lr.info.get("smoke") else None
        x, y = _test_split(lr, cfg.data, lr.base_dir, cfg.seed, rows)
        return f"test split ({cfg.data.source})", x, y
    path = Path(data).expanduser()
    if not path.is_file():
        from trainctl.data.inputs import not_found

        raise not_found(path)
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        other = load_config(path).config
        seed = other.seed if other.seed is not None else cfg.seed
        if cfg.data is None:  # imported run: no fitted steps of its own, so use that config's
            from trainctl.data import load_data

            ds = load_data(other.data, base_dir=path.parent, seed=seed)
            if ds.x_test is None:
                raise DataError(f"expected data with a test split, received a {other.data.source} source without one")
            return f"test split of {path}", ds.x_test, ds.y_test
        x, y = _test_split(lr, other.data, path.parent, seed, None)
        return f"test split of {path}", x, y
    if suffix == ".npz":
        x, y = _npz_xy(path)
    elif suffix == ".csv":
        x, y = _csv_xy(lr, path)
    else:
        raise DataError(f"expected --data to be an .npz, .csv or config .yaml file, received {path}")
    if len(x) != len(y):
        raise DataError(f"expected as many labels as samples in {path}, received {len(x)} and {len(y)}")
    check_raw(lr, x.shape[1:], str(path))
    return str(path), lr.preprocessor.transform_x(x), lr.preprocessor.transform_y(y)


def evaluate(
    run: str | Path,
    *,
    data: Path | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    runs_dir: Path = Path("runs"),
    save: bool = True,
) -> EvalResult:
    """Keras ``model.evaluate`` on the run's test split (or ``data``): the loss and every metric.

    On the run's own test split the numbers equal ``metrics.json``'s ``test``, because the same
    rows, preprocessing, loss and metric code are used. The result is also saved to
    ``<run>/eval/metrics.json`` (the only file evaluate writes), unless ``save`` is False.
    """
    lr = open_run(run, runs_dir=runs_dir, device=device)
    require_loss(lr.config)
    from trainctl import predict_multi as pm

    if pm.several_io(lr.model):  # one array per input and output (predict_multi.eval_arrays)
        where, x, y = pm.eval_arrays(lr, data)
    else:
        where, x, y = _eval_data(lr, data)
    return _evaluate_arrays(lr, where, x, y, batch_size=batch_size, save=save)


def _evaluate_arrays(
    lr: LoadedRun, where: str, x: np.ndarray, y: np.ndarray, *, batch_size: int | None, save: bool
) -> EvalResult:
    """The body of :func:`evaluate` on arrays already preprocessed, shared with the report."""

    from trainctl.api import _shapes, check_input
    from trainctl.devices import to_device
    from trainctl.model.tensors import TensorTuple
    from trainctl.training.compiled import compile_model
    from trainctl.training.loop import Split, Trainer

    cfg, model = lr.config, lr.model
    require_loss(cfg)
    if isinstance(x, TensorTuple):
        check_input(model, x)
    else:
        check_samples(model, x.shape[1:], where)
    loss, metrics = compile_model(cfg.compile, model, _shapes(y))
    from trainctl.data.values import check_model_labels

    check_model_labels(cfg.compile.loss, model, y, where)
    trainer = Trainer(
        model=model,
        optimizer=None,
        loss=loss,
        metrics=metrics,
        batch_size=batch_size or cfg.fit.resolved_batch_size,
    )
    split = Split(to_device(x, lr.device), to_device(y, lr.device))
    result = EvalResult(lr.run.path, where, int(x.shape[0]), trainer.evaluate(split))
    if save:
        record = {
            "data": where,
            "samples": result.samples,
            "metrics": result.metrics,
            "evaluated": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        try:
            lr.run.file("eval").mkdir(exist_ok=True)
            result.saved = lr.run.write_json(EVAL_METRICS, record)
        except OSError:  # a read-only copy of a run folder can still be evaluated
            result.saved = None
    return result


# ---------------------------------------------------------------------------------------------
# evaluate with predictions (for ``evaluate --report``)

REPORT_SAMPLES = 15  # raw inputs kept for the report's sample grid


@dataclass
class EvalPredictions:
    """Targets and model outputs for exactly the rows :func:`evaluate` scored: what a report needs."""

    data: str
    y: np.ndarray  # targets after the saved y preprocessing
    outputs: np.ndarray  # the last layer's outputs, as Keras's ``model.predict`` returns them
    proba: np.ndarray | None  # probabilities when the model is a classifier (logits softmaxed/sigmoided)
    raw_x: np.ndarray | None  # the first REPORT_SAMPLES inputs before preprocessing (None if unseen)
    x: np.ndarray  # the first REPORT_SAMPLES inputs after preprocessing
    loss: str
    class_names: list[str] | None


class _RawRecorder:
    """Stands in for the run's preprocessor and keeps the first rows it is handed, untransformed,
    so a report can show the raw images without loading the data a second time."""

    def __init__(self, inner: Any, keep: int) -> None:
        self.inner, self.keep = inner, keep
        self.raw: np.ndarray | None = None

    def transform_x(self, x: np.ndarray) -> np.ndarray:
        if self.raw is None:
            self.raw = np.array(np.asarray(x)[: self.keep])
        return self.inner.transform_x(x)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _predict_arrays(lr: LoadedRun, x: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The model's outputs on preprocessed ``x`` in batches, and probabilities when it is a classifier."""
    import torch

    try:
        to_proba = _postprocess(lr, "proba")
    except ConfigError:
        to_proba = None
    outs: list[np.ndarray] = []
    probas: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            out = lr.model(torch.as_tensor(x[start : start + batch_size]).to(lr.device, non_blocking=True))
            outs.append(out.cpu().numpy())
            if to_proba is not None:
                probas.append(to_proba(out).cpu().numpy())
    width = tuple(d or 0 for d in lr.model.output_shape)
    empty = np.zeros((0, *width), dtype=np.float32)
    output = np.concatenate(outs) if outs else empty
    proba = None if to_proba is None else (np.concatenate(probas) if probas else empty)
    return output, proba


def _several_predictions(
    lr: LoadedRun, data: Path | None, batch_size: int | None, save: bool
) -> tuple[EvalResult, dict[str, EvalPredictions]]:
    """:func:`evaluate` of a model with several inputs or outputs, and one :class:`EvalPredictions`
    per output (its targets, outputs, probabilities when its loss or activation makes it a
    classifier, and its own loss), keyed by output name in model order."""
    import torch

    from trainctl import predict_multi as pm
    from trainctl.training.outputs import per_output

    where, x, y = pm.eval_arrays(lr, data)
    bs = batch_size or lr.config.fit.resolved_batch_size
    result = _evaluate_arrays(lr, where, x, y, batch_size=bs, save=save)
    outputs = pm.predict_arrays(lr.model, x, bs, lr.device)
    names = list(lr.model.output_names)
    losses = per_output(lr.config.compile.loss, names, "losses", "compile.loss")
    targets = list(y) if isinstance(y, tuple) else [y]
    preds: dict[str, EvalPredictions] = {}
    for k, name in enumerate(names):
        spec, out = losses[k], outputs[name]
        to_proba = _proba_of(lr.model.final_activations[k], spec.type, bool(spec.kwargs().get("from_logits")))
        proba = None if to_proba is None else to_proba(torch.as_tensor(out)).numpy()
        preds[name] = EvalPredictions(
            where, np.asarray(targets[k]), out, proba, None, np.zeros((0,), np.float32), spec.type,
            lr.class_names if len(names) == 1 else None,
        )  # fmt: skip
    return result, preds


def evaluate_with_predictions(
    run: str | Path,
    *,
    data: Path | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    runs_dir: Path = Path("runs"),
    save: bool = True,
) -> tuple[EvalResult, EvalPredictions | dict[str, EvalPredictions]]:
    """:func:`evaluate`, plus the targets and predictions behind its numbers (one load of the data).

    A model with several outputs gets one :class:`EvalPredictions` per output, keyed by output
    name; with one output (even with several inputs) the predictions are returned as they are.
    """
    lr = open_run(run, runs_dir=runs_dir, device=device)
    require_loss(lr.config)
    from trainctl import predict_multi as pm

    if pm.several_io(lr.model):
        result, several = _several_predictions(lr, data, batch_size, save)
        if len(several) > 1:
            return result, several
        return result, next(iter(several.values()))
    recorder = _RawRecorder(lr.preprocessor, REPORT_SAMPLES)
    lr.preprocessor = recorder
    try:
        where, x, y = _eval_data(lr, data)
    finally:
        lr.preprocessor = recorder.inner
    bs = batch_size or lr.config.fit.resolved_batch_size
    result = _evaluate_arrays(lr, where, x, y, batch_size=bs, save=save)
    outputs, proba = _predict_arrays(lr, x, bs)
    raw = recorder.raw if recorder.raw is not None and len(recorder.raw) == min(len(x), REPORT_SAMPLES) else None
    preds = EvalPredictions(
        where, y, outputs, proba, raw, x[:REPORT_SAMPLES], lr.config.compile.loss.type, lr.class_names
    )
    return result, preds


# ---------------------------------------------------------------------------------------------
# predict


def _input_options(lr: LoadedRun) -> Any:
    """The columns of a run trained on a table (CSV or Parquet: either file type is read with them),
    and the image colour mode that fits the model's input."""
    from trainctl.data.inputs import InputOptions

    spec, shape = lr.config.data, tuple(lr.model.input_shape)
    mode = "RGB" if len(shape) == 3 and shape[-1] == 3 else "L"
    if spec is not None and spec.source in ("csv", "parquet"):
        return InputOptions(spec.features, spec.target, getattr(spec, "delimiter", ","), mode)
    return InputOptions(image_mode=mode)


def _needs_channel_axis(lr: LoadedRun, raw: np.ndarray) -> bool:
    """Grayscale (N, H, W) images for a model that takes (H, W, 1) and has no reshape step of its own."""
    shape = tuple(lr.model.input_shape)
    if len(shape) != 3 or shape[-1] != 1 or raw.ndim != 3:
        return False
    return not any(s.op in ("reshape", "flatten") for s in lr.preprocessor.x_steps)


def _proba_of(act: str | None, loss: str | None, logits: bool) -> Any:
    """Outputs -> class probabilities for a classifier output (a softmax/sigmoid activation, or a
    crossentropy loss on probabilities or logits); None for any other output."""
    import torch

    if act in ("softmax", "sigmoid") or (loss in CROSSENTROPY and not logits):
        return lambda out: out  # already probabilities
    if loss == "binary_crossentropy":
        return torch.sigmoid  # logits
    if loss in CROSSENTROPY:
        return lambda out: torch.softmax(out, dim=-1)
    return None


def _postprocess(lr: LoadedRun, mode: Mode) -> Any:
    """The function from the model's outputs to what ``mode`` asks for (on the device)."""
    import torch

    spec = lr.config.compile.loss  # None: an imported run saved without a loss
    act = lr.model.final_activation
    loss, logits = (spec.type, bool(spec.kwargs().get("from_logits"))) if spec is not None else (None, False)
    width = lr.model.output_shape[-1] if lr.model.output_shape else 1
    if mode == "raw":
        return lambda out: out
    found = _proba_of(act, loss, logits)
    if found is not None:
        proba = found
    elif mode == "classes" and width != 1:
        proba = lambda out: out  # noqa: E731  # argmax needs no probabilities
    else:
        raise ConfigError(
            f"expected a classifier (a softmax/sigmoid output, or logits with a crossentropy loss) for "
            f"--{mode}, received a {act} output trained with {loss}",
            hint="leave out --proba/--classes to get the model's raw outputs",
        )
    if mode == "proba":
        return proba
    if width == 1:  # Keras's old predict_classes: (proba > 0.5) for one sigmoid unit
        return lambda out: (proba(out) > 0.5).squeeze(-1).to(torch.int64)
    return lambda out: proba(out).argmax(dim=-1)


def _out_names(lr: LoadedRun, mode: Mode, width: int) -> list[str] | None:
    """Class names for ``--classes`` output, when preprocess.json has as many as there are classes."""
    names = lr.class_names
    if mode != "classes" or names is None:
        return None
    return names if len(names) == max(width, 2) else None


def iter_predictions(lr: LoadedRun, reader: Any, mode: Mode, batch_size: int) -> Iterator[np.ndarray]:
    """Raw chunks -> saved x preprocessing -> the model under ``inference_mode`` -> numpy, a chunk at a time."""
    import torch

    post = _postprocess(lr, mode)
    model, dev = lr.model, lr.device
    checked = False
    for raw in reader.chunks(batch_size):
        if _needs_channel_axis(lr, raw):
            raw = raw[..., None]
        if not checked:
            check_raw(lr, raw.shape[1:], reader.name)
        x = lr.preprocessor.transform_x(raw)
        if not checked:
            check_samples(model, x.shape[1:], reader.name)
            checked = True
        with torch.inference_mode():
            out = post(model(torch.as_tensor(x).to(dev, non_blocking=True)))
        yield out.cpu().numpy()


def predict(
    run: str | Path,
    source: str | Path | IO[str] | list[Path],
    output: Path | IO[str] | None,
    *,
    mode: Mode = "raw",
    batch_size: int = PREDICT_BATCH,
    device: str | None = None,
    runs_dir: Path = Path("runs"),
) -> PredictResult:
    """Stream ``source`` through the run's preprocessing and model into ``output``, a chunk at a time.

    ``output`` is a file path (``.csv``/``.npy``/``.jsonl``, written atomically) or a text stream
    (CSV). Peak memory does not grow with the input: one chunk of ``batch_size`` rows is in flight.
    """
    from trainctl.data.inputs import open_input
    from trainctl.data.outputs import output_format

    if batch_size < 1:
        raise ConfigError(f"expected a batch size of at least 1, received {batch_size}", key="--batch-size")
    out_path = None if output is None or not isinstance(output, (str, Path)) else Path(output)
    npz_out = out_path is not None and out_path.suffix.lower() == ".npz"  # several outputs
    fmt = "" if npz_out else output_format(out_path)
    lr = open_run(run, runs_dir=runs_dir, device=device)
    from trainctl import predict_multi as pm

    sources = list(source) if isinstance(source, (list, tuple)) else [source]
    sources = list(source) if isinstance(source, (list, tuple)) else [source]
    if pm.several_io(lr.model):  # one array per input in, one per output out
        if out_path is None:
            raise ConfigError("expected --output FILE (.npz, .csv or .jsonl) for a model with several outputs",
                              key="--output")  # fmt: skip
        if mode != "raw":
            raise ConfigError(f"expected raw outputs for a model with several inputs or outputs, received --{mode}")
        if len(sources) != 1:
            raise ConfigError(f"expected one input file (.npz), received {len(sources)}", key="INPUT")
        x = pm.read_inputs(lr.model, sources[0], lr.config.data)
        columns = pm.write_outputs(pm.predict_arrays(lr.model, x, batch_size, lr.device), out_path)
        return PredictResult(lr.run.path, str(sources[0]), str(out_path), int(x.shape[0]), mode, columns)
    if npz_out:
        output_format(out_path)  # the usual error: .npz is for several outputs
    if lr.config.data is not None and lr.config.data.source == "image_directory":
        from trainctl.data.images import TrainedImageReader

        reader: Any = TrainedImageReader([Path(s) for s in sources if isinstance(s, (str, Path))], lr.config.data)
    elif len(sources) != 1:
        raise ConfigError(
            f"expected one input for a run not trained on an image folder, received {len(sources)}",
            key="INPUT",
        )
    else:
        reader = open_input(sources[0], _input_options(lr))
    chunks = iter_predictions(lr, reader, mode, batch_size)
    if out_path is None:
        stream = output if output is not None and not isinstance(output, (str, Path)) else None
        if stream is None:
            raise ConfigError("expected an output file or stream", key="--output")
        rows, columns = _write(lr, mode, fmt, stream, chunks, reader.rows)
        label = "<stdout>"
    else:
        from trainctl.atomic import atomic_path

        out_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out_path) as tmp:
            fh: IO[Any] = tmp.open("wb") if fmt == ".npy" else tmp.open("w", newline="", encoding="utf-8")
            with fh:
                rows, columns = _write(lr, mode, fmt, fh, chunks, reader.rows)
        label = str(out_path)
    return PredictResult(lr.run.path, reader.name, label, rows, mode, columns)


def _write(
    lr: LoadedRun, mode: Mode, fmt: str, fh: IO[Any], chunks: Iterator[np.ndarray], rows: int | None
) -> tuple[int, list[str]]:
    """Open the writer on the first chunk (its shape and dtype decide the columns), then stream."""
    from trainctl.data.outputs import columns_for, open_writer

    first = next(chunks, None)
    out_shape = tuple(d or 0 for d in lr.model.output_shape)
    if first is None:  # empty input: a valid empty file of the model's output shape
        row_shape = out_shape[:-1] if mode == "classes" else out_shape
        first = np.zeros((0, *row_shape), dtype=np.int64 if mode == "classes" else np.float32)
    names = _out_names(lr, mode, out_shape[-1] if out_shape else 1)
    if names is not None:
        first = np.asarray(names)[first]
    if mode == "classes":
        columns = columns_for(first.shape[1:], None, prefix="class")
    else:
        columns = columns_for(first.shape[1:], lr.class_names)
    writer = open_writer(fmt, fh, columns=columns, dtype=first.dtype, row_shape=first.shape[1:], rows=rows)
    writer.write(first)
    lookup = None if names is None else np.asarray(names)
    for chunk in chunks:
        writer.write(chunk if lookup is None else lookup[chunk])
    writer.close()
    return writer.rows_written, columns


__all__ = [
    "EvalPredictions",
    "EvalResult",
    "LoadedRun",
    "PredictResult",
    "check_samples",
    "evaluate",
    "evaluate_with_predictions",
    "iter_predictions",
    "open_run",
    "predict",
]
