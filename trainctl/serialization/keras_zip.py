"""Keras 3 ``.keras`` archives: a zip of ``config.json``, ``metadata.json`` and ``model.weights.h5``.

Read with the standard library's :mod:`zipfile` only, never pickle and never ``extractall``: only
the three members we need are read, by name, and an archive with any member whose name is absolute
or climbs out with ``..`` is refused as a whole (Keras never writes one, so it was crafted).
"""

from __future__ import annotations

import json
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import torch

from trainctl.bounds import check_zip_member
from trainctl.errors import ArtifactError, ConfigError, TrainctlError
from trainctl.h5probe import H5Probe
from trainctl.serialization.keras_h5 import load_weights_h5
from trainctl.serialization.keras_json import model_spec_from_json

if TYPE_CHECKING:
    from trainctl.model.sequential import Sequential

CONFIG_MEMBER = "config.json"
METADATA_MEMBER = "metadata.json"
WEIGHTS_MEMBER = "model.weights.h5"
MAX_JSON_BYTES = 64 * 1024 * 1024  # a model config is kilobytes; more is a zip bomb, not a model


@dataclass(frozen=True)
class KerasArchive:
    """What a ``.keras`` file holds, its weights copied out to ``weights`` (a ``.weights.h5`` path)."""

    config: str  # config.json text: the Keras 3 ``to_json`` schema, with compile_config
    metadata: dict[str, Any]  # {"keras_version": ..., "date_saved": ...}
    weights: Path

    @property
    def keras_version(self) -> str | None:
        version = self.metadata.get("keras_version")
        return str(version) if version is not None else None


def _unsafe(name: str) -> bool:
    if name.startswith(("/", "\\")) or "\\" in name or (len(name) > 1 and name[1] == ":"):
        return True
    return ".." in PurePosixPath(name).parts


def _read_json(zf: zipfile.ZipFile, member: str, label: str) -> str:
    info = zf.getinfo(member)
    check_zip_member(info.file_size, info.compress_size, f"{label}: {member}", ArtifactError)
    if info.file_size > MAX_JSON_BYTES:
        raise ArtifactError(
            f"{label}: expected {member} below {MAX_JSON_BYTES // 2**20} MiB, received {info.file_size} bytes"
        )
    with zf.open(info) as fh:
        raw = fh.read(MAX_JSON_BYTES + 1)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ArtifactError(f"{label}: {member} is not UTF-8 text") from None


def read_keras_zip(path: Path, dest_dir: Path) -> KerasArchive:
    """Read a ``.keras`` file; its ``model.weights.h5`` is copied to ``dest_dir`` (streamed)."""
    path = Path(path)
    label = path.name
    if not path.is_file():
        raise ArtifactError(f"{label}: file not found ({path})")
    if not zipfile.is_zipfile(path):
        raise ArtifactError(f"{label}: expected a .keras zip archive, received a file that is not a zip")
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            bad = [n for n in names if _unsafe(n)]
            if bad:
                raise ArtifactError(
                    f"{label}: refusing an archive with member paths that are absolute or contain "
                    f"'..': {', '.join(map(repr, bad[:3]))}"
                )
            missing = [m for m in (CONFIG_MEMBER, WEIGHTS_MEMBER) if m not in names]
            if missing:
                raise ArtifactError(
                    f"{label}: expected {' and '.join(missing)} in the archive, "
                    f"received members {', '.join(names[:8]) or 'none'}"
                )
            config = _read_json(zf, CONFIG_MEMBER, label)
            metadata: Any = {}
            if METADATA_MEMBER in names:
                try:
                    metadata = json.loads(_read_json(zf, METADATA_MEMBER, label))
                except json.JSONDecodeError:
                    raise ArtifactError(f"{label}: {METADATA_MEMBER} is not valid JSON") from None
            target = Path(dest_dir) / WEIGHTS_MEMBER
            info = zf.getinfo(WEIGHTS_MEMBER)
            # a bomb is refused from its declared sizes; zipfile then stops at the declared size
            # (and checks the CRC), and the copy below stops there too, whatever the stream says
            check_zip_member(info.file_size, info.compress_size, f"{label}: {WEIGHTS_MEMBER}", ArtifactError)
            with zf.open(info) as src, open(target, "wb") as dst:
                left = info.file_size
                while left > 0:
                    piece = src.read(min(1 << 20, left))
                    if not piece:
                        break
                    dst.write(piece)
                    left -= len(piece)
                if src.read(1):
                    raise ArtifactError(f"{label}: {WEIGHTS_MEMBER} holds more than its declared size")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error, NotImplementedError) as exc:
        raise ArtifactError(f"{label}: the archive is truncated or corrupt ({exc})") from None
    return KerasArchive(config, metadata if isinstance(metadata, dict) else {}, target)


def load_keras_zip(path: Path) -> Sequential:
    """A ``.keras`` file -> our built model with its weights, in eval mode (no Keras needed)."""
    from trainctl.model.sequential import build_model

    label = Path(path).name
    with tempfile.TemporaryDirectory(prefix="trainctl-keras-") as tmp:
        archive = read_keras_zip(Path(path), Path(tmp))
        with H5Probe(archive.weights) as probe:  # overlaps with building the model
            try:
                spec = model_spec_from_json(archive.config)
                with torch.random.fork_rng(devices=[]):
                    model = build_model(spec)
            except (ArtifactError, ConfigError) as exc:
                detail = exc.render() if isinstance(exc, TrainctlError) else str(exc)
                raise ArtifactError(f"{label}: {CONFIG_MEMBER}: {detail}") from None
            try:
                load_weights_h5(model, archive.weights, probe)
            except ArtifactError as exc:
                raise ArtifactError(f"{label}: {exc.render()}") from None
    return model.eval()
