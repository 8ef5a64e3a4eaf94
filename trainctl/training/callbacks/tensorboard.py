"""TensorBoard logs in Keras 3's layout, written with torch's ``SummaryWriter`` (no TensorFlow).

What Keras writes, and so what this writes (``keras/src/callbacks/tensorboard.py``):
- ``<log_dir>/train/`` and ``<log_dir>/validation/``, one event file per writer;
- per epoch (step = 0-based epoch): ``epoch_loss``, ``epoch_<metric>`` and ``epoch_learning_rate``
  under ``train/``; ``epoch_loss``, ``epoch_<metric>`` (the ``val_`` prefix removed) under
  ``validation/``, plus ``evaluation_<name>_vs_iterations`` at the optimizer's step count;
- with ``update_freq`` N (``"batch"`` is 1): ``batch_loss`` under ``train/`` at every N-th global
  step (1-based). Keras logs the running mean of the epoch so far, and its metrics; we log the
  batch's own loss only (metrics stay on the device until the epoch ends).
  Per-batch logging reads the loss on the host after every step (a device sync per step),
  so it costs speed; the default ``"epoch"`` costs nothing per step;
- every ``histogram_freq`` epochs, a histogram per weight, tagged like Keras's
  ``<model>/<layer>/<weight>/histogram`` (``sequential/dense/kernel/histogram``);
- with ``write_graph``, the model's graph (traced once, in eval mode, on a zero sample).

``epoch_learning_rate`` is the rate the epoch trained with (history.json's ``lr``) whatever the
callback order: the one ReduceLROnPlateau or LearningRateScheduler put in the logs, else the
optimizer's. Keras reads the optimizer's rate at that moment, which is already the reduced one
when ReduceLROnPlateau comes first. With a schedule inside the optimizer, both log the rate at the
end of the epoch (history.json records the rate at its start).

Exact resume: every event file this callback opens ends in ``.trainctl-<token>``; the JSON state
holds each such file's size at the last saved epoch. A resumed run cuts its files back to those
sizes (dropping events of the partly run epoch), removes newer ones, and appends a new file, so
every step appears once.
"""

from __future__ import annotations

import contextlib
import io
import secrets
import warnings
from pathlib import Path
from typing import Any

from trainctl.errors import ConfigError
from trainctl.training.callbacks.base import Callback, Logs

SUBDIRS = {"train": "train", "val": "validation"}
EXTRA_HINT = "pip install 'trainctl[tensorboard]' (or pip install tensorboard)"


