"""The library's front door: ``train``, ``resume`` and ``summary`` as plain functions.

Owns the order of things: config -> data -> model -> trainer -> run folder. Never prints; progress
goes through an injected :class:`~trainctl.training.loop.Progress`. ``trainctl.evaluation`` holds
evaluate/predict, which start from a finished run folder.
"""

from __future__ import annotations

import platform
import random
import re
import resource
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from trainctl.config.loader import LoadedConfig
from trainctl.errors import ArtifactError, ConfigError, DataError, Interrupted, TrainctlError, TrainingDiverged

SMOKE_TRAIN_ROWS = 256
SMOKE_TEST_ROWS = 128
STATE_FILE = "state/train_state.safetensors"
PERSIST_EVERY_S = 1.0  # history and resume state are rewritten after an epoch at most this often


@dataclass
class TrainResult:
    run_dir: Path
    status: str
    epochs: int
    history: dict[str, list[float]]
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def resolve_device(requested: str) -> Any:
    import torch

    from trainctl.errors import ConfigError

    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not re.match(r"^(cpu|cuda|cuda:\d{1,4}|mps)$", requested):
        raise ConfigError(f"expected a device auto, cpu, cuda, cuda:N or mps, received {requested!r}", key="device")
    if requested == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' was asked for, but torch sees no Apple GPU", key="device")
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {requested!r} was asked for, but torch sees no CUDA GPU",
                key="device",
                hint="use device: auto or cpu, or install a CUDA build of torch",
            )
        index = int(requested.split(":")[1]) if ":" in requested else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"expected a GPU index below {torch.cuda.device_count()}, received {requested!r}",
                key="device",
            )
    return torch.device(requested)


