"""Downloading against a local http.server: md5-verified, atomic, nothing kept when corrupt."""

from __future__ import annotations

import functools
import gzip
import hashlib
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from datahelp import idx_bytes, source

from trainctl.data import download, load_data
from trainctl.errors import DataError

RNG = np.random.default_rng(0)
ARRAYS = {
    download.TRAIN_IMAGES: RNG.integers(0, 256, (6, 28, 28)).astype(np.uint8),
    download.TRAIN_LABELS: np.array([0, 1, 2, 3, 4, 5], np.uint8),
    download.TEST_IMAGES: RNG.integers(0, 256, (2, 28, 28)).astype(np.uint8),
    download.TEST_LABELS: np.array([9, 8], np.uint8),
}


class Handler(SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        Handler.requests.append(self.path)


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A tmp folder served on 127.0.0.1; the md5 table points at its files; no local copies."""
    root = tmp_path / "www"
    root.mkdir()
    for name, arr in ARRAYS.items():
        data = gzip.compress(idx_bytes(arr))
        (root / name).write_bytes(data)
        monkeypatch.setitem(download.MD5["mnist"], name, hashlib.md5(data).hexdigest())
    Handler.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    monkeypatch.setenv("TRAINCTL_MNIST_URL", f"http://127.0.0.1:{httpd.server_address[1]}/")
    monkeypatch.setenv("TRAINCTL_DATA_DIR", str(tmp_path / "no-local-copies"))
    monkeypatch.setenv("TRAINCTL_CACHE_DIR", str(tmp_path / "cache"))
    yield root
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_download_verifies_and_caches(server: Path, tmp_path: Path) -> None:
    spec = source(source="mnist", x=[{"cast": "uint8"}])
    ds = load_data(spec, base_dir=tmp_path, seed=0)
    np.testing.assert_array_equal(ds.x_train, ARRAYS[download.TRAIN_IMAGES])
    np.testing.assert_array_equal(ds.y_test, [9, 8])
    cache = tmp_path / "cache" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(download.FILES)  # no .part left over
    assert (cache / download.TRAIN_LABELS).read_bytes() == (server / download.TRAIN_LABELS).read_bytes()
    assert len(Handler.requests) == 4
    load_data(spec, base_dir=tmp_path, seed=0)  # second load: from the cache, no request
    assert len(Handler.requests) == 4


def test_corrupt_download_is_deleted_and_never_used(server: Path, tmp_path: Path) -> None:
    good = (server / download.TEST_IMAGES).read_bytes()
    (server / download.TEST_IMAGES).write_bytes(good[:-1] + bytes([good[-1] ^ 0xFF]))
    with pytest.raises(DataError, match="expected md5") as e:
        load_data(source(source="mnist"), base_dir=tmp_path, seed=0)
    assert download.TEST_IMAGES in str(e.value)
    cache = tmp_path / "cache" / "mnist"
    left = sorted(p.name for p in cache.iterdir())
    assert download.TEST_IMAGES not in left and not [n for n in left if n.endswith(".part")]


def test_http_error_is_a_data_error(server: Path, tmp_path: Path) -> None:
    (server / download.TRAIN_LABELS).unlink()
    with pytest.raises(DataError, match="404") as e:
        load_data(source(source="mnist"), base_dir=tmp_path, seed=0)
    assert e.value.key == "data.download"
    assert not [p for p in (tmp_path / "cache" / "mnist").iterdir() if p.name.endswith(".part")]


def test_base_url_env_override_and_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINCTL_FASHION_MNIST_URL", "http://mirror.example/fm")
    assert download.base_url("fashion_mnist") == "http://mirror.example/fm/"
    monkeypatch.delenv("TRAINCTL_MNIST_URL")
    assert download.base_url("mnist") == "https://ossci-datasets.s3.amazonaws.com/mnist/"
