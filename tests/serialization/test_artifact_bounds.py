"""Keras files that declare huge sizes: an HDF5 dataset of 10^12 elements and a ``.keras`` zip bomb
are refused with exit 4 from their headers, in a child process under a 2 GB address-space limit."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import h5py
import pytest

from tests.bounded import run_cli
from tests.clihelp import CONFIGS, Cli

MEM_MB = 2000


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("art")
    return Path(Cli(tmp / "runs").train_json(CONFIGS / "xor.yaml", "fit.epochs=1")["run_dir"])


def first_dataset(f: h5py.File) -> str:
    found: list[str] = []
    f.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None)
    return sorted(found)[0]


def test_h5_dataset_declaring_a_trillion_elements_is_refused_before_reading(run: Path, tmp_path: Path) -> None:
    weights = tmp_path / "model.weights.h5"
    weights.write_bytes((run / "model.weights.h5").read_bytes())
    with h5py.File(weights, "r+") as f:
        name = first_dataset(f)
        del f[name]
        # chunked, never written: the file stays small, the shape says 4 TB of float32
        f.create_dataset(name, shape=(10**6, 10**6), dtype="float32", chunks=(64, 64))
    assert weights.stat().st_size < 1_000_000
    proc = run_cli("import", run / "model.json", weights, "--out", tmp_path / "out", mem_mb=MEM_MB)
    assert proc.returncode == 4, proc.stderr
    assert "the file has (1000000, 1000000)" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "model.weights.h5").exists()


def keras_zip(run: Path, path: Path, weights_member: bytes | None, zeros_mb: int = 0) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", (run / "model.json").read_text())
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        if weights_member is not None:
            zf.writestr("model.weights.h5", weights_member)
            return
        with zf.open("model.weights.h5", "w", force_zip64=True) as fh:
            for _ in range(zeros_mb):
                fh.write(bytes(2**20))


def test_keras_archive_imports_and_a_zip_bomb_member_is_refused(run: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.keras"
    keras_zip(run, good, (run / "model.weights.h5").read_bytes())
    proc = run_cli("import", good, "--out", tmp_path / "ok", "--loss", "binary_crossentropy", mem_mb=MEM_MB)
    assert proc.returncode == 0, proc.stderr

    bomb = tmp_path / "bomb.keras"
    keras_zip(run, bomb, None, zeros_mb=256)  # 256 MB of zeros deflate to ~250 kB
    assert bomb.stat().st_size < 2_000_000
    proc = run_cli("import", bomb, "--out", tmp_path / "out", mem_mb=MEM_MB)
    assert proc.returncode == 4, proc.stderr
    assert "model.weights.h5: the member declares 268.4 MB" in proc.stderr
    assert "zip bomb" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_model_json_with_a_dense_of_10_12_units_is_refused_before_torch_allocates(run: Path, tmp_path: Path) -> None:
    spec = json.loads((run / "model.json").read_text())

    def widen(node: object) -> bool:
        if isinstance(node, dict):
            if node.get("class_name") == "Dense":
                node["config"]["units"] = 10**12
                return True
            return any(widen(v) for v in node.values())
        return isinstance(node, list) and any(widen(v) for v in node)

    assert widen(spec)
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(spec))
    proc = run_cli("import", path, run / "model.weights.h5", "--out", tmp_path / "out", mem_mb=MEM_MB)
    assert proc.returncode == 4, proc.stderr
    # xor's first Dense: 2 inputs -> 10^12 units (+bias), then 10^12 -> 1 (+bias): 4 * 10^12 + 1
    assert "the model's 4,000,000,000,001 weights need 16.0 TB" in proc.stderr
    assert "Traceback" not in proc.stderr
