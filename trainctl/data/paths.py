"""Resolving data file names from the config: relative to the config file's folder, with a
"did you mean" over the files that *are* there, because a typo in a file name is the most
common data error."""

from __future__ import annotations

from pathlib import Path

from trainctl.config.base import did_you_mean
from trainctl.errors import DataFileNotFound


def resolve(base_dir: Path, name: str, key: str, *, folder: bool = False) -> Path:
    """``name`` made absolute against ``base_dir`` (``~`` expanded); missing -> DataFileNotFound."""
    path = Path(name).expanduser()
    if not path.is_absolute():
        path = Path(base_dir) / path
    path = path.resolve()
    ok = path.is_dir() if folder else path.is_file()
    if ok:
        return path
    what = "folder" if folder else "file"
    raise DataFileNotFound(f"expected a {what} at {path}, found none", key=key, hint=_hint(path, folder))


def _hint(path: Path, folder: bool) -> str | None:
    parent = path.parent
    if not parent.is_dir():
        return f"the folder {parent} does not exist either"
    siblings = [p.name for p in parent.iterdir() if (p.is_dir() if folder else p.is_file())]
    guess = did_you_mean(path.name, siblings)
    return f"did you mean {guess!r}?" if guess else None
