"""CSVLogger writing exactly what Keras 3's writes (``keras/src/callbacks/csv_logger.py``).

The format, as Keras has it: a header ``epoch,<sorted logs keys>``, 0-based epochs, the csv
module's ``excel`` dialect (so lines end in ``\\r\\n``), and when the first epoch has no ``val_``
key, ``val_<key>`` columns are added anyway and filled with ``NA``.

Each row is appended and the file closed at once, so a killed run keeps its rows. The JSON state
holds the byte length written so far: a resumed run cuts rows written after the state was saved
and continues the same file without a second header.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from trainctl.errors import ConfigError
from trainctl.training.callbacks.base import Callback, Logs


class CSVLogger(Callback):
    """Stream epoch results to a CSV file relative to the run directory."""

    def __init__(self, filename: str = "training.log", separator: str = ",", append: bool = False):
        if len(separator) != 1:
            raise ConfigError(f"expected a one-character separator, received {separator!r}", key="separator")
        self.filename = filename
        self.separator = separator
        self.append = append
        self.keys: list[str] | None = None
        self.offset = 0
        self._write_header = True
        self._path: Path | None = None
        self._resumed = False

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._prepare()

    def _prepare(self) -> Path:
        """Open the file as Keras does; also run lazily for a resumed fit that skips the begin."""
        path = self.trainer.resolve_path(self.filename)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        if self._resumed:
            # Cut rows written after the state was saved; a vanished file starts again.
            with path.open("r+b" if path.exists() else "wb") as f:
                f.truncate(min(self.offset, path.stat().st_size))
            self._write_header = path.stat().st_size == 0
        else:
            self.keys = None
            if self.append and path.exists():
                self._write_header = path.stat().st_size == 0
            else:
                path.write_bytes(b"")
                self._write_header = True
        self._resumed = False
        return path

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        path = self._prepare() if self._path is None or self._resumed else self._path
        if self.keys is None:
            keys = sorted(logs)
            if keys and not any(k.startswith("val_") for k in keys):
                keys += [f"val_{k}" for k in keys]
            self.keys = keys
        buffer = io.StringIO()
        writer = csv.writer(buffer, dialect="excel", delimiter=self.separator)
        if self._write_header:
            writer.writerow(["epoch", *self.keys])
        writer.writerow([epoch, *(_cell(logs.get(k, "NA")) for k in self.keys)])
        with path.open("ab") as f:
            f.write(buffer.getvalue().encode("utf-8"))
            self.offset = f.tell()
        self._write_header = False

    def state_dict(self) -> dict[str, Any]:
        return {"keys": self.keys, "offset": self.offset}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.keys = None if state["keys"] is None else list(state["keys"])
        self.offset = int(state["offset"])
        self._resumed = True


def _cell(value: Any) -> Any:
    """Keras's ``handle_value``: strings as they are, sequences as a quoted list."""
    if isinstance(value, str) or not isinstance(value, list | tuple):
        return value
    return f'"[{", ".join(map(str, value))}]"'
