"""trainctl.paths: user-given names stay inside their folder and clear of trainctl's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainctl.errors import ConfigError
from trainctl.paths import check_run_name, inside


def test_inside_joins_a_plain_relative_name(tmp_path: Path) -> None:
    assert inside(tmp_path, "logs/./train.csv", key="k") == tmp_path.resolve() / "logs" / "train.csv"


@pytest.mark.parametrize(
    "name,fragment",
    [
        ("/etc/passwd", "absolute"),
        ("~/x", "absolute"),
        ("C:/x", "absolute"),
        ("a/../../x", "'..'"),
        ("a\\..\\..\\x", "'..'"),
        ("run.json", "collide"),
        ("Preprocess.JSON", "collide"),
        ("state/train_state.safetensors", "collide"),
        (".run.json.0123456789ab.tmp", "collide"),
        ("x" * 256, "255 bytes"),
        ("é" * 200, "255 bytes"),
        ("a\x00b", "NUL"),
        (".", "run folder itself"),
        ("", "empty"),
    ],
)
def test_inside_refuses(tmp_path: Path, name: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        inside(tmp_path, name, key="fit.callbacks[0].filename")
    assert fragment in info.value.render() and info.value.key == "fit.callbacks[0].filename"


def test_inside_refuses_a_symlink_that_leads_out(tmp_path: Path) -> None:
    run, outside = tmp_path / "run", tmp_path / "outside"
    run.mkdir()
    outside.mkdir()
    (run / "logs").symlink_to(outside)
    with pytest.raises(ConfigError, match="symlink"):
        inside(run, "logs/train.csv", key="filename")
    (run / "inner").mkdir()
    (run / "ok").symlink_to(run / "inner")
    assert inside(run, "ok/train.csv", key="filename") == run.resolve() / "ok" / "train.csv"


@pytest.mark.parametrize("name", ["../x", "/abs", ".hidden", "a/b", "a" * 201, "", "a b"])
def test_run_names_are_one_folder_component(name: str) -> None:
    with pytest.raises(ConfigError):
        check_run_name(name, key="--name")


def test_a_good_run_name_passes() -> None:
    assert check_run_name("mnist_cnn-v2.1") == "mnist_cnn-v2.1"
