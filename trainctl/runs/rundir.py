"""A run folder: ``runs/<name>-<YYYYmmdd-HHMMSS>/``, created up front and never reused silently.

Every file is written atomically (temp file, then rename), so a killed run leaves complete files.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from trainctl.atomic import atomic_write_bytes
from trainctl.errors import ArtifactError, RunBusy

FORMAT_VERSION = 1


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null (and strings for inf) so files stay standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class RunDir:
    """File names and atomic writers for one run folder."""

    CONFIG = "config.yaml"
    RESOLVED = "config.resolved.yaml"
    RUN = "run.json"
    HISTORY_JSON = "history.json"
    HISTORY_CSV = "history.csv"
    METRICS = "metrics.json"
    SUMMARY = "summary.txt"
    PREPROCESS = "preprocess.json"
    MODEL_JSON = "model.json"
    WEIGHTS = "model.weights.h5"
    MODEL_H5 = "model.h5"
    STATE = "state"
    PLOTS = "plots"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, runs_dir: Path, name: str, now: Callable[[], datetime] = datetime.now) -> RunDir:
        """Make a fresh folder; if the timestamped name exists, add ``-2``, ``-3``...: never reuse."""
        runs_dir.mkdir(parents=True, exist_ok=True)
        stem = f"{name}-{now().strftime('%Y%m%d-%H%M%S')}"
        for i in range(1, 1000):
            path = runs_dir / (stem if i == 1 else f"{stem}-{i}")
            try:
                path.mkdir()
            except FileExistsError:
                continue
            return cls(path)
        raise ArtifactError(f"could not create a fresh run folder under {runs_dir}")

    @classmethod
    def open(cls, path: Path) -> RunDir:
        """An existing run folder; a clear error if it is not one."""
        path = Path(path)
        if not path.is_dir():
            raise ArtifactError(f"run folder not found: {path}", hint="give a folder under runs/")
        run = cls(path)
        if not (path / cls.RUN).is_file():
            raise ArtifactError(f"{path} is not a trainctl run folder: it has no {cls.RUN}")
        info = run.read_json(cls.RUN)
        if not isinstance(info, dict):
            raise ArtifactError(
                f"{path / cls.RUN}: expected a JSON object, received a JSON {type(info).__name__}",
                hint="this run folder is damaged; train it again",
            )
        version = info.get("format_version")
        if version != FORMAT_VERSION:
            raise ArtifactError(
                f"{path / cls.RUN}: expected format_version {FORMAT_VERSION}, received {version!r}",
                hint="this run was written by a different trainctl version",
            )
        return run

    @classmethod
    def find(cls, arg: str | Path, runs_dir: Path = Path("runs")) -> RunDir:
        """A run folder path, or a run NAME: the newest ``<runs_dir>/<name>-<timestamp>`` folder.

        Among a name's folders, the newest that has its model files wins, so a run still training
        in another terminal does not shadow the last finished one.
        """
        path, name = Path(arg), str(arg)
        if path.is_dir() or "/" in name:
            return cls.open(path)
        found = sorted((stamp, folder) for folder, (run, stamp) in _runs(Path(runs_dir)).items() if run == name)
        if not found:
            raise ArtifactError(
                f"expected a run folder or a run name, received {name!r}", hint=_near(name, Path(runs_dir))
            )
        done = [f for _, f in found if (f / cls.MODEL_JSON).is_file() and (f / cls.WEIGHTS).is_file()]
        return cls.open(done[-1] if done else found[-1][1])

    def file(self, name: str) -> Path:
        return self.path / name

    LOCK = ".trainctl.lock"
    _TEMP = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")  # trainctl.atomic's temp names

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive lock on this run folder while training it: a second ``--resume``
        of the same run fails at once with :class:`RunBusy` instead of interleaving writes.
        The kernel drops the lock when the process dies, even by ``kill -9``."""
        import fcntl

        fd = os.open(self.path / self.LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunBusy(
                    f"{self.path} is in use by another trainctl process",
                    hint="wait for it to finish, or stop it (Ctrl-C) and resume again",
                ) from None
            yield
        finally:
            os.close(fd)

    def clean_temps(self) -> list[Path]:
        """Remove temp files a killed atomic write left (call with :meth:`lock` held)."""
        removed = []
        for tmp in self.path.rglob(".*.tmp"):
            if self._TEMP.match(tmp.name) and tmp.is_file() and not tmp.is_symlink():
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
        return removed

    # ------------------------------------------------------------------ writers
    def write_text(self, name: str, text: str, *, durable: bool = True) -> Path:
        target = self.path / name
        atomic_write_bytes(target, text.encode("utf-8"), durable=durable)
        return target

    def write_json(self, name: str, obj: Any, *, indent: int | None = 2, durable: bool = True) -> Path:
        text = json.dumps(_clean(obj), indent=indent, allow_nan=False) + "\n"
        return self.write_text(name, text, durable=durable)

    def read_json(self, name: str) -> Any:
        target = self.path / name
        try:
            return json.loads(target.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ArtifactError(f"{target}: missing") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ArtifactError(f"{target}: not valid JSON ({exc})") from None
        except RecursionError:
            raise ArtifactError(f"{target}: not a trainctl file (JSON nested too deeply)") from None
        except IsADirectoryError:
            raise ArtifactError(f"{target}: expected a file, received a folder") from None

    def update_run(self, **fields: Any) -> dict[str, Any]:
        """Merge fields into run.json (read-modify-write, atomic)."""
        current: dict[str, Any] = {}
        if (self.path / self.RUN).is_file():
            current = self.read_json(self.RUN)
        current.update(fields)
        current.setdefault("format_version", FORMAT_VERSION)
        self.write_json(self.RUN, current)
        return current

    def write_history(self, history: dict[str, list[float]], *, durable: bool = True) -> None:
        """history.json (Keras ``History.history`` layout) and history.csv (one row per epoch)."""
        self.write_json(self.HISTORY_JSON, history, indent=None, durable=durable)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        keys = list(history)
        writer.writerow(["epoch", *keys])
        epochs = max((len(v) for v in history.values()), default=0)
        for i in range(epochs):
            writer.writerow([i, *(repr(history[k][i]) if i < len(history[k]) else "" for k in keys)])
        self.write_text(self.HISTORY_CSV, buf.getvalue(), durable=durable)


_STAMP = re.compile(r"^(?P<name>.+)-(?P<stamp>\d{8}-\d{6})(?:-(?P<n>\d+))?$")


def _runs(runs_dir: Path) -> dict[Path, tuple[str, tuple[str, int]]]:
    """Run folders under ``runs_dir``: folder -> (run name, sortable (timestamp, -N suffix))."""
    if not runs_dir.is_dir():
        return {}
    out: dict[Path, tuple[str, tuple[str, int]]] = {}
    for child in runs_dir.iterdir():
        m = _STAMP.match(child.name)
        if m and child.is_dir():
            out[child] = (m["name"], (m["stamp"], int(m["n"] or 1)))
    return out


def _near(name: str, runs_dir: Path) -> str:
    """A 'did you mean' over the run names in ``runs_dir``, and the names that are there."""
    from trainctl.config.base import did_you_mean

    names = sorted({run for run, _ in _runs(runs_dir).values()})
    if not names:
        return f"there are no runs under {runs_dir}; give a run folder or --runs-dir"
    guess = did_you_mean(name, names)
    listed = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
    return (f"did you mean {guess!r}? " if guess else "") + f"runs under {runs_dir}: {listed}"