def summary_writer_class() -> Any:
    """torch's SummaryWriter; a ConfigError naming the extra when ``tensorboard`` is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ConfigError(
            f"expected the tensorboard package for the TensorBoard callback, received ImportError ({exc})",
            hint=EXTRA_HINT,
        ) from None
    return SummaryWriter


class TensorBoard(Callback):
    """Keras's ``TensorBoard(log_dir, histogram_freq, write_graph, update_freq)``."""

    def __init__(
        self,
        log_dir: str = "logs",
        histogram_freq: int = 0,
        write_graph: bool = True,
        update_freq: str | int = "epoch",
    ) -> None:
        if update_freq not in ("epoch", "batch") and not (
            isinstance(update_freq, int) and not isinstance(update_freq, bool) and update_freq > 0
        ):
            raise ConfigError(
                f"expected 'epoch', 'batch' or a positive integer, received {update_freq!r}", key="update_freq"
            )
        if histogram_freq < 0:
            raise ConfigError(f"expected histogram_freq >= 0, received {histogram_freq}", key="histogram_freq")
        self._writer_cls = summary_writer_class()
        self.log_dir = str(log_dir)
        self.histogram_freq = int(histogram_freq)
        self.write_graph = bool(write_graph)
        self.update_freq: str | int = 1 if update_freq == "batch" else update_freq
        self.needs_batch_logs = self.update_freq != "epoch"
        self.global_batch = 0
        self.token = secrets.token_hex(4)
        self.sizes: dict[str, int] = {}
        self._writers: dict[str, Any] = {}
        self._resumed = False

    # ----------------------------------------------------------------- writers
    @property
    def suffix(self) -> str:
        return f".trainctl-{self.token}"

    def _root(self) -> Path:
        return self.trainer.resolve_path(self.log_dir)

    def _ours(self) -> list[Path]:
        """Event files this run wrote, in either subfolder."""
        root = self._root()
        return [p for sub in SUBDIRS.values() for p in sorted((root / sub).glob(f"events.out.tfevents.*{self.suffix}"))]

    def _writer(self, which: str) -> Any:
        """Open lazily (as Keras does), after cutting back what a resumed run must not keep."""
        if self._resumed:
            self._restore_files()
        if which not in self._writers:
            folder = self._root() / SUBDIRS[which]
            folder.mkdir(parents=True, exist_ok=True)
            self._writers[which] = self._writer_cls(str(folder), filename_suffix=self.suffix)
        return self._writers[which]

    def _restore_files(self) -> None:
        root = self._root()
        for path in self._ours():
            size = self.sizes.get(path.relative_to(root).as_posix())
            if size is None:  # opened after the saved epoch: nothing in it belongs to the run
                path.unlink()
            elif path.stat().st_size > size:
                with path.open("r+b") as f:
                    f.truncate(size)
        self._resumed = False

    def _flush(self) -> None:
        for writer in self._writers.values():
            writer.flush()

    # ----------------------------------------------------------------- hooks
    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.global_batch = 0
        if self.write_graph:
            self._write_graph()

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        self.global_batch += 1
        if logs and isinstance(self.update_freq, int) and self.global_batch % self.update_freq == 0:
            writer = self._writer("train")
            for name, value in logs.items():
                writer.add_scalar(f"batch_{name}", value, self.global_batch)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        val = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        train.setdefault("learning_rate", self.trainer.learning_rate)
        writer = self._writer("train")
        for name, value in train.items():
            writer.add_scalar(f"epoch_{name}", value, epoch)
        if val:
            val_writer = self._writer("val")
            for name, value in val.items():
                val_writer.add_scalar(f"epoch_{name}", value, epoch)
            iterations = getattr(getattr(self.trainer, "optimizer", None), "iterations", None)
            if isinstance(iterations, int):
                for name, value in val.items():
                    val_writer.add_scalar(f"evaluation_{name}_vs_iterations", value, iterations)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._write_histograms(epoch)
        self._flush()

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self._resumed:  # resumed with nothing left to train: still drop the stale events
            self._restore_files()
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    # ----------------------------------------------------------------- model summaries
    def _write_histograms(self, epoch: int) -> None:
        model = getattr(self.trainer, "model", None)
        if model is None:
            return
        writer = self._writer("train")
        for tag, tensor in weight_tags(model):
            writer.add_histogram(f"{tag}/histogram", tensor.detach(), epoch)

    def _write_graph(self) -> None:
        """The traced graph; a model that cannot be traced is logged without one, silently."""
        model = getattr(self.trainer, "model", None)
        if model is None or not hasattr(model, "input_shape"):
            return
        import torch

        first = next(iter(model.parameters()), None)
        device = first.device if first is not None else torch.device("cpu")
        sample = torch.zeros((1, *(d or 1 for d in model.input_shape)), device=device)
        writer = self._writer("train")
        # torch's tracer prints its errors and warns about traced control flow: keep both quiet
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with contextlib.suppress(Exception):
                writer.add_graph(model, sample)

    # ----------------------------------------------------------------- resume
    def state_dict(self) -> dict[str, Any]:
        """Called after each epoch is saved: flush, then record how far each event file goes."""
        self._flush()
        root = self._root()
        self.sizes = {p.relative_to(root).as_posix(): p.stat().st_size for p in self._ours()}
        return {"token": self.token, "global_batch": self.global_batch, "sizes": dict(self.sizes)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.token = str(state["token"])
        self.global_batch = int(state["global_batch"])
        self.sizes = {str(k): int(v) for k, v in state["sizes"].items()}
        self._writers = {}
        self._resumed = True


def weight_tags(model: Any) -> list[tuple[str, Any]]:
    """Keras's weight paths (``<model>/<layer>/<weight>``) for our Sequential, else torch's names."""
    if hasattr(model, "keras_weights"):
        name = getattr(model, "name", "sequential")
        return [(f"{name}/{row.name}/{w}", t) for row, weights in model.keras_weights() for w, t in weights]
    return [(n.replace(".", "/"), t) for n, t in model.state_dict().items()]
