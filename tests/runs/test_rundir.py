"""The run folder: fresh names, atomic JSON, history files, and refusing what it cannot read."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

import pytest

from trainctl.errors import ArtifactError
from trainctl.runs.rundir import FORMAT_VERSION, RunDir


def fixed() -> datetime:
    return datetime(2026, 1, 2, 3, 4, 5)


def test_create_never_reuses_a_folder(tmp_path: Path) -> None:
    a = RunDir.create(tmp_path, "m", now=fixed)
    b = RunDir.create(tmp_path, "m", now=fixed)
    assert a.path.name == "m-20260102-030405"
    assert b.path.name == "m-20260102-030405-2"


def test_history_json_and_csv_agree(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "m", now=fixed)
    history = {"loss": [1.5, 0.25], "accuracy": [0.5, 0.75], "lr": [0.1, 0.1], "epoch_time": [1.0, 2.0]}
    run.write_history(history)
    assert json.loads(run.file("history.json").read_text()) == history
    rows = list(csv.DictReader(run.file("history.csv").open()))
    assert [float(r["loss"]) for r in rows] == history["loss"]
    assert [r["epoch"] for r in rows] == ["0", "1"]


def test_non_finite_values_stay_standard_json(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "m", now=fixed)
    run.write_json("x.json", {"a": float("nan"), "b": float("inf")})
    assert json.loads(run.file("x.json").read_text()) == {"a": None, "b": "inf"}


def test_open_checks_the_folder_and_its_format_version(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not found"):
        RunDir.open(tmp_path / "missing")
    with pytest.raises(ArtifactError, match=r"no run\.json"):
        RunDir.open(tmp_path)
    run = RunDir.create(tmp_path, "m", now=fixed)
    run.update_run(status="completed")
    assert json.loads(run.file("run.json").read_text())["format_version"] == FORMAT_VERSION
    assert RunDir.open(run.path).path == run.path
    run.file("run.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(ArtifactError, match="expected format_version 1, received 99"):
        RunDir.open(run.path)
    run.file("run.json").write_text("{not json")
    with pytest.raises(ArtifactError, match=r"run\.json: not valid JSON"):
        RunDir.open(run.path)
