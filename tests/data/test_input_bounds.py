"""Predict inputs whose headers claim huge sizes: each is refused with exit 3 naming the file, in a
child process under a 2 GB address-space limit (torch itself needs ~1 GB mapped), so a reader that
allocated the claim would die with MemoryError instead."""

from __future__ import annotations

import gzip
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from tests.bounded import run_cli
from tests.clihelp import Cli, write
from trainctl.bounds import MAX_IMAGE_PIXELS

MEM_MB = 2000

IMAGES = """
name: imgs
seed: 4
data: {source: npz, path: imgs.npz, x: [{scale: 255}]}
model:
  layers:
    - {type: Flatten, input_shape: [8, 8, 1]}
    - {type: Dense, units: 10, activation: softmax}
compile: {optimizer: adam, loss: sparse_categorical_crossentropy}
fit: {epochs: 1, batch_size: 64}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("bounds")
    rng = np.random.default_rng(0)
    np.savez(tmp / "imgs.npz", x_train=rng.integers(0, 255, (64, 8, 8, 1), dtype=np.uint8), y_train=np.arange(64) % 10)
    return Path(Cli(tmp / "runs").train_json(write(tmp, IMAGES, "images.yaml"), "--smoke")["run_dir"])


def refused(run: Path, path: Path, *needles: str) -> str:
    proc = run_cli("predict", run, path, "-o", path.with_suffix(".out.npy"), mem_mb=MEM_MB)
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr
    assert str(path) in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr
    assert not path.with_suffix(".out.npy").exists()
    return proc.stderr


def test_112_byte_idx_claiming_30000x30000_is_refused_from_its_header(run: Path, tmp_path: Path) -> None:
    path = tmp_path / "bomb-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 2]) + np.array([30000, 30000], ">u4").tobytes() + bytes(100))
    assert path.stat().st_size == 112
    refused(run, path, "declares shape (30000, 30000) (900.0 MB)", "holds only 100 bytes")


def test_gzip_idx_claiming_7_gb_fails_as_truncated_after_reading_what_is_there(run: Path, tmp_path: Path) -> None:
    # float64 rows of 8x8: a chunk of rows would be 30000 * 30000 * 512 bytes if allocated ahead
    head = bytes([0, 0, 0x0E, 3]) + np.array([30000 * 30000, 8, 8], ">u4").tobytes()
    path = tmp_path / "bomb-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(head + bytes(512 * 3)))
    refused(run, path, "truncated")


def npy_header(shape: tuple[int, ...], fortran: bool = False, dtype: str = "<f8") -> bytes:
    """A version 1.0 ``.npy`` header, built by hand from the format spec (not by numpy)."""
    text = f"{{'descr': '{dtype}', 'fortran_order': {fortran}, 'shape': {shape}, }}"
    pad = 64 - (10 + len(text) + 1) % 64
    text += " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def test_npy_header_claiming_a_terabyte_is_refused(run: Path, tmp_path: Path) -> None:
    path = tmp_path / "bomb.npy"
    path.write_bytes(npy_header((10**6, 8, 8, 1), dtype="<f8") + bytes(64))
    refused(run, path)


def test_npz_member_declaring_more_than_it_holds_is_refused(run: Path, tmp_path: Path) -> None:
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x.npy", npy_header((10**7, 8, 8, 1), fortran=True, dtype="<f8") + bytes(4096))
    refused(run, path, "declares shape (10000000, 8, 8, 1)")


def test_fortran_order_npy_and_npz_predict_like_c_order(run: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from trainctl.cli.main import app

    rng = np.random.default_rng(1)
    x = rng.integers(0, 255, (5, 8, 8, 1)).astype(np.uint8)
    np.save(tmp_path / "c.npy", x)
    np.save(tmp_path / "f.npy", np.asfortranarray(x))
    np.savez_compressed(tmp_path / "f.npz", x=np.asfortranarray(x))
    assert np.load(tmp_path / "f.npy").flags.f_contiguous
    runner = CliRunner()
    outs = []
    for name in ("c.npy", "f.npy", "f.npz"):
        res = runner.invoke(app, ["predict", str(run), str(tmp_path / name), "-o", str(tmp_path / f"{name}.out.npy")])
        assert res.exit_code == 0, res.output
        outs.append(np.load(tmp_path / f"{name}.out.npy"))
    np.testing.assert_array_equal(outs[1], outs[0])
    np.testing.assert_array_equal(outs[2], outs[0])


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares ``width x height`` grey pixels, followed by one tiny IDAT: Pillow
    learns the size from the header alone, so the file stays a few dozen bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("side", "needle"),
    [
        (9000, f"expected at most {MAX_IMAGE_PIXELS:,}"),  # past our budget, under Pillow's own limit
        (20000, "decompression bomb"),  # past Pillow's hard limit: DecompressionBombError at open
    ],
)
def test_png_bombs_are_refused_from_the_header(run: Path, tmp_path: Path, side: int, needle: str) -> None:
    folder = tmp_path / "pngs"
    folder.mkdir()
    path = folder / "bomb.png"
    path.write_bytes(png_header_only(side, side))
    stderr = refused(run, folder, needle)
    assert str(path) in stderr
