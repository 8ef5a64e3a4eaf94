"""The benchmark harness: its configs validate, its statistics are the documented ones, and its
hand-written loop runs the number of steps per epoch the harness divides by."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from trainctl.config import load_config

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run = _module("run")


def _sample(*epochs: float) -> dict[str, Any]:
    """One process's record; its first epoch (99 s) is the warm-up the harness drops."""
    return {
        "epoch_times": [99.0, *epochs],
        "rss_mb": 100.0,
        "first_step_s": 1.0,
        "process_s": 5.0,
        "steps_per_epoch": 10,
    }


@pytest.mark.parametrize("path", sorted(BENCH.glob("configs/*.yaml")), ids=lambda p: p.stem)
def test_benchmark_configs_validate_and_name_their_command(path: Path) -> None:
    load_config(path)
    assert path.read_text().splitlines()[0].startswith(f"# trainctl train benchmarks/configs/{path.name}")
    assert path.stem in run.EPOCHS and path.stem in run.STEPS


def test_epoch_ratio_is_the_median_of_per_repetition_ratios() -> None:
    ours = [_sample(2.0, 2.2), _sample(4.0, 4.0), _sample(1.1, 1.1)]  # process medians 2.1, 4.0, 1.1
    hand = [_sample(2.0, 2.0), _sample(2.0, 2.0), _sample(1.0, 1.0)]  # 2.0, 2.0, 1.0
    stats = run.summarize(ours, hand)
    assert stats["epoch_ratio"] == pytest.approx(1.1)  # median of 1.05, 2.0, 1.1
    assert stats["epoch_s"] == pytest.approx(2.1)  # pooled: 1.1, 1.1, 2.0, 2.2, 4.0, 4.0
    assert (stats["epoch_min"], stats["epoch_max"]) == (1.1, 4.0)  # the warm-up epochs are gone
    assert stats["steps_per_s"] == pytest.approx(10 / 2.1)


def test_a_side_skipped_in_a_repetition_pairs_only_where_it_ran() -> None:
    hand = [_sample(2.0), _sample(1.0), _sample(1.0)]
    stats = run.summarize([_sample(3.0), None, None], hand)
    assert stats["epoch_ratio"] == pytest.approx(1.5)
    assert stats["n"] == 1


@pytest.mark.parametrize(
    ("script", "workload"),
    [("hand_loop.py", "tiny"), ("hand_loop.py", "lstm"), ("keras_loop.py", "tiny")],  # those needing no dataset
)
def test_each_side_runs_the_steps_the_harness_counts(script: str, workload: str) -> None:
    if script == "keras_loop.py":
        pytest.importorskip("keras")
    out = subprocess.run(
        [sys.executable, str(BENCH / script), workload, "--epochs", "1"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        cwd=BENCH,
        env={**os.environ, "KERAS_BACKEND": "torch"},
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["steps_per_epoch"] == run.STEPS[workload]
    assert len(result["epoch_times"]) == 1 and result["first_step_at"] > 0
    if script == "hand_loop.py":
        assert math.isfinite(result["logs"]["loss"])


def test_the_harness_imports_no_torch() -> None:
    """Linux keeps ru_maxrss across exec: a harness holding torch would inflate every child's peak RSS."""
    code = "import sys, runpy; sys.argv = ['run.py', '--help']; sys.path.insert(0, 'benchmarks')\n"
    code += "try:\n    runpy.run_path('benchmarks/run.py', run_name='__main__')\nexcept SystemExit:\n    pass\n"
    code += "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'numpy', 'keras'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=BENCH.parent)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_cnn_rows_are_built_in_a_child_and_match_mnist(tmp_path: Path, shared_datasets: Path) -> None:
    """The harness caches the cnn rows without importing torch or holding the arrays itself."""
    code = (
        "import json, os, runpy, sys; from pathlib import Path; sys.path.insert(0, 'benchmarks')\n"
        "cnn_npz = runpy.run_path('benchmarks/run.py')['cnn_npz']\n"
        f"cnn_npz.__globals__['_CACHE'] = Path({str(tmp_path)!r})\n"
        f"path = cnn_npz({{**os.environ, 'TRAINCTL_DATA_DIR': {str(shared_datasets)!r}}})\n"
        "print(json.dumps([str(path), sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'numpy'})]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=BENCH.parent)
    path, heavy = json.loads(out.stdout.strip().splitlines()[-1])
    assert heavy == []
    import numpy as np

    from trainctl.data.idx import read_images_labels

    images, labels = read_images_labels(
        shared_datasets / "mnist" / "train-images-idx3-ubyte.gz",
        shared_datasets / "mnist" / "train-labels-idx1-ubyte.gz",
    )
    with np.load(path) as saved:
        np.testing.assert_array_equal(saved["x_train"], images[:12000])
        np.testing.assert_array_equal(saved["y_train"], labels[:12000])


def test_make_image_folder_writes_the_idx_images_as_keras_class_folders(tmp_path: Path, keras: ModuleType) -> None:
    """The PNG folder holds exactly the IDX pixels, and Keras's own listing of it gives the IDX labels."""
    import gzip
    import struct

    import numpy as np
    from keras.src.utils import dataset_utils
    from PIL import Image

    make = _module("make_image_folder")
    rng = np.random.default_rng(0)
    src = tmp_path / "fashion_mnist"
    src.mkdir()
    arrays = {}
    for split, n in (("train", 30), ("t10k", 12)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n, dtype=np.uint8)
        arrays[split] = (x, y)
        for kind, a in (("images-idx3", x), ("labels-idx1", y)):
            head = struct.pack(">BBBB", 0, 0, 8, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape)
            (src / f"{split}-{kind}-ubyte.gz").write_bytes(gzip.compress(head + a.tobytes()))
    out = tmp_path / "png"
    assert make.main([str(out), "--data-dir", str(tmp_path)]) == 0
    for split, key in (("train", "train"), ("test", "t10k")):
        x, y = arrays[key]
        paths, labels, names = dataset_utils.index_directory(
            str(out / split), "inferred", formats=(".png",), shuffle=False, verbose=False
        )
        assert names == [f"{i}_{n}" for i, n in enumerate(make.NAMES["fashion_mnist"])]
        assert len(paths) == len(x)
        # files are named by their IDX row: read them back in row order
        rows = sorted(range(len(paths)), key=lambda i: Path(paths[i]).name)
        for i in rows:
            row = int(Path(paths[i]).stem)
            assert labels[i] == y[row]
            np.testing.assert_array_equal(np.asarray(Image.open(paths[i])), x[row])
    assert not (tmp_path / "png.partial").exists()
