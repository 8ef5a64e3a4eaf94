"""The loader builds plain data from the node tree in its own single pass (bounds, values and key
lines together); PyYAML's ``yaml.safe_load`` is the independent expectation it must equal, on the
shipped configs and on generated YAML that uses every scalar spelling, aliases and the rare tags
(timestamps, sets, merge keys, binary) that the pass hands back to PyYAML."""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.clihelp import CONFIGS
from trainctl.config.loader import parse_yaml, safe_load
from trainctl.errors import ConfigError


def same(value: Any) -> Any:
    """``value`` with NaN made comparable (NaN != NaN) and types kept (1 == 1.0 == True)."""
    if isinstance(value, float) and math.isnan(value):
        return ("nan",)
    if isinstance(value, dict):
        return {same(k): same(v) for k, v in value.items()}
    if isinstance(value, list):
        return [same(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(map(repr, value))
    return (type(value).__name__, value)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load_as_safe_load_does(path: Any) -> None:
    text = path.read_text(encoding="utf-8")
    data, locs = parse_yaml(text, path.name)
    assert same(data) == same(yaml.safe_load(text))
    assert locs["compile"].startswith(f"{path.name}:")


# spellings whose type the YAML 1.1 resolver decides: ints in every base, sexagesimal, floats,
# infinities, bools and nulls in every case PyYAML accepts, timestamps, and strings that only
# look like numbers
SCALARS = [
    "0", "-0", "+12", "012", "0o17", "0x1F", "0b101", "1_000", "1:30", "190:20:30",
    "1.5", "-1.5e3", "6.8523015e+5", ".5", "1.", "1_0.5", "1:30.5", ".inf", "-.Inf", "+.INF", ".nan", ".NaN",
    "true", "True", "TRUE", "false", "yes", "No", "on", "OFF", "y", "n",
    "~", "null", "Null", "NULL", "", "2001-12-14", "2001-12-14t21:59:43.10-05:00",
    "Dense", "relu", "0x", "1e5", "12abc", "'8'", '"true"', "!!str 8", "!!float 3", "!!int '7'",
    "'multi word'", "\"tab\\tquoted\"", "héllo", "!!binary aGVsbG8=",
]  # fmt: skip


def scalars() -> st.SearchStrategy[str]:
    return st.sampled_from(SCALARS)


def keys() -> st.SearchStrategy[str]:
    return st.sampled_from(["a", "units", "type", "1", "true", "~", "1.5", "k"])


@st.composite
def documents(draw: st.DrawFn, depth: int = 0) -> str:
    """A flow-style YAML value: nested mappings and sequences of the scalars above, with anchors,
    aliases to earlier anchors, merge keys and ``!!set``."""
    anchors: list[str] = []

    def value(level: int) -> str:
        kind = draw(st.sampled_from(["scalar", "scalar", "seq", "map", "alias", "set"] if level < 4 else ["scalar"]))
        if kind == "alias" and anchors:
            return f"*{draw(st.sampled_from(anchors))}"
        if kind == "seq":
            body = "[" + ", ".join(value(level + 1) for _ in range(draw(st.integers(0, 4)))) + "]"
        elif kind == "map" or kind == "alias":
            pairs = {draw(keys()): value(level + 1) for _ in range(draw(st.integers(0, 4)))}
            if anchors and draw(st.booleans()):
                pairs["<<"] = f"*{draw(st.sampled_from(anchors))}"
            body = "{" + ", ".join(f"{k}: {v}" for k, v in pairs.items()) + "}"
        elif kind == "set":
            body = "!!set {" + ", ".join(f"{draw(keys())}" for _ in range(draw(st.integers(0, 3)))) + "}"
        else:
            return draw(scalars())
        if draw(st.booleans()):
            name = f"a{len(anchors)}"
            body = f"&{name} {body}"
            anchors.append(name)
        return body

    return "top: " + value(0) + "\nnext: " + value(0) + "\n"


@settings(max_examples=400, deadline=None, derandomize=True)
@given(documents())
def test_generated_yaml_loads_as_safe_load_does(text: str) -> None:
    try:
        expected = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        # a merge key of a non-mapping, an unhashable key...: refused by both
        with pytest.raises(ConfigError):
            safe_load(text, "<t>")
        assert exc is not None
        return
    assert same(safe_load(text, "<t>")) == same(expected)


def test_an_alias_is_one_object_as_in_safe_load() -> None:
    data = safe_load("a: &x {k: [1, 2]}\nb: *x\n", "<t>")
    assert data["a"] is data["b"]
    assert data == {"a": {"k": [1, 2]}, "b": {"k": [1, 2]}}


def test_a_bad_explicit_scalar_is_refused_with_its_line() -> None:
    with pytest.raises(ConfigError) as exc:
        safe_load("a: 1\nb: !!int abc\n", "<t>")
    assert "invalid YAML value" in exc.value.problems[0].message
    assert exc.value.problems[0].where == "<t>:2"


def test_a_python_tag_is_refused_not_built() -> None:
    with pytest.raises(ConfigError) as exc:
        safe_load("a: !!python/object/apply:os.system ['true']\n", "<t>")
    assert "invalid YAML value" in exc.value.render()
