"""User-given names stay where they belong: inside their base folder, clear of trainctl's files.

One helper for every name a user gives that becomes a path we write: the run name
(``train --name`` and YAML ``name:``), and callback files (``CSVLogger.filename``,
``ModelCheckpoint.filepath``, ``TensorBoard.log_dir``) inside the run folder. Absolute paths,
``..``, symlinks that lead out, over-long names and names the run folder already owns are refused
with a :class:`ConfigError`: without this, ``filename: preprocess.json`` completes with exit 0
and leaves a run that predict cannot open. No torch here: config validation calls it.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from trainctl.errors import ConfigError

MAX_COMPONENT_BYTES = 255  # NAME_MAX on Linux and macOS
MAX_RELATIVE_BYTES = 1024
MAX_RUN_NAME = 200  # leaves room for "-YYYYmmdd-HHMMSS-N" under NAME_MAX

LOCK_FILE = ".trainctl.lock"

# Files and folders a run folder owns (see trainctl.runs.RunDir): a callback must not write these.
OWNED = frozenset(
    {
        "config.yaml",
        "config.resolved.yaml",
        "run.json",
        "history.json",
        "history.csv",
        "metrics.json",
        "summary.txt",
        "preprocess.json",
        "model.json",
        "model.weights.h5",
        "model.h5",
        "model.keras",
        "state",
        "plots",
        "evaluation.json",
        LOCK_FILE,
    }
)

_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_run_name(name: str, *, key: str = "name") -> str:
    """A run name is one folder-name component: letters, digits, ``.``, ``_``, ``-``."""
    if not _RUN_NAME.match(name):
        raise ConfigError(
            f"expected letters, digits, '.', '_' or '-' starting with a letter or digit (it names a "
            f"folder under --runs-dir), received {name!r}",
            key=key,
            hint="a run name cannot hold '/', '..' or start with '.'",
        )
    if len(name) > MAX_RUN_NAME:
        raise ConfigError(
            f"expected a run name of at most {MAX_RUN_NAME} characters, received {len(name)}",
            key=key,
            hint="use a shorter name",
        )
    return name


def check_relative(name: str, *, key: str, reserved: frozenset[str] = OWNED) -> PurePosixPath:
    """The checks that need no folder: relative, no ``..``, short enough, not a reserved name."""
    if not name or not name.strip():
        raise ConfigError("expected a file name relative to the run folder, received an empty one", key=key)
    if "\x00" in name:
        raise ConfigError(f"expected a file name, received one with a NUL byte: {name!r}", key=key)
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or name.startswith("~") or re.match(r"^[A-Za-z]:", name):
        raise ConfigError(
            f"expected a path relative to the run folder, received an absolute one: {name!r}",
            key=key,
            hint="give a name such as 'logs/training.log'; it is written inside the run folder",
        )
    if ".." in pure.parts:
        raise ConfigError(
            f"expected a path inside the run folder, received one that climbs out with '..': {name!r}",
            key=key,
            hint="remove the '..' parts",
        )
    if len(name.encode("utf-8", "surrogatepass")) > MAX_RELATIVE_BYTES or any(
        len(p.encode("utf-8", "surrogatepass")) > MAX_COMPONENT_BYTES for p in pure.parts
    ):
        raise ConfigError(
            f"expected a path of at most {MAX_RELATIVE_BYTES} bytes with parts of at most "
            f"{MAX_COMPONENT_BYTES} bytes, received {len(name)} characters",
            key=key,
            hint="use a shorter name",
        )
    parts = [p for p in pure.parts if p != "."]
    if not parts:
        raise ConfigError(f"expected a file name, received {name!r} (the run folder itself)", key=key)
    first = parts[0].lower()
    if first in {r.lower() for r in reserved} or (first.startswith(".") and first.endswith(".tmp")):
        raise ConfigError(
            f"expected a name that does not collide with the run folder's own files, received {name!r}",
            key=key,
            hint="pick another name: trainctl owns run.json, model.json, preprocess.json, state/, plots/...",
        )
    return PurePosixPath(*parts)


def inside(base: Path, name: str, *, key: str, reserved: frozenset[str] = OWNED) -> Path:
    """``base / name`` after :func:`check_relative`, refusing a symlink that leads outside ``base``."""
    rel = check_relative(name, key=key, reserved=reserved)
    root = Path(base).resolve()
    target = (root / rel).resolve()
    if target != root and root not in target.parents:
        raise ConfigError(
            f"expected a path inside the run folder, received {name!r}, which a symlink leads to {target}",
            key=key,
            hint="remove the symlink or pick another name",
        )
    return root / rel
