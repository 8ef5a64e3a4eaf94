"""The loader is linear: aliases are walked once, and depth, expanded size and file size are capped
with an exit-2 error naming file and line, checked under a memory limit in a child process."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.bounded import run_cli
from trainctl.config import load_config, loader
from trainctl.errors import ConfigError


def laughs(levels: int) -> str:
    """The "billion laughs" YAML: level k is a list of 9 aliases of level k-1 (9**levels strings)."""
    text = 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for k in range(1, levels):
        text += f"a{k}: &a{k} [" + ",".join([f"*a{k - 1}"] * 9) + "]\n"
    return text


def test_nine_level_alias_bomb_is_refused_within_256_mb(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(laughs(9), encoding="utf-8")
    assert path.stat().st_size < 1000
    proc = run_cli("config", "validate", path, mem_mb=512)
    assert proc.returncode == 2, proc.stderr
    # 9**6 = 531,441 values fit under the cap; level 7 (a6, line 7) is the first past 2,000,000
    assert f"{path}:7" in proc.stderr
    assert "expands to more than 2,000,000 values" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_aliases_still_validate_and_keys_under_an_alias_share_the_anchors_line() -> None:
    inner = textwrap.dedent(
        """\
        name: t
        data: {source: synthetic, kind: linear}
        model:
          layers:
            - {type: Dense, units: 4, input_shape: [3]}
            - &dense {type: Dense, units: 4, activation: relu}
            - *dense
            - {type: Dense, units: 1, activation: sigmoyd}
            - *dense
        compile: {optimizer: adam, loss: mse}
        """
    )
    with pytest.raises(ConfigError) as exc:
        load_config(None, text=inner)
    (problem,) = exc.value.problems
    assert problem.key == "model.layers[3].activation"
    bad = inner.splitlines().index("    - {type: Dense, units: 1, activation: sigmoyd}") + 1
    assert problem.where == f"<config>:{bad}"
    loaded = load_config(None, text=inner.replace("sigmoyd", "sigmoid"))
    assert [layer.units for layer in loaded.config.model.layers] == [4, 4, 4, 1, 4]
    anchor = f"<config>:{inner.splitlines().index('    - &dense {type: Dense, units: 4, activation: relu}') + 1}"
    # the aliased mapping is walked once: its keys are recorded under its first use only, and
    # every later use (an alias is the same node) points at the anchor
    assert loaded.where("model.layers[1].units") == anchor
    assert loaded.where("model.layers[2].units") == anchor
    assert loaded.where("model.layers[4].activation") == anchor
    assert "model.layers[4].units" not in loaded.locations


def test_deep_nesting_is_refused_with_its_line() -> None:
    depth = loader.MAX_DEPTH + 5
    text = "name: t\nextra:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(depth)) + "  " * (depth + 1) + "1\n"
    with pytest.raises(ConfigError) as exc:
        load_config(None, text=text)
    (problem,) = exc.value.problems
    assert f"deeper than {loader.MAX_DEPTH} levels" in problem.message
    line = int(problem.where.rsplit(":", 1)[1])
    # the root mapping is level 1 (line 1); the mapping holding k{i} is level 2+i and starts on
    # line 3+i, so level MAX_DEPTH+1 (the first too deep) starts on line MAX_DEPTH+2
    assert line == loader.MAX_DEPTH + 2


def test_flow_nesting_past_libyaml_limit_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(None, text="name: " + "[" * 5000 + "]" * 5000)
    assert exc.value.exit_code == 2


def test_self_referencing_alias_is_refused() -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(None, text="name: t\nloop: &x [1, *x]\n")
    assert "refers to a node that contains it" in exc.value.problems[0].message
    assert exc.value.problems[0].where == "<config>:2"


def test_alias_bomb_in_an_override_is_refused() -> None:
    bomb = "[" + ",".join(f"&a{k} [" + ",".join([f"*a{k - 1}" if k else "1"] * 9) + "]" for k in range(9)) + "]"
    with pytest.raises(ConfigError) as exc:
        load_config(None, [f"fit.epochs={bomb}"], text="name: t\n")
    assert "expands to more than" in exc.value.render()


def test_oversized_file_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_CONFIG_BYTES", 100)
    path = tmp_path / "big.yaml"
    path.write_text("name: t\n" + "# padding\n" * 20, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert exc.value.problems[0].where == str(path)
    assert "expected at most 100" in exc.value.problems[0].message
