"""The ``tune:`` section: validated with the config (torch-free), every parameter probed through the
override machinery, so a bad section exits 2 at ``config validate`` naming the dotted key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clihelp import CONFIGS, Cli, write
from trainctl.config import load_config
from trainctl.errors import ConfigError

BASE = (CONFIGS / "digits_quickstart.yaml").read_text()


def _with_params(tmp_path: Path, params: str, extra: str = "") -> Path:
    head, _, _ = BASE.partition("\ntune:")
    text = head + f"\ntune:\n  objective: val_loss\n{extra}  parameters:\n{params}"
    return write(tmp_path, text)


def test_the_quickstart_section_is_valid_and_minimizes_val_loss() -> None:
    spec = load_config(CONFIGS / "digits_quickstart.yaml").config.tune
    assert spec is not None and spec.resolved_direction == "minimize"
    assert set(spec.parameters) == {
        "compile.optimizer.learning_rate",
        "model.layers[0].units",
        "fit.batch_size",
        "model.layers[1].rate",
    }


@pytest.mark.parametrize(
    ("objective", "direction"),
    [("val_loss", "minimize"), ("loss", "minimize"), ("val_mean_absolute_error", "minimize"),
     ("val_accuracy", "maximize"), ("auc", "maximize")],
)  # fmt: skip
def test_direction_is_inferred_from_the_objective(tmp_path: Path, objective: str, direction: str) -> None:
    cfg = _with_params(tmp_path, "    fit.batch_size: {choice: [16, 32]}\n").read_text()
    cfg = cfg.replace("objective: val_loss", f"objective: {objective}")
    assert load_config(None, text=cfg).config.tune.resolved_direction == direction
    explicit = cfg.replace(f"objective: {objective}", f"objective: {objective}\n  direction: maximize")
    assert load_config(None, text=explicit).config.tune.resolved_direction == "maximize"


@pytest.mark.parametrize(
    ("params", "key", "says"),
    [
        ("    model.layers[0].unitz: {choice: [32, 64]}\n", "tune.parameters.model.layers[0].unitz",
         "unknown key 'unitz'"),
        ("    model.layers[0].activation: {uniform: [0.0, 1.0]}\n", "tune.parameters.model.layers[0].activation",
         "activation"),
        ("    fit.batch_size: {choice: []}\n", "tune.parameters.fit.batch_size.choice", "at least 1"),
        ("    fit.epochs: {uniform: [1, 5]}\n", "tune.parameters.fit.epochs", "valid integer"),
        ("    model.layers[1].rate: {uniform: [0.0, 1.5]}\n", "tune.parameters.model.layers[1].rate", "less than 1"),
        ("    model.layers[7].units: {int: [8, 16]}\n", "tune.parameters.model.layers[7].units", "out of range"),
        ("    compile.optimizer.learning_rate: {loguniform: [0.0, 0.1]}\n",
         "tune.parameters.compile.optimizer.learning_rate", "above 0"),
        ("    model.layers[0].units: {int: [64, 8]}\n", "tune.parameters.model.layers[0].units", "low < high"),
        ("    model.layers[0].units: {int: [8, 64], choice: [8]}\n", "tune.parameters.model.layers[0].units",
         "exactly one"),
    ],
)  # fmt: skip
def test_a_bad_section_exits_2_at_config_validate_naming_the_key(
    tmp_path: Path, cli: Cli, params: str, key: str, says: str
) -> None:
    cfg = _with_params(tmp_path, params)
    res = cli("config", "validate", cfg)
    assert res.exit_code == 2, res.output
    assert f": {key}: " in res.stderr and says in res.stderr, res.stderr
    assert f"{cfg}:" in res.stderr  # file:line of the parameter
    assert "Traceback" not in res.stderr


def test_unknown_sampler_and_grid_with_a_range_exit_2(tmp_path: Path, cli: Cli) -> None:
    cfg = _with_params(tmp_path, "    fit.batch_size: {choice: [16, 32]}\n", extra="  sampler: bayes\n")
    res = cli("config", "validate", cfg)
    assert res.exit_code == 2 and "tune.sampler" in res.stderr and "'tpe'" in res.stderr
    cfg = _with_params(tmp_path, "    model.layers[1].rate: {uniform: [0.0, 0.5]}\n", extra="  sampler: grid\n")
    res = cli("config", "validate", cfg)
    assert res.exit_code == 2 and "grid needs choice or int" in res.stderr and "model.layers[1].rate" in res.stderr


def test_a_value_only_the_middle_of_a_range_breaks_is_caught(tmp_path: Path) -> None:
    """units takes integers: a uniform range with whole ends still samples 40.7, so it is refused."""
    cfg = _with_params(tmp_path, "    model.layers[0].units: {uniform: [16.0, 64.0]}\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert err.value.problems[0].key == "tune.parameters.model.layers[0].units"


def test_train_ignores_the_section_and_tune_needs_one(tmp_path: Path, cli: Cli) -> None:
    head, _, _ = BASE.partition("\ntune:")
    res = cli("tune", write(tmp_path, head), "--runs-dir", tmp_path / "runs")
    assert res.exit_code == 2 and "expected a tune: section" in res.stderr


def test_a_storage_url_optuna_cannot_open_exits_2(tmp_path: Path, cli: Cli) -> None:
    res = cli("tune", CONFIGS / "digits_quickstart.yaml", "--storage", "nosuchdb://x/y", "--runs-dir", tmp_path)
    assert res.exit_code == 2 and "--storage" in res.stderr and "nosuchdb://x/y" in res.stderr