def default_threads(dist: Any = None) -> int:
    """CPU threads when the config says none: leave one core free, at most 8.

    OpenMP worker threads spin at every barrier; a 2-thread torch process that shares 2 cores
    with any other busy process slowed down 100x here, while 1 thread lost only ~1.3x on an idle
    machine. So small machines get 1 thread; big ones get most cores without oversubscribing.
    """
    from trainctl.host import cpu_cores

    if dist is not None:  # the processes of one node share its cores
        per_node = max(1, dist.world // dist.nodes)
        return max(1, min(cpu_cores() // per_node, 8))
    return max(1, min(cpu_cores() - 1, 8))


def resolved_yaml(cfg: Any) -> str:
    """Every default filled in, tags first, as YAML a user can read and rerun."""

    def tag_first(node: Any) -> Any:
        if isinstance(node, dict):
            head = {k: node[k] for k in ("type", "source") if k in node}
            return head | {k: tag_first(v) for k, v in node.items() if k not in head}
        if isinstance(node, list):
            return [tag_first(v) for v in node]
        return node

    data = tag_first(cfg.model_dump(mode="json"))
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


def _config_as_given(loaded: LoadedConfig) -> str:
    if not loaded.overrides:
        return loaded.text
    head = f"# {loaded.path}, with overrides: {' '.join(loaded.overrides)}\n"
    return head + yaml.safe_dump(loaded.raw, sort_keys=False, default_flow_style=None, width=100)


def _versions() -> dict[str, str]:
    import numpy
    import torch

    from trainctl import __version__

    return {
        "trainctl": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
    }


# ---------------------------------------------------------------------------------------------
# building a trainer from a config


@dataclass
class Prepared:
    """Everything ``fit`` needs, built deterministically from (config, seed)."""

    trainer: Any
    train: Any
    val: Any
    test: Any
    metric_names: list[str]
    dataset: Any


def _prepare(
    cfg: Any,
    base_dir: Path,
    dev: Any,
    smoke: bool,
    run: Any,
    interrupt: list[int],
    extra: Sequence[Any] = (),
    dist: Any = None,
) -> Prepared:
    import numpy as np
    import torch

    from trainctl.data import load_data, take_rows, validation_split
    from trainctl.data.batches import ArrayRows, InMemorySource, Order, StreamingSource, resolve_workers
    from trainctl.data.dataset import View
    from trainctl.data.values import check_model_labels
    from trainctl.devices import to_device
    from trainctl.model.sequential import build_model
    from trainctl.model.shapes_graph import build_graph
    from trainctl.runs import RunDir
    from trainctl.training.callbacks import build_callbacks
    from trainctl.training.compiled import compile_model
    from trainctl.training.loop import Trainer
    from trainctl.training.optimizers import build_optimizer

    seed = cfg.seed
    if cfg.fit.validation_split and cfg.data.source == "image_directory":
        raise ConfigError(
            "expected no fit.validation_split for an image_directory source (it means 'the last rows', "
            f"received {cfg.fit.validation_split})",
            key="fit.validation_split",
            hint=f"use data.validation_split: {cfg.fit.validation_split} (Keras's seeded file split) instead",
        )
    graph = build_graph(cfg.model)
    if len(graph.inputs) > 1 or len(graph.outputs) > 1:  # one array per input and output
        from trainctl.data.multi import load_multi

        inputs = [(i.name, i.dtype) for i in graph.inputs]
        ds = load_multi(cfg.data, base_dir=base_dir, seed=seed, inputs=inputs, outputs=graph.output_names)
    else:
        ds = load_data(cfg.data, base_dir=base_dir, seed=seed)
    if smoke:
        ds = take_rows(ds, SMOKE_TRAIN_ROWS, SMOKE_TEST_ROWS)
    facts = ds.extra or {}
    # predict resizes images as in training; evaluate --data encodes text targets with the run's classes
    kept = {k: facts[k] for k in ("image_size", "color_mode", "output_class_names") if k in facts}
    run.write_json(RunDir.PREPROCESS, ds.preprocessor.to_json() | {"class_names": ds.class_names} | kept)

    torch.manual_seed(seed)
    model = build_model(cfg.model).to(dev)
    check_input(model, ds.x_train if not ds.streamed else ds.sample_shape())
    loss, metrics = compile_model(cfg.compile, model, _shapes(ds.y_train))
    check_model_labels(cfg.compile.loss, model, ds.y_train)
    check_model_labels(cfg.compile.loss, model, ds.y_test, "test")
    run.write_text(RunDir.SUMMARY, render_summary(model))

    bs = cfg.fit.resolved_batch_size
    cache = "none" if ds.streamed else "memory"  # load_data chose (data.cache and its budget)
    pre = ds.preprocessor if ds.streamed else None  # streamed rows are raw: transformed per batch
    workers = resolve_workers(cfg.data.workers) if cache == "none" else 0
    run.update_run(data={"cache": cache, "cache_requested": cfg.data.cache, "workers": workers} | facts)
    if cfg.fit.validation_split:
        tr, va = validation_split(_n_rows(ds.y_train), cfg.fit.validation_split)

    def fixed(xs: Any, ys: Any) -> Any:  # evaluation splits: in order, never shuffled
        if cache == "none":
            return StreamingSource(ArrayRows(xs, ys, None, pre), Order(_n_rows(ys), bs, shuffle=False), dev)
        return InMemorySource(to_device(xs, dev), to_device(ys, dev), None, Order(_n_rows(ys), bs, shuffle=False))

    test = None
    if ds.x_test is not None and ds.y_test is not None:
        test = fixed(ds.x_test, ds.y_test)
    val = None
    if ds.val is not None:
        val = fixed(*ds.val)
    elif cfg.fit.validation_split:
        x_val = View(ds.x_train, np.arange(va.start, va.stop)) if cache == "none" else ds.x_train[va]
        val = fixed(x_val, ds.y_train[va])
    elif cfg.fit.validation_data == "test":
        if test is None:
            raise DataError(
                "validation_data: test needs a test split, and this data has none",
                key="fit.validation_data",
                hint="add data.test_split: 0.2, or use fit.validation_split",
            )
        val = test

    # the training split: one seeded order, a pure function of (seed, epoch); no loader state
    n_train = _n_rows(ds.y_train[tr]) if cfg.fit.validation_split else _n_rows(ds.y_train)
    # a distributed rank takes its tensor_split part of every global batch (fit.batch_size is global)
    rank, world = (dist.rank, dist.world) if dist is not None else (0, 1)
    check_global_batch(bs, world)
    order = Order(
        n_train, bs, seed=seed, shuffle=cfg.fit.shuffle, first_epoch=cfg.fit.initial_epoch, rank=rank, world=world
    )
    if cache == "none":
        w = _class_weights(cfg.fit.class_weight, ds.y_train, "cpu")
        w_np = None if w is None else w.numpy()
        index = np.arange(tr.start, tr.stop) if cfg.fit.validation_split else None
        if w_np is not None and index is not None:
            w_np = w_np[index]  # weights are indexed by this split's row numbers
        rows = ArrayRows(ds.x_train, ds.y_train, w_np, pre, index=index)
        train: Any = StreamingSource(rows, order, dev, workers=workers, prefetch=cfg.data.prefetch)
    else:
        x = to_device(ds.x_train, dev)  # once per run; CUDA copies go through pinned memory
        y = to_device(ds.y_train, dev)
        w = _class_weights(cfg.fit.class_weight, ds.y_train, dev)
        if cfg.fit.validation_split:
            x, y, w = x[tr], y[tr], (w[tr] if w is not None else None)
        train = InMemorySource(x, y, w, order)
    if cache == "none":  # Normalization layers adapt on the training rows, streamed in order
        plain = StreamingSource(rows, Order(n_train, bs, shuffle=False), torch.device("cpu"))
        prepare_preprocessing(model, lambda: (xb.to(dev) for xb, _, _ in plain.epoch(0)), seed)
    else:
        prepare_preprocessing(model, x, seed)
    trainer = Trainer(
        model=model,
        optimizer=build_optimizer(cfg.compile.optimizer, model.parameters()),
        loss=loss,
        metrics=metrics,
        callbacks=[*build_callbacks(cfg.fit.callbacks), *extra],  # extra: e.g. trainctl tune's pruning
        batch_size=bs,
        shuffle=cfg.fit.shuffle,
        run_dir=run.path,
        # ranks other than 0 take the same decisions but write no checkpoint: nobody reads it
        checkpoint_writer=(lambda path, weights_only: write_model(model, path, weights_only, cfg))
        if dist is None or dist.is_main
        else (lambda path, weights_only: None),
        epoch=cfg.fit.initial_epoch,
        interrupt=interrupt,
        compile=cfg.fit.compile,
        precision=cfg.fit.precision,
        dist=dist,
    )
    return Prepared(trainer, train, val, test, [m.name for m in metrics], ds)


def check_global_batch(batch_size: int, world: int) -> None:
    """``fit.batch_size`` is the GLOBAL batch (Keras's distribution API): each of ``world``
    processes takes ``batch_size / world`` rows, so it must divide."""
    if world > 1 and batch_size % world:
        raise ConfigError(
            f"expected fit.batch_size to be a multiple of the {world} processes (it is the global batch), "
            f"received {batch_size}",
            key="fit.batch_size",
            hint=f"use fit.batch_size={batch_size - batch_size % world or world}",
        )


def prepare_preprocessing(model: Any, x: Any, seed: int) -> None:
    """Seed the augmentation layers from the run's seed, and adapt Normalization layers on the
    training rows: in-memory rows ``x`` (taken in chunks), or a callable yielding batches (streaming)."""
    from trainctl.model.augment import seed_augmentation
    from trainctl.model.preprocess import adapt_normalization, chunks

    seed_augmentation(model, seed)  # both are no-ops for a model without such layers
    adapt_normalization(model, x if callable(x) else chunks(x))


def _n_rows(a: Any) -> int:
    """Rows of an array or a TensorTuple (whose ``len`` counts its columns)."""
    return int(a.shape[0])


def _shapes(y: Any) -> Any:
    """Target shape(s) for ``compile_model``: one per output when there are several."""
    from trainctl.model.tensors import TensorTuple

    return [tuple(a.shape) for a in y] if isinstance(y, TensorTuple) else tuple(y.shape)


def check_input(model: Any, data: Any) -> None:
    """The model's input shape(s) must match the samples, before any tensor op complains.
    ``data`` is the array(s) or a per-sample shape."""
    from trainctl.model.tensors import TensorTuple

    if isinstance(data, TensorTuple):
        for name, want, arr in zip(model.graph.input_names, model.input_shapes, data, strict=True):
            got = tuple(arr.shape[1:])
            if len(want) != len(got) or any(w is not None and w != d for w, d in zip(want, got, strict=False)):
                raise DataError(
                    f"the model input {name!r} expects samples of shape {want}, the data has {got}",
                    key="model.inputs",
                )
        return
    data_shape = tuple(data) if isinstance(data, tuple) else tuple(data.shape[1:])
    want = tuple(model.input_shape)
    if len(want) != len(data_shape) or any(w is not None and w != d for w, d in zip(want, data_shape, strict=False)):
        raise DataError(
            f"the model expects samples of shape {want}, the data has {tuple(data_shape)}",
            key="model.layers[0].input_shape",
            hint="add a reshape/flatten step under data.x, or change input_shape",
        )


def _class_weights(class_weight: dict[int, float] | None, y: Any, device: Any) -> Any:
    """Keras ``class_weight``: a per-sample weight looked up by the (arg-max) label."""
    if not class_weight:
        return None
    from trainctl.model.tensors import TensorTuple

    if isinstance(y, TensorTuple):  # Keras refuses it too for several outputs
        raise ConfigError("expected no class_weight for a model with several outputs", key="fit.class_weight")
    import numpy as np
    import torch

    if y.ndim > 1 and y.shape[-1] > 1:
        labels = y.argmax(-1)
    else:
        labels = y.reshape(len(y)).round().astype(np.int64)
    table = np.ones(max(int(labels.max()), *class_weight) + 1, dtype=np.float32)
    for cls, weight in class_weight.items():
        table[cls] = weight
    return torch.as_tensor(table[labels]).to(device)


# ---------------------------------------------------------------------------------------------
# train / resume


def train(
    loaded: LoadedConfig,
    *,
    runs_dir: Path = Path("runs"),
    name: str | None = None,
    device: str | None = None,
    smoke: bool = False,
    init_from: Path | None = None,
    progress: Any = None,
    on_run_dir: Callable[[Path], None] | None = None,
    interrupt: list[int] | None = None,
    callbacks: Sequence[Any] = (),
    dist: Any = None,
    run_dir: Path | None = None,
) -> TrainResult:
    """Train one config into a fresh run folder. Raises a :class:`TrainctlError` on failure.

    ``callbacks`` run after the config's own (``trainctl tune`` reports and prunes through one).
    ``dist`` is this process's rank of a distributed run (``trainctl.distributed.context``): rank 0
    alone writes the run folder (``run_dir`` when a launcher created it), the others write to a
    private scratch folder that is removed at the end.
    """
    import torch

    from trainctl.runs import RunDir

    cfg = loaded.config
    seed = cfg.seed if cfg.seed is not None else random.SystemRandom().randrange(2**31)
    if dist is not None:  # one seed for every rank: rank 0's
        seed = dist.broadcast_int(seed)
    from trainctl.paths import check_run_name

    if name is not None:
        check_run_name(name, key="--name")
    run_name = name or cfg.name or (loaded.path.stem if loaded.path else "run")
    dev = dist.device if dist is not None else resolve_device(device or cfg.device)
    _check_precision(loaded, cfg, dev)
    cfg = cfg.model_copy(update={"seed": seed, "name": run_name, "device": str(dev)})
    if init_from is not None:
        RunDir.open(Path(init_from))  # fail before creating a run folder
    _check_memory(loaded, dev)
    if dist is not None:
        check_global_batch(cfg.fit.resolved_batch_size, dist.world)
    if dist is not None and not dist.is_main:
        with _scratch_run(dist.rank) as scratch:
            scratch.update_run(name=run_name, status="running", smoke=smoke)
            torch.set_num_threads(cfg.threads or default_threads(dist))
            return _fit(loaded, cfg, scratch, dev, smoke, progress, interrupt, init_from=init_from,
                        callbacks=callbacks, dist=dist)  # fmt: skip

    run = RunDir.open(Path(run_dir)) if run_dir is not None else RunDir.create(Path(runs_dir), run_name)
    if on_run_dir is not None:
        on_run_dir(run.path)
    run.write_text(RunDir.CONFIG, _config_as_given(loaded))
    run.write_text(RunDir.RESOLVED, resolved_yaml(cfg))
    torch.set_num_threads(cfg.threads or default_threads(dist))
    if dist is not None:
        run.update_run(distributed=dist.describe())
    run.update_run(
        name=run_name,
        status="running",
        started=_now(),
        seed=seed,
        device=str(dev),
        threads=torch.get_num_threads(),
        smoke=smoke,
        base_dir=str(loaded.base_dir.resolve()),
        init_from=str(init_from) if init_from else None,
        versions=_versions(),
        command=sys.argv,
    )
    with run.lock():
        return _fit(
            loaded, cfg, run, dev, smoke, progress, interrupt, init_from=init_from, callbacks=callbacks, dist=dist
        )


def create_run_folder(loaded: LoadedConfig, runs_dir: Path, name: str | None) -> Path:
    """A fresh run folder for a distributed launcher to hand to its workers (rank 0 trains into
    it), made before any worker starts so there is exactly one, whatever happens to the workers."""
    from trainctl.paths import check_run_name
    from trainctl.runs import RunDir

    if name is not None:
        check_run_name(name, key="--name")
    cfg = loaded.config
    run_name = name or cfg.name or (loaded.path.stem if loaded.path else "run")
    run = RunDir.create(Path(runs_dir), run_name)
    run.update_run(name=run_name, status="starting", started=_now())
    return run.path


@contextmanager
def _scratch_run(rank: int) -> Iterator[Any]:
    """A private folder for a non-zero rank's writes: every rank runs the same code, but only
    rank 0's files land in the run folder."""
    import shutil
    import tempfile

    from trainctl.runs import RunDir

    path = Path(tempfile.mkdtemp(prefix=f"trainctl-rank{rank}-"))
    try:
        yield RunDir(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _check_memory(loaded: LoadedConfig, dev: Any) -> None:
    """Refuse, before a run folder exists, a model whose memory floor is above what the device has."""
    from trainctl.bounds import human
    from trainctl.errors import ConfigError
    from trainctl.memory import available_bytes, config_estimate

    need = config_estimate(loaded.config)
    have = available_bytes(dev)
    if have is not None and need.total > have:
        exc = ConfigError(
            f"the model cannot fit on {dev}: {need.describe()}, and {human(have)} is available",
            key="model.layers",
            hint="use fewer units or layers, or a smaller fit.batch_size",
        )
        exc.locate(loaded.where)
        raise exc


def _check_precision(loaded: LoadedConfig, cfg: Any, dev: Any) -> None:
    """Mixed precision is CUDA-only: refuse it before a run folder or any tensor exists (exit 2)."""
    from trainctl.devices import check_precision

    try:
        check_precision(cfg.fit.precision, dev)
    except TrainctlError as exc:
        exc.locate(loaded.where)
        raise


def resume(
    run_path: Path,
    *,
    progress: Any = None,
    interrupt: list[int] | None = None,
    device: str | None = None,
    dist: Any = None,
) -> TrainResult:
    """Continue an interrupted run in its own folder, from its last completed epoch (from epoch 0
    when it was killed before its first epoch ended). Holds the run folder's lock throughout.

    The saved state is global (one process's state), so a distributed rank ``dist`` resumes it
    whatever the number of processes that saved it. Ranks other than 0 only read the folder."""
    from trainctl.runs import RunDir

    run = RunDir.open(Path(run_path))
    if dist is not None and not dist.is_main:
        return _resume_locked(run, progress, interrupt, device, dist)
    with run.lock():
        return _resume_locked(run, progress, interrupt, device, dist)


def _resume_locked(
    run: Any, progress: Any, interrupt: list[int] | None, device: str | None, dist: Any = None
) -> TrainResult:
    """The body of :func:`resume`, with the run folder's lock held (by rank 0)."""
    from trainctl.config import load_config
    from trainctl.runs import RunDir
    from trainctl.serialization.state import load_state
    from trainctl.training.checkpoint import check_state

    main = dist is None or dist.is_main
    if main:
        run.clean_temps()  # what a killed save left behind
    info = run.read_json(RunDir.RUN)
    if info.get("status") in ("completed", "stopped_early"):
        raise ArtifactError(
            f"{run.path} already finished ({info['status']}); nothing to resume",
            hint="use `trainctl train CONFIG --init-from RUN` to start a new run from its weights",
        )
    if not run.file(RunDir.RESOLVED).is_file():
        raise ArtifactError(f"{run.file(RunDir.RESOLVED)}: missing; this run cannot be resumed, train it again")
    loaded = load_config(run.file(RunDir.RESOLVED))
    base_dir = info.get("base_dir", str(run.path))
    if not isinstance(base_dir, str):
        raise ArtifactError(f"{run.file(RunDir.RUN)}: expected base_dir to be a string, received {base_dir!r}")
    loaded.base_dir_override = Path(base_dir)
    cfg = loaded.config
    dev = dist.device if dist is not None else resolve_device(device or cfg.device)
    _check_precision(loaded, cfg, dev)
    if dist is not None:
        check_global_batch(cfg.fit.resolved_batch_size, dist.world)
    import torch

    torch.set_num_threads(cfg.threads or default_threads(dist))
    state: dict[str, Any] | None = None
    if run.file(STATE_FILE).exists() or run.file(RunDir.HISTORY_JSON).exists():
        state = load_state(run.file(STATE_FILE))
        check_state(state, run.file(STATE_FILE), cfg.fit.epochs)
        start = int(state["epoch"])
    else:  # killed before its first epoch ended: start again from epoch 0, same resolved config
        start = 0
    smoke = bool(info.get("smoke"))
    if not main:
        with _scratch_run(dist.rank) as scratch:
            scratch.update_run(status="running", smoke=smoke)
            return _fit(loaded, cfg, scratch, dev, smoke, progress, interrupt, state=state, dist=dist)
    run.update_run(status="running", resumed=_now(), resumed_from_epoch=start)
    if dist is not None:
        run.update_run(distributed=dist.describe())
    return _fit(loaded, cfg, run, dev, smoke, progress, interrupt, state=state, dist=dist)


def _fit(
    loaded: LoadedConfig,
    cfg: Any,
    run: Any,
    dev: Any,
    smoke: bool,
    progress: Any,
    interrupt: list[int] | None,
    *,
    state: dict[str, Any] | None = None,
    init_from: Path | None = None,
    callbacks: Sequence[Any] = (),
    dist: Any = None,
) -> TrainResult:
    from trainctl.serialization.state import save_state
    from trainctl.training.checkpoint import load_trainer_state, trainer_state
    from trainctl.training.loop import order_history

    trainer = None
    main = dist is None or dist.is_main  # other ranks skip the writes nobody reads
    try:
        prep = _prepare(
            cfg, loaded.base_dir, dev, smoke, run, interrupt if interrupt is not None else [], callbacks, dist
        )
        trainer = prep.trainer
        if init_from is not None:
            from trainctl.serialization import load_weights_h5

            load_weights_h5(trainer.model, Path(init_from) / "model.weights.h5")
        if state is not None:
            load_trainer_state(trainer, state, run.file(STATE_FILE))
        epochs = min(cfg.fit.epochs, 1) if smoke else cfg.fit.epochs

        last_persist = [-float("inf")]

        def persist(_epoch: int) -> None:
            # Every epoch, but at most once per PERSIST_EVERY_S: for 1 ms epochs the writes would
            # cost 10x the training. The last epoch, and a stop, always persist.
            now = time.monotonic()
            done = trainer.epoch >= epochs or trainer.stop_training
            if not main:
                return
            if not done and now - last_persist[0] < PERSIST_EVERY_S:
                return
            save_state(run.file(STATE_FILE), trainer_state(trainer), durable=False)
            run.write_history(order_history(trainer.history, prep.metric_names), durable=False)
            last_persist[0] = time.monotonic()

        if trainer.stop_training:  # resumed after EarlyStopping fired: nothing left to train
            epochs = trainer.epoch
        trainer.fit(prep.train, prep.val, epochs, progress=progress, on_epoch_end=persist)
        history = order_history(trainer.history, prep.metric_names)
        run.write_history(history)

        results: dict[str, dict[str, float]] = {
            "train": {
                k: v[-1] for k, v in history.items() if not k.startswith("val_") and k not in ("lr", "epoch_time")
            },
            "val": {k[4:]: v[-1] for k, v in history.items() if k.startswith("val_")},
        }
        if prep.test is not None and main:
            results["test"] = trainer.evaluate(prep.test)
        run.write_json(run.METRICS, results)
        if main:
            write_model(trainer.model, run.path, False, cfg)
        status = "stopped_early" if trainer.stop_training else "completed"
        run.update_run(
            status=status,
            ended=_now(),
            epochs=trainer.epoch,
            peak_rss_mb=_peak_rss_mb(),
            first_step_at=trainer.first_step_at,
        )
        return TrainResult(run.path, status, trainer.epoch, history, results)
    except TrainctlError as exc:
        if trainer is not None and trainer.history:  # completed epochs, also those not yet persisted
            run.write_history(order_history(trainer.history, prep.metric_names))
        status = {TrainingDiverged: "diverged", Interrupted: "interrupted"}.get(type(exc), "failed")
        run.update_run(
            status=status,
            ended=_now(),
            error=exc.render(),
            peak_rss_mb=_peak_rss_mb(),
            epochs=trainer.epoch if trainer is not None else 0,
        )
        exc.locate(loaded.where)
        raise
    except BaseException as exc:
        run.update_run(status="failed", ended=_now(), error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if main:
            draw_plots(run)  # plots/history.png, whatever the outcome; never raises


PLOT_IN_CHILD = True  # draw in a child process: matplotlib's memory never joins the training process's


def draw_plots(run: Any) -> None:
    """``plots/history.png`` for a finished (or failed) run; problems become run.json warnings."""
    if not PLOT_IN_CHILD:
        from trainctl.reporting.plots import draw_run_plots

        draw_run_plots(run)
        return
    import subprocess

    code = "import sys; from trainctl.reporting.plots import main; main(sys.argv[1])"
    try:
        done = subprocess.run([sys.executable, "-c", code, str(run.path)], capture_output=True, text=True)
        reason = None if done.returncode == 0 else (done.stderr.strip().splitlines() or ["no output"])[-1]
    except OSError as exc:
        reason = f"{type(exc).__name__}: {exc}"
    if reason is not None:
        info = run.read_json(run.RUN)
        run.update_run(warnings=[*info.get("warnings", []), f"plots not drawn: {reason}"])


# ---------------------------------------------------------------------------------------------
# model files and summaries


def write_model(model: Any, where: Path, weights_only: bool, cfg: Any) -> None:
    """Keras artifacts into a folder (or just the weights to ``*.weights.h5``)."""
    from trainctl.serialization import save_keras_artifacts, save_weights_h5

    where = Path(where)
    if weights_only:
        target = where if where.name.endswith(".weights.h5") else where.with_name(where.name + ".weights.h5")
        target.parent.mkdir(parents=True, exist_ok=True)
        save_weights_h5(model, target)
    else:
        where.mkdir(parents=True, exist_ok=True)
        save_keras_artifacts(model, where, training_config=training_config(cfg))


def training_config(cfg: Any) -> dict[str, Any]:
    """Keras's ``training_config`` for model.h5, so ``load_model`` returns a compiled model."""
    opt = cfg.compile.optimizer
    loss, metrics = cfg.compile.loss, cfg.compile.metrics

    def names(items: Any) -> list[str]:
        return [m.name or m.type for m in items]

    return {  # several outputs keep Keras's per-output dicts (keras-functional §2.2)
        "loss": {k: v.type for k, v in loss.items()} if isinstance(loss, dict) else loss.type,
        **({"loss_weights": cfg.compile.loss_weights} if cfg.compile.loss_weights is not None else {}),
        "metrics": {k: names(v) for k, v in metrics.items()}
        if isinstance(metrics, dict)
        else [names(m) for m in metrics]
        if metrics and isinstance(metrics[0], list)
        else names(metrics),
        "optimizer_config": {
            "class_name": opt.type,
            # unset options (None) are left out: tf-keras's legacy optimizers, which its load_model
            # uses for .h5 files, refuse keys such as weight_decay=None
            "config": {k: v for k, v in opt.kwargs().items() if isinstance(v, (int, float, bool))},
        },
    }


def render_summary(model: Any, *, width: int = 76, color: bool = False) -> str:
    from trainctl.model.shapes_graph import summary_rows
    from trainctl.reporting.summary import summary_text

    return summary_text(model.name, summary_rows(model.graph), width=width, color=color)


def summary(loaded: LoadedConfig) -> tuple[str, list[Any]]:
    """The model name and summary rows from the config alone: no torch, no data."""
    from trainctl.memory import spec_rows

    try:
        rows = spec_rows(loaded.config.model)
    except TrainctlError as exc:
        exc.locate(loaded.where)
        raise
    return loaded.config.model.name, rows
