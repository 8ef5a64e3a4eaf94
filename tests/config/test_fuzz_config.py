"""Fuzzing the config loader with hypothesis: the shipped configs mutated (wrong types, deep
nesting, aliases, unicode, huge numbers) and random overrides never end in anything but a
ConfigError (exit 2) or a valid config; a sample of the valid ones trains with ``--smoke``.

CI runs the fixed-seed slices below; ``TRAINCTL_FUZZ_FULL=1 pytest -m slow`` runs 10,000 configs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.clihelp import CONFIGS, Cli
from tests.fuzzhelp import FULL, VALUES, fast, full, mutated, paths
from trainctl.config import load_config
from trainctl.errors import TrainctlError

SHIPPED = {p.name: yaml.safe_load(p.read_text()) for p in sorted(CONFIGS.glob("*.yaml"))}
SMALL = ("xor.yaml", "linear_regression.yaml", "nonlinear_regression.yaml")


def dotted(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


def with_aliases(text: str, draw: st.DrawFn) -> str:
    """Textual YAML mutations that a dict cannot express: an anchor on the model, reused; a
    billion-laughs block; a self reference; a tab; a stray document marker."""
    kind = draw(st.sampled_from(["none", "none", "alias", "laughs", "self", "doc", "tab"]))
    if kind == "alias":
        return text.replace("model:", "model: &m", 1) + "extra: *m\n"
    if kind == "laughs":
        levels = draw(st.integers(2, 9))
        bomb = 'l0: &l0 ["x","x","x","x","x","x","x","x","x"]\n'
        for k in range(1, levels):
            bomb += f"l{k}: &l{k} [" + ",".join([f"*l{k - 1}"] * 9) + "]\n"
        return bomb + text
    if kind == "self":
        return text + "loop: &loop [1, *loop]\n"
    if kind == "doc":
        return text + "---\nname: again\n"
    if kind == "tab":
        return text.replace("  ", "\t", 1)
    return text


@st.composite
def configs(draw: st.DrawFn, names: tuple[str, ...] = tuple(SHIPPED)) -> tuple[str, str]:
    name = draw(st.sampled_from(names))
    data = draw(mutated(SHIPPED[name]))
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=10**6)
    return name, with_aliases(text, draw)


@st.composite
def overrides(draw: st.DrawFn) -> tuple[str, list[str]]:
    name = draw(st.sampled_from(tuple(SHIPPED)))
    where = paths(SHIPPED[name])
    out = []
    for _ in range(draw(st.integers(1, 3))):
        key = dotted(draw(st.sampled_from(where))) if draw(st.booleans()) else draw(st.text(max_size=20))
        value = yaml.safe_dump(draw(VALUES), default_flow_style=True, allow_unicode=True).strip()
        value = value.removesuffix("\n...").removesuffix("...").strip()
        out.append(f"{key}={value}")
    return name, out


def check(text: str, over: list[str] = ()) -> Any:
    """Load in-process; only a TrainctlError with exit 2 and a non-empty message may escape."""
    try:
        return load_config(None, list(over), text=text)
    except TrainctlError as exc:
        assert exc.exit_code == 2, exc.render()
        assert exc.render().strip()
        return None


@fast(300)
@given(configs())
def test_fuzz_configs_ci_slice(case: tuple[str, str]) -> None:
    check(case[1])


@fast(150)
@given(overrides())
def test_fuzz_overrides_ci_slice(case: tuple[str, list[str]]) -> None:
    name, over = case
    check((CONFIGS / name).read_text(), over)


@pytest.mark.slow
@pytest.mark.skipif(not FULL, reason="the full fuzz run: TRAINCTL_FUZZ_FULL=1")
@full(10_000)
@given(configs())
def test_fuzz_configs_full(case: tuple[str, str]) -> None:
    check(case[1])


@pytest.mark.slow
@pytest.mark.skipif(not FULL, reason="the full fuzz run: TRAINCTL_FUZZ_FULL=1")
@full(3_000)
@given(overrides())
def test_fuzz_overrides_full(case: tuple[str, list[str]]) -> None:
    name, over = case
    check((CONFIGS / name).read_text(), over)


def smoke(tmp_path: Path, text: str) -> None:
    loaded = check(text)
    if loaded is None:
        return
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(text, encoding="utf-8")
    res = Cli(tmp_path / "runs")("train", cfg, "--smoke", "threads=1")
    assert res.exit_code != 1, res.output + res.stderr
    assert "Traceback" not in res.stderr


@fast(12)
@given(configs(SMALL))
def test_fuzz_train_smoke_ci_slice(tmp_path_factory: pytest.TempPathFactory, case: tuple[str, str]) -> None:
    smoke(tmp_path_factory.mktemp("smoke"), case[1])


@pytest.mark.slow
@pytest.mark.skipif(not FULL, reason="the full fuzz run: TRAINCTL_FUZZ_FULL=1")
@full(150)
@given(configs(SMALL))
def test_fuzz_train_smoke_full(tmp_path_factory: pytest.TempPathFactory, case: tuple[str, str]) -> None:
    smoke(tmp_path_factory.mktemp("smoke"), case[1])
