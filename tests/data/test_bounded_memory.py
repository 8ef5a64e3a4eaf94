"""Streaming a memory-mapped ``.npy`` keeps the training process's peak RSS bounded: a file 8x
bigger must not cost 8x the memory. Measured in fresh subprocesses (``ru_maxrss`` of the child,
as run.json's ``peak_rss_mb`` records it); no wall-clock assertion."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.clihelp import ROOT, read_json

FEATURES = 512

CONFIG = """
seed: 3
threads: 1
data: {{source: npy, x: x.npy, y: y.npy, cache: none, workers: 0}}
model:
  layers:
    - {{type: Dense, units: 16, activation: relu, input_shape: [{features}]}}
    - {{type: Dense, units: 1}}
compile: {{optimizer: sgd, loss: mse}}
fit: {{epochs: 1, batch_size: 256}}
"""


def _peak_mb(folder: Path, rows: int) -> float:
    folder.mkdir()
    # written by a child: Linux keeps ru_maxrss across fork+exec, so pages this process touched
    # while writing would show up as the training child's peak
    write = (
        "import numpy as np, sys; rows, f = int(sys.argv[1]), int(sys.argv[2]);"
        "x = np.lib.format.open_memmap('x.npy', mode='w+', dtype=np.float32, shape=(rows, f))\n"
        "for i in range(0, rows, 8192): x[i:i+8192] = np.random.default_rng(i).normal(size=(min(8192, rows-i), f))\n"
        "x.flush()"
    )
    subprocess.run([sys.executable, "-c", write, str(rows), str(FEATURES)], cwd=folder, check=True, timeout=600)
    np.save(folder / "y.npy", np.random.default_rng(0).normal(size=(rows, 1)).astype(np.float32))
    (folder / "cfg.yaml").write_text(CONFIG.format(features=FEATURES))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "trainctl", "train", "cfg.yaml", "--runs-dir", "runs"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = read_json(next((folder / "runs").iterdir()) / "run.json")
    assert info["data"]["cache"] == "none"
    return float(info["peak_rss_mb"])


def _bounded(tmp_path: Path, small_rows: int, big_rows: int) -> None:
    small = _peak_mb(tmp_path / "small", small_rows)
    big = _peak_mb(tmp_path / "big", big_rows)
    grown_mb = (big_rows - small_rows) * FEATURES * 4 / 2**20
    # reading the whole file once must not leave it resident: at most a quarter of the extra bytes
    assert big - small < 0.25 * grown_mb, f"peak RSS {small:.0f} -> {big:.0f} MiB for {grown_mb:.0f} MiB more data"


def test_streaming_a_memmapped_npy_keeps_peak_rss_bounded(tmp_path: Path) -> None:
    _bounded(tmp_path, 16_384, 131_072)  # 32 MiB and 256 MiB of float32


@pytest.mark.slow
def test_streaming_a_3_gb_npy_stays_under_1_5_gb(tmp_path: Path) -> None:
    rows = 3 * 2**30 // (FEATURES * 4) + 1  # just over 3 GiB
    assert _peak_mb(tmp_path / "big", rows) < 1.5 * 1024


@pytest.mark.slow
def test_image_folder_peak_rss_does_not_grow_with_the_files(tmp_path: Path) -> None:
    """The same CNN config, streamed (``data.cache: none``), from 1,000 and from 6,000 PNG files:
    peak RSS within 1.2x (benchmarks/bounded_memory.py images; its children are forked from a
    small process, so their ru_maxrss is theirs)."""
    data = Path(os.environ.get("TRAINCTL_DATA_DIR", ROOT.parent / "shared" / "datasets"))
    if not (data / "fashion_mnist").is_dir():
        pytest.skip("no shared Fashion-MNIST IDX files ($TRAINCTL_DATA_DIR)")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRAINCTL_DATA_DIR": str(data)}
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bounded_memory.py"), "--work", str(tmp_path)]
    proc = subprocess.run(
        [*cmd, "images", "--small", "1000", "--large", "6000"], env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    ratio = float(proc.stdout.split("ratio large/small:")[1].split()[0])
    assert ratio <= 1.2, proc.stdout
