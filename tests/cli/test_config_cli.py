"""``trainctl config validate|show|schema``, and exit code 1 for a real bug."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.clihelp import CONFIGS, Cli


def test_validate_all_shipped_configs(cli: Cli) -> None:
    res = cli("config", "validate", *sorted(CONFIGS.glob("*.yaml")))
    assert res.exit_code == 0
    assert res.stdout.count(": ok") == len(list(CONFIGS.glob("*.yaml")))


def test_show_fills_keras_defaults(cli: Cli) -> None:
    res = cli("config", "show", CONFIGS / "xor.yaml", "fit.epochs=3")
    assert res.exit_code == 0
    shown = yaml.safe_load(res.stdout)
    assert shown["fit"]["epochs"] == 3
    assert shown["compile"]["optimizer"]["epsilon"] == 1e-7  # Keras's Adam epsilon, not torch's 1e-8
    assert shown["model"]["layers"][0]["kernel_initializer"]["type"] == "GlorotUniform"


def test_schema_is_json_schema(cli: Cli) -> None:
    res = cli("config", "schema")
    schema = json.loads(res.stdout)
    assert set(schema["required"]) == {"data", "model", "compile"}
    assert "fit" in schema["properties"]


def test_internal_bug_exits_1_with_traceback(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    import trainctl.api

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(trainctl.api, "train", boom)
    res = cli.runner.invoke(__import__("trainctl.cli.main", fromlist=["app"]).app, ["train", str(CONFIGS / "xor.yaml")])
    assert res.exit_code == 1
    assert isinstance(res.exception, RuntimeError)
