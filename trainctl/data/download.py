"""Finding (and, if allowed, downloading) the original MNIST / Fashion-MNIST IDX files.

Search order: ``data.path`` (relative to the config's folder), then ``$TRAINCTL_DATA_DIR/<source>/``,
then the cache ``$TRAINCTL_CACHE_DIR/<source>/`` (default ``~/.cache/trainctl/datasets/<source>/``).
Downloads go to a temporary file in the cache folder, are checked against the published md5 and
only then renamed into place, so a half-written or tampered file is never read. Files found
locally are not md5-checked (a re-compressed copy is still valid data); their IDX structure is.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from trainctl.data.paths import resolve
from trainctl.errors import DataError, DataFileNotFound

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

# The published md5 of each .gz (also what torchvision checks); see shared/datasets/*/README.md.
MD5: dict[str, dict[str, str]] = {
    "mnist": {
        TRAIN_IMAGES: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        TRAIN_LABELS: "d53e105ee54ea40749a09fcbcd1e9432",
        TEST_IMAGES: "9fb629c4189551a2d022fa330f9573f3",
        TEST_LABELS: "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion_mnist": {
        TRAIN_IMAGES: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        TRAIN_LABELS: "25c81989df183df01b3e8a0aad5dffbe",
        TEST_IMAGES: "bef4ecab320f06d8554ea6380940ec79",
        TEST_LABELS: "bb300cfdad3c16e7a12a480ee83cd310",
    },
}
URLS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion_mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}
URL_ENV = {"mnist": "TRAINCTL_MNIST_URL", "fashion_mnist": "TRAINCTL_FASHION_MNIST_URL"}
TIMEOUT_S = 60.0


def cache_dir(source: str) -> Path:
    """Where downloads of ``source`` live: ``$TRAINCTL_CACHE_DIR/<source>`` or the user cache."""
    env = os.environ.get("TRAINCTL_CACHE_DIR")
    if env:
        return Path(env).expanduser() / source
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "trainctl" / "datasets" / source


def base_url(source: str) -> str:
    url = os.environ.get(URL_ENV[source]) or URLS[source]
    return url if url.endswith("/") else url + "/"


def _find(folder: Path, name: str) -> Path | None:
    """``name`` or its decompressed twin (``train-images-idx3-ubyte``) in ``folder``."""
    for candidate in (folder / name, folder / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _complete(folder: Path) -> dict[str, Path] | None:
    found = {name: _find(folder, name) for name in FILES}
    return None if any(p is None for p in found.values()) else found  # type: ignore[return-value]


def locate(source: str, path: str | None, *, base_dir: Path, download: bool) -> dict[str, Path]:
    """The four files of ``source`` by canonical name, downloading missing ones into the cache."""
    if path is not None:
        folder = resolve(base_dir, path, "data.path", folder=True)
        found = {name: _find(folder, name) for name in FILES}
        missing = [n for n, p in found.items() if p is None]
        if missing:
            raise DataFileNotFound(
                f"expected the {source} files {', '.join(missing)} in {folder}, found none",
                key="data.path",
                hint="the folder must hold the four original IDX files (.gz or decompressed)",
            )
        return found  # type: ignore[return-value]
    env = os.environ.get("TRAINCTL_DATA_DIR")
    if env and (hit := _complete(Path(env).expanduser() / source)):
        return hit
    cache = cache_dir(source)
    found = {name: _find(cache, name) for name in FILES}
    missing = [n for n, p in found.items() if p is None]
    if missing and not download:
        places = [str(Path(env) / source)] if env else []
        raise DataFileNotFound(
            f"expected the {source} files {', '.join(missing)} in {' or '.join([*places, str(cache)])}, found none",
            key="data.download",
            hint="set `download: true`, or point data.path at a folder with the four .gz files",
        )
    for name in missing:
        found[name] = fetch(base_url(source) + name, cache / name, MD5[source][name])
    return found  # type: ignore[return-value]


def fetch(url: str, dest: Path, md5: str) -> Path:
    """Download ``url`` to ``dest`` atomically; a wrong md5 deletes the download and raises."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
            while chunk := resp.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != md5:
            raise DataError(
                f"expected md5 {md5} for {url}, received {digest.hexdigest()}; the download was deleted",
                key="data.source",
                hint="the mirror may be serving a different file; set data.path to a verified copy",
            )
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError) as exc:
        raise DataError(
            f"expected to download {url}, received an error: {exc}",
            key="data.download",
            hint="check the network, or put the files in data.path or $TRAINCTL_DATA_DIR",
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return dest
