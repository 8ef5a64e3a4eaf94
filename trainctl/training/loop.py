"""The training loop: Keras ``fit``/``evaluate``/``predict`` semantics over a batch source.

Readable in one sitting on purpose. What keeps it fast:
- batches come from ONE interface, :class:`trainctl.data.batches.BatchSource`: index slices of
  tensors already on the device for data that fits (no DataLoader, no per-sample Python), whole
  batches from worker processes for data that streams;
- the loss and metrics accumulate on the device; the host reads them once per epoch, or when the
  progress display asks (on a timer), never on every step;
- validation/evaluation/prediction run under ``torch.inference_mode``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from trainctl.data.batches import BatchSource
from trainctl.errors import ConfigError, Interrupted, TrainingDiverged
from trainctl.training.callbacks.base import Callback, Logs


def _rows(y: torch.Tensor | tuple[torch.Tensor, ...]) -> int:
    """Samples in a batch (``y`` is a tuple for a several-output model)."""
    return int((y[0] if isinstance(y, tuple) else y).shape[0])


class Progress(Protocol):
    """What the loop tells a display. ``peek`` syncs the device, so call it only on a timer."""

    def epoch_begin(self, epoch: int, epochs: int, steps: int) -> None: ...

    def step(self, step: int, peek: Callable[[], Logs]) -> None: ...

    def epoch_end(self, epoch: int, epochs: int, logs: Logs, seconds: float) -> None: ...


@dataclass
class Split:
    """One split as tensors on the training device; ``w`` is the per-sample weight or None."""

    x: torch.Tensor
    y: torch.Tensor
    w: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass
class Trainer:
    """Owns one model, its optimizer, loss, metrics and callbacks for one ``fit``."""

    model: Any  # trainctl.model.sequential.Sequential
    optimizer: Any  # trainctl.training.optimizers.KerasOptimizer
    loss: Any  # trainctl.training.losses.Loss
    metrics: list[Any]
    callbacks: list[Callback] = field(default_factory=list)
    batch_size: int = 32
    shuffle: bool = True
    generator: torch.Generator | None = None  # only for a bare Split; sources own their seeded order
    run_dir: Path | None = None
    checkpoint_writer: Callable[[Path, bool], None] | None = None
    stop_training: bool = False
    history: dict[str, list[float]] = field(default_factory=dict)
    epoch: int = 0  # next epoch to run (0-based)
    # set to a signal number (by a signal handler) to stop cleanly after the current step
    interrupt: list[int] = field(default_factory=list)
    first_step_at: float | None = None  # wall-clock time of the first optimizer step (benchmarks)
    # opt-in speed features (fit.compile, fit.precision); both off means the plain eager float32 path
    compile: bool = False
    precision: str = "32"
    # a rank of a distributed run (trainctl.distributed.context.DistContext); None: one process
    dist: Any = None

    def __post_init__(self) -> None:
        from trainctl.devices import autocast_dtype, compile_forward

        forward_pre = self.model.forward_pre
        self._pre: Callable[[torch.Tensor], torch.Tensor] = (
            compile_forward(forward_pre) if self.compile else forward_pre
        )
        self._amp: torch.dtype | None = autocast_dtype(self.precision)
        self._amp_device = "cuda"  # mixed precision is CUDA-only (checked at run start)
        # 16-mixed scales the loss so small float16 gradients do not flush to zero
        self.scaler: torch.amp.GradScaler | None = (
            torch.amp.GradScaler("cuda") if self.precision == "16-mixed" else None
        )

    # ----------------------------------------------------------------- TrainerView for callbacks
    @property
    def learning_rate(self) -> float:
        return float(self.optimizer.learning_rate)

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self.optimizer.learning_rate = value

    def get_weights(self) -> dict[str, Any]:
        return {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}

    def set_weights(self, weights: dict[str, Any]) -> None:
        self.model.load_state_dict(weights)

    def resolve_path(self, relative: str) -> Path:
        if self.run_dir is None:  # library use without a run folder: the caller's own path
            return Path(relative)
        from trainctl.paths import inside

        return inside(self.run_dir, relative, key="filepath")

    def save_checkpoint(self, path: Path, *, weights_only: bool) -> None:
        if self.checkpoint_writer is None:
            raise RuntimeError("this trainer was built without a checkpoint writer")
        self.checkpoint_writer(path, weights_only)

    # ----------------------------------------------------------------- one pass over a split
    def source(self, data: Split | BatchSource, shuffle: bool) -> BatchSource:
        """``data`` as a batch source; a bare :class:`Split` is batched in memory, shuffled from
        ``self.generator`` (kept for callers that hold tensors, such as ``evaluate RUN``)."""
        if not isinstance(data, Split):
            return data
        from trainctl.data.batches import InMemorySource, Order

        live = self.generator if shuffle else None
        return InMemorySource(
            data.x, data.y, data.w, Order(len(data), self.batch_size, shuffle=shuffle, generator=live)
        )

    def _forward(self, xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pre-activation, output). Under mixed precision only the layers run in autocast; the
        last activation, loss and metrics run in float32, where Keras's epsilon clipping is exact."""
        if self._amp is None:
            pre = self._pre(xb)
        else:
            with torch.autocast(self._amp_device, dtype=self._amp):
                pre = self._pre(xb)
            if pre.dtype == self._amp:
                pre = pre.float()
        return pre, self.model.activate(pre)

    def _forward_loss(
        self, xb: torch.Tensor, yb: torch.Tensor, wb: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        pre, out = self._forward(xb)
        loss = self.loss(pre if self.loss.takes_logits else out, yb, wb)
        return loss, out

    def train_epoch(self, data: Split | BatchSource, progress: Progress | None) -> Logs:
        model, opt = self.model, self.optimizer
        model.train()
        for m in self.metrics:
            m.reset()
        source = self.source(data, self.shuffle)
        total = torch.zeros((), device=source.device, dtype=torch.float64)
        seen = 0
        batch_cbs = [cb for cb in self.callbacks if cb.needs_batch_logs]
        batches = source.epoch(self.epoch)

        def peek() -> Logs:
            return {"loss": float(total) / max(seen, 1)} | {m.name: m.result() for m in self.metrics}

        if self.dist is not None:
            return self._train_epoch_ranks(source, batches, batch_cbs, progress)
        for step, (xb, yb, wb) in enumerate(batches):
            loss, out = self._forward_loss(xb, yb, wb)
            reg = model.regularization_loss()
            if reg is not None:
                loss = loss + reg
            opt.zero_grad(set_to_none=True)
            if self.scaler is None:
                loss.backward()
                opt.step()
            else:  # unscale first: the optimizer clips true gradients; a step with inf/NaN is skipped
                self.scaler.scale(loss).backward()
                self.scaler.unscale_(opt)
                self.scaler.step(opt)
                self.scaler.update()
            if self.first_step_at is None:
                self.first_step_at = time.time()
            n = _rows(yb)
            total += loss.detach() * n
            seen += n
            with torch.no_grad():
                out = out.detach()
                for m in self.metrics:
                    m.update(out, yb, wb)
            if batch_cbs:
                logs = {"loss": float(loss.detach())}
                for cb in batch_cbs:
                    cb.on_train_batch_end(step, logs)
                if self.stop_training:
                    break
            if progress is not None:
                progress.step(step + 1, peek)
            if self.interrupt:
                raise Interrupted(self.interrupt[0], f"interrupted in epoch {self.epoch + 1}, step {step + 1}")
        return peek()

    def _train_epoch_ranks(
        self, source: BatchSource, batches: Any, batch_cbs: list[Callback], progress: Progress | None
    ) -> Logs:
        """One epoch on one rank of a distributed run: the loop above, with the global batch's
        numbers. This rank holds ``n`` of the global batch's ``rows``; its loss is scaled by
        ``n / rows`` (and the regularization added on rank 0 only), so the SUM of the ranks'
        gradients, reduced in one collective with the batch loss and the interrupt flag, is the
        gradient of the global batch's mean loss, also for the uneven last batch and with sample
        weights. Dropout masks and BatchNormalization see the global batch through the shard
        context. Loss and metric sums are reduced once, at the end of the epoch."""
        from trainctl.distributed.context import interrupt_signal
        from trainctl.model.shard import sharded

        dist, model, opt = self.dist, self.model, self.optimizer
        order = source.order  # type: ignore[attr-defined]
        total = torch.zeros((), device=source.device, dtype=torch.float64)
        seen = 0
        params = [p for p in model.parameters() if p.requires_grad]

        def peek() -> Logs:  # mid-epoch (the progress display): this rank's part only
            return {"loss": float(total) / max(seen, 1)} | {m.name: m.result() for m in self.metrics}

        for step, (xb, yb, wb) in enumerate(batches):
            rows, offset = order.shard_of(step)
            n = _rows(yb)
            with sharded(rows, offset):
                loss, out = self._forward_loss(xb, yb, wb)
            objective = loss * (n / rows)
            reg = model.regularization_loss()
            if reg is not None and dist.is_main:
                objective = objective + reg
            opt.zero_grad(set_to_none=True)
            if self.scaler is None:
                objective.backward()
            else:
                self.scaler.scale(objective).backward()
            grads = [p.grad for p in params if p.grad is not None]
            dtype = grads[0].dtype if grads else torch.float32
            flag = torch.tensor(float(bool(self.interrupt)), dtype=dtype, device=objective.device)
            extra = torch.stack([objective.detach().to(dtype), flag])
            dist.all_reduce_([*grads, extra])
            batch_loss, stop = extra[0], bool(extra[1] > 0)
            if self.scaler is None:
                opt.step()
            else:
                self.scaler.unscale_(opt)
                self.scaler.step(opt)
                self.scaler.update()
            if self.first_step_at is None:
                self.first_step_at = time.time()
            total += objective.detach() * rows
            seen += n
            if n:
                with torch.no_grad():
                    out = out.detach()
                    for m in self.metrics:
                        m.update(out, yb, wb)
            if batch_cbs:
                logs = {"loss": float(batch_loss)}
                for cb in batch_cbs:
                    cb.on_train_batch_end(step, logs)
                if self.stop_training:
                    break
            if progress is not None:
                progress.step(step + 1, peek)
            if stop:
                signum = interrupt_signal(self.interrupt)
                raise Interrupted(signum, f"interrupted in epoch {self.epoch + 1}, step {step + 1}")
        # the epoch's sums over every rank, in one collective: single-process numbers
        counts = torch.tensor([float(seen)], dtype=torch.float64, device=total.device)
        states = [getattr(m, "inner", m)._ensure(total.device) for m in self.metrics]  # OutputMetric wraps one
        dist.all_reduce_([total.view(1), counts, *(v for st in states for v in st.values())])
        return {"loss": float(total) / max(float(counts), 1.0)} | {m.name: m.result() for m in self.metrics}

    @torch.inference_mode()
    def evaluate(self, data: Split | BatchSource) -> Logs:
        """Loss and metrics over a whole split, exact (sample-weighted means, not batch means)."""
        self.model.eval()
        for m in self.metrics:
            m.reset()
        source = self.source(data, False)
        total = torch.zeros((), device=source.device, dtype=torch.float64)
        seen = 0
        for xb, yb, wb in source.epoch(0):
            loss, out = self._forward_loss(xb, yb, wb)
            n = _rows(yb)
            total += loss * n
            seen += n
            for m in self.metrics:
                m.update(out, yb, wb)
        logs = {"loss": float(total) / max(seen, 1)}
        reg = self.model.regularization_loss()
        if reg is not None:
            logs["loss"] += float(reg)
        return logs | {m.name: m.result() for m in self.metrics}

    # ----------------------------------------------------------------- fit
    def fit(
        self,
        train: Split | BatchSource,
        val: Split | BatchSource | None,
        epochs: int,
        *,
        progress: Progress | None = None,
        on_epoch_end: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> dict[str, list[float]]:
        """Train from ``self.epoch`` to ``epochs``. ``on_epoch_end`` persists history/state."""
        for cb in self.callbacks:
            cb.set_trainer(self)
        if not self.history:  # a resumed run keeps its callbacks' loaded state
            self._callbacks("on_train_begin")
        steps = self.source(train, self.shuffle).steps()
        while self.epoch < epochs and not self.stop_training:
            epoch = self.epoch
            self._callbacks("on_epoch_begin", epoch)
            lr = self.learning_rate
            if progress is not None:
                progress.epoch_begin(epoch, epochs, steps)
            start = clock()
            logs = self.train_epoch(train, progress)
            if not math.isfinite(logs["loss"]):
                raise TrainingDiverged(
                    f"loss became {logs['loss']} in epoch {epoch + 1}",
                    hint="lower compile.optimizer.learning_rate, scale the inputs, or add clipnorm",
                )
            if val is not None and len(val):
                logs |= {f"val_{k}": v for k, v in self.evaluate(val).items()}
            seconds = clock() - start
            self._callbacks("on_epoch_end", epoch, logs)
            logs.pop("learning_rate", None)  # ReduceLROnPlateau's copy of what "lr" records
            for key, value in (logs | {"lr": lr, "epoch_time": seconds}).items():
                self.history.setdefault(key, []).append(float(value))
            self.epoch = epoch + 1
            if progress is not None:
                progress.epoch_end(epoch, epochs, logs, seconds)
            if on_epoch_end is not None:
                on_epoch_end(epoch)
        self._callbacks("on_train_end")
        return self.history

    def _callbacks(self, hook: str, *args: Any) -> None:
        """Call one hook on every callback; a config problem is located at fit.callbacks[i]."""
        from trainctl.training.callbacks import locate_error

        for i, cb in enumerate(self.callbacks):
            try:
                getattr(cb, hook)(*args)
            except ConfigError as err:
                raise locate_error(err, i) from None

    # ----------------------------------------------------------------- predict
    @torch.inference_mode()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs on the model's device. Host inputs for a CUDA model are pinned once and each
        batch is copied with ``non_blocking``, so the host queues work without waiting for copies."""
        self.model.eval()
        first = next(iter(self.model.parameters()), None)
        device = first.device if first is not None else x.device
        bs = self.batch_size
        if device.type == "cuda" and x.device.type == "cpu":
            host = x if x.is_pinned() else x.pin_memory()
            return torch.cat(
                [self._forward(host[i : i + bs].to(device, non_blocking=True))[1] for i in range(0, len(x), bs)]
            )
        return torch.cat([self._forward(x[i : i + bs])[1] for i in range(0, len(x), bs)])


def order_history(history: dict[str, list[float]], metric_names: Sequence[str]) -> dict[str, list[float]]:
    """Keras's key order: loss, metrics, val_loss, val_metrics; then lr and epoch_time."""
    keys = ["loss", *metric_names]
    ordered = keys + [f"val_{k}" for k in keys] + ["lr", "epoch_time"]
    return {k: history[k] for k in ordered if k in history} | {k: v for k, v in history.items() if k not in ordered}
