"""Fast commands stay fast: ``--help``, ``config validate|schema`` and ``summary`` never import
torch, numpy or scikit-learn. Each runs the CLI in a fresh interpreter and lists ``sys.modules``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "numpy", "sklearn", "scipy", "keras", "h5py", "pandas")

# runs the Typer app in-process with sys.argv set; it ends with SystemExit, which we catch
PROBE = """
import io, json, sys, contextlib
sys.argv = ["trainctl", *json.loads(sys.argv[1])]
from trainctl.cli.main import app
out = io.StringIO()
code = 0
try:
    with contextlib.redirect_stdout(out):
        app()
except SystemExit as exc:
    code = exc.code or 0
sys.__stdout__.write(json.dumps({"code": code, "out": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def run_cli(*args: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args))],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def heavy_in(modules: object) -> list[str]:
    assert isinstance(modules, list)
    return sorted({m.split(".")[0] for m in modules} & set(HEAVY))


def test_help() -> None:
    result = run_cli("--help")
    assert result["code"] == 0
    out = str(result["out"])
    for command in ("train", "summary", "config"):
        assert command in out
    assert heavy_in(result["modules"]) == []


def test_config_validate() -> None:
    result = run_cli("config", "validate", "configs/digits_quickstart.yaml")
    assert result["code"] == 0
    assert str(result["out"]).strip() == "configs/digits_quickstart.yaml: ok"
    assert heavy_in(result["modules"]) == []


def test_config_validate_failure_exit_code(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {source: synthetic, kind: linear}\nmodel: {layers: [{type: Dense, unitz: 3}]}\n")
    result = run_cli("config", "validate", str(bad))
    assert result["code"] == 2
    assert heavy_in(result["modules"]) == []


def test_config_schema() -> None:
    result = run_cli("config", "schema")
    assert result["code"] == 0
    schema = json.loads(str(result["out"]))
    assert {"data", "model", "compile"} <= set(schema["properties"])
    assert heavy_in(result["modules"]) == []


def test_summary() -> None:
    result = run_cli("summary", "configs/digits_quickstart.yaml")
    assert result["code"] == 0
    out = str(result["out"])
    # 64*64+64 and 64*10+10, worked out by hand from the config
    assert "4,160" in out and "650" in out and "Total params: 4,810" in out
    assert heavy_in(result["modules"]) == []


def test_functional_config_validates_and_summarizes_without_torch() -> None:
    result = run_cli("config", "validate", "configs/fashion_mnist_resnet.yaml")
    assert result["code"] == 0 and heavy_in(result["modules"]) == []
    result = run_cli("summary", "configs/wine_two_heads.yaml")
    assert result["code"] == 0 and "Connected to" in str(result["out"])
    assert heavy_in(result["modules"]) == []
    result = run_cli("config", "schema")
    model = json.loads(str(result["out"]))
    text = json.dumps(model)
    for key in ('"inputs"', '"outputs"', '"call"', '"loss_weights"', '"Concatenate"', '"Dot"', '"int32"'):
        assert key in text


def test_devices_help() -> None:
    """``trainctl devices`` imports torch only when it runs, not for its help."""
    result = run_cli("devices", "--help")
    assert result["code"] == 0
    assert "--bench" in str(result["out"])
    assert heavy_in(result["modules"]) == []


@pytest.mark.parametrize(
    "module", ["trainctl", "trainctl.config", "trainctl.config.schema", "trainctl.model.shapes", "trainctl.host"]
)
def test_light_modules_import_nothing_heavy(module: str) -> None:
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert heavy_in(json.loads(proc.stdout)) == []
