"""The loader: YAML -> frozen RunConfig, every mistake reported at once with file:line and key.

Expected line numbers are found by searching the test's own YAML text, never copied from output.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from trainctl.config import load_config
from trainctl.errors import ConfigError, Problem

GOOD = textwrap.dedent(
    """\
    name: t
    seed: 1
    data: {source: synthetic, kind: linear}
    model:
      layers:
        - {type: Dense, units: 4, activation: relu, input_shape: [3]}
        - {type: Dense, units: 1}
    compile:
      optimizer: adam
      loss: mse
    """
)


def line_of(text: str, needle: str) -> int:
    """1-based number of the only line containing ``needle``."""
    hits = [i for i, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(hits) == 1, f"{needle!r} must appear on exactly one line"
    return hits[0]


def write(tmp_path: Path, text: str, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(exc: pytest.ExceptionInfo[ConfigError]) -> dict[str | None, Problem]:
    return {p.key: p for p in exc.value.problems}


# ---------------------------------------------------------------------------------------------
# many mistakes -> one error


MANY = textwrap.dedent(
    """\
    name: t
    data:
      source: synthetic
      kind: linear
    model:
      layers:
        - {type: Dense, unitz: 4, input_shape: [3]}
        - {type: Dense, units: many, activation: relu}
        - {type: Dnse, units: 2}
        - {type: Dense, units: 1, activation: sigmoyd}
    compile:
      optimizer: adam
      loss: mse
    fit:
      epochz: 3
    """
)


def test_every_mistake_is_reported_once_with_line_key_and_hint(tmp_path: Path) -> None:
    path = write(tmp_path, MANY)
    with pytest.raises(ConfigError) as exc:
        load_config(path, ["fit.batch_size=abc"])
    got = problems_of(exc)
    at = lambda needle: f"{path}:{line_of(MANY, needle)}"  # noqa: E731
    expected = {
        "model.layers[0].unitz": (at("unitz"), "did you mean 'units'?"),
        "model.layers[1].units": (at("many"), None),
        "model.layers[2].type": (at("Dnse"), "did you mean 'Dense'?"),
        "model.layers[3].activation": (at("sigmoyd"), "did you mean 'sigmoid'?"),
        "fit.epochz": (at("epochz"), "did you mean 'epochs'?"),
        "fit.batch_size": ("override 'fit.batch_size=abc'", None),
    }
    assert set(got) == set(expected)
    for key, (where, hint) in expected.items():
        assert got[key].where == where, key
        assert got[key].hint == hint, key
    assert "'many'" in got["model.layers[1].units"].message
    assert "'abc'" in got["fit.batch_size"].message
    # file order, overrides last; the misspelt `unitz` does not also count as "missing units"
    assert [p.key for p in exc.value.problems] == list(expected)
    assert exc.value.exit_code == 2
    assert isinstance(exc.value, ValueError)
    rendered = exc.value.render().splitlines()
    assert len(rendered) == len(expected)
    assert rendered[0].startswith(f"{at('unitz')}: model.layers[0].unitz: unknown key 'unitz'")
    assert rendered[0].endswith("(did you mean 'units'?)")


def test_nested_key_lines_and_fallback_to_parent(tmp_path: Path) -> None:
    text = GOOD.replace("  optimizer: adam\n", "  optimizer:\n    type: adam\n    learning_rate: 0.01\n")
    path = write(tmp_path, text)
    loaded = load_config(path)
    assert loaded.where("compile.optimizer.learning_rate") == f"{path}:{line_of(text, 'learning_rate')}"
    # a key the file does not write (a default) points at its nearest written parent
    assert loaded.where("compile.optimizer.epsilon") == f"{path}:{line_of(text, 'optimizer:')}"
    assert loaded.where("model.layers[1].units") == f"{path}:{line_of(text, 'units: 1}')}"
    assert loaded.where("nothing.here") is None
    assert loaded.base_dir == tmp_path


def test_problems_inside_unions_and_aliases_name_the_users_keys() -> None:
    # `mae`, `sgd` and `SKLearn` resolve to other spellings; schedules sit in a float|spec union.
    # Keys must be what the user wrote, not pydantic's union labels.
    text = textwrap.dedent(
        """\
        data: {source: SKLearn, name: digitz}
        model:
          layers: [{type: Dense, units: 1, input_shape: [2]}]
        compile:
          optimizer:
            type: sgd
            learning_rate: {type: exponential_decay, initial_learning_rate: 0.1, decay_steps: 0, decay_rate: 0.5}
          loss: {type: mse, delta: 1.0}
          metrics: [acc, {type: mae, nme: x}]
        """
    )
    with pytest.raises(ConfigError) as exc:
        load_config(None, text=text)
    got = problems_of(exc)
    assert set(got) == {
        "data.name",
        "compile.optimizer.learning_rate.decay_steps",
        "compile.loss.delta",
        "compile.metrics[1].nme",
    }
    assert got["data.name"].hint == "did you mean 'digits'?"
    assert got["compile.metrics[1].nme"].hint == "did you mean 'name'?"
    assert got["compile.optimizer.learning_rate.decay_steps"].where == f"<config>:{line_of(text, 'decay_steps')}"


def test_component_without_type_key_message_is_formatted() -> None:
    text = GOOD.replace("optimizer: adam", "optimizer: {learning_rate: 0.1}")
    with pytest.raises(ConfigError) as exc:
        load_config(None, text=text)
    (problem,) = exc.value.problems
    assert problem.key == "compile.optimizer"
    assert "'type'" in problem.message
    assert "{type: " in problem.message
    assert "{{" not in problem.message and "!r" not in problem.message


# ---------------------------------------------------------------------------------------------
# YAML-level problems


def test_duplicate_keys_are_all_reported(tmp_path: Path) -> None:
    text = GOOD + "fit:\n  epochs: 2\n  epochs: 3\n" + "seed: 2\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    got = problems_of(exc)
    assert set(got) == {"fit.epochs", "seed"}
    assert got["fit.epochs"].where == f"{path}:{line_of(text, 'epochs: 3')}"
    assert f"line {line_of(text, 'epochs: 2')}" in got["fit.epochs"].message
    assert got["seed"].where == f"{path}:{line_of(text, 'seed: 2')}"


def test_duplicate_key_inside_a_flow_mapping() -> None:
    text = GOOD.replace("units: 1}", "units: 1, units: 2}")
    with pytest.raises(ConfigError) as exc:
        load_config(None, text=text)
    (problem,) = exc.value.problems
    assert problem.key == "model.layers[1].units"
    assert problem.where == f"<config>:{line_of(text, 'units: 2')}"


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    (problem,) = exc.value.problems
    assert "empty" in problem.message
    assert problem.where is not None and problem.where.startswith(str(path))


@pytest.mark.parametrize(("text", "kind"), [("- 1\n- 2\n", "list"), ("just words\n", "str"), ("42\n", "int")])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, kind: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    (problem,) = exc.value.problems
    assert "mapping" in problem.message and kind in problem.message
    assert problem.where == f"{path}:1"


@pytest.mark.parametrize(
    ("text", "bad_line"),
    [
        (GOOD.replace("  loss: mse", "\tloss: mse"), "\tloss"),  # a tab cannot indent
        (GOOD.replace("seed: 1", "seed: 1\n  oops: 2"), "oops"),  # indented key under a scalar
    ],
)
def test_invalid_yaml_points_at_the_line(tmp_path: Path, text: str, bad_line: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    (problem,) = exc.value.problems
    assert problem.message.startswith("invalid YAML")
    assert problem.where == f"{path}:{line_of(text, bad_line)}"


def test_python_tags_are_refused_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = GOOD.replace("name: t", f'name: !!python/object/apply:os.system ["touch {marker}"]')
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text))
    assert not marker.exists()
    assert exc.value.problems[0].where == f"{tmp_path / 'run.yaml'}:1"
    text = GOOD.replace("name: t", "name: !!python/object:collections.OrderedDict {}")
    with pytest.raises(ConfigError):
        load_config(None, text=text)


@pytest.mark.parametrize(
    "line",
    [
        "extra: !!binary not-base64!",  # the safe constructor raises a YAMLError
        "extra: 2001-13-45",  # ...or a plain ValueError for an impossible date
        "? [a, b]\n: 1",  # a list as a mapping key
    ],
)
def test_unconstructible_yaml_values_are_config_errors(line: str) -> None:
    with pytest.raises(ConfigError):
        load_config(None, text=GOOD + line + "\n")


def test_missing_file_suggests_a_neighbour(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "config.yaml")
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path / "confg.yaml")
    assert exc.value.problems[0].hint == f"did you mean {str(tmp_path / 'config.yaml')!r}?"
    with pytest.raises(ConfigError):
        load_config(tmp_path)  # a folder


# ---------------------------------------------------------------------------------------------
# overrides


def test_overrides_set_values_and_are_located() -> None:
    loaded = load_config(None, ["fit.epochs=3", "compile.optimizer.learning_rate=0.01"], text=GOOD)
    cfg = loaded.config
    assert cfg.fit.epochs == 3
    # the bare string `adam` became {type: Adam, learning_rate: 0.01}; other Keras defaults stay
    assert cfg.compile.optimizer.type == "Adam"
    assert cfg.compile.optimizer.learning_rate == 0.01
    assert cfg.compile.optimizer.epsilon == 1e-7
    assert loaded.where("fit.epochs") == "override 'fit.epochs=3'"
    assert loaded.where("compile.optimizer.learning_rate") == "override 'compile.optimizer.learning_rate=0.01'"
    assert loaded.overrides == ("fit.epochs=3", "compile.optimizer.learning_rate=0.01")


@pytest.mark.parametrize("key", ["model.layers[0].units", "model.layers.0.units"])
def test_list_index_overrides(key: str) -> None:
    loaded = load_config(None, [f"{key}=8"], text=GOOD)
    assert loaded.config.model.layers[0].units == 8
    assert loaded.config.model.layers[1].units == 1


def test_override_values_are_yaml() -> None:
    cfg = load_config(None, ["fit.shuffle=false", "compile.metrics=[acc, mae]", "seed=~"], text=GOOD).config
    assert cfg.fit.shuffle is False
    assert [m.name for m in cfg.compile.metrics] == ["acc", "mae"]
    assert cfg.seed is None


def test_unknown_override_key_is_reported_as_the_override() -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(None, ["fit.epochz=3"], text=GOOD)
    (problem,) = exc.value.problems
    assert problem.key == "fit.epochz"
    assert problem.where == "override 'fit.epochz=3'"
    assert problem.hint == "did you mean 'epochs'?"


@pytest.mark.parametrize("override", ["fit.epochs", "model.layers[5].units=3", "name.x=1", "fit..epochs=2"])
def test_malformed_overrides(override: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(None, [override], text=GOOD)
    assert exc.value.exit_code == 2


def test_overrides_do_not_touch_the_source_text() -> None:
    loaded = load_config(None, ["fit.epochs=3"], text=GOOD)
    assert loaded.text == GOOD
    assert loaded.raw["fit"] == {"epochs": 3}


# ---------------------------------------------------------------------------------------------
# loose names


def test_loose_names_resolve_to_keras_spellings() -> None:
    text = textwrap.dedent(
        """\
        data: {source: synthetic, kind: linear}
        model:
          layers:
            - {type: dense, units: 4, input_shape: [3]}
            - {type: DENSE, units: 1}
        compile:
          optimizer: RMSProp
          loss: SparseCategoricalCrossentropy
          metrics: [acc, mae, {type: Precision}, {type: categorical-accuracy, name: ca}]
        fit:
          callbacks: [early_stopping, {type: reduce-lr-on-plateau}, TerminateOnNan]
        """
    )
    cfg = load_config(None, text=text).config
    assert [layer.type for layer in cfg.model.layers] == ["Dense", "Dense"]
    assert cfg.compile.optimizer.type == "RMSprop"
    assert cfg.compile.optimizer.rho == 0.9
    assert cfg.compile.loss.type == "sparse_categorical_crossentropy"
    assert [(m.type, m.name) for m in cfg.compile.metrics] == [
        ("accuracy", "acc"),  # a bare string keeps its spelling as the history key, as in Keras
        ("mean_absolute_error", "mae"),
        ("precision", None),
        ("categorical_accuracy", "ca"),
    ]
    assert [c.type for c in cfg.fit.callbacks] == ["EarlyStopping", "ReduceLROnPlateau", "TerminateOnNaN"]


def test_loaded_config_is_frozen() -> None:
    cfg = load_config(None, text=GOOD).config
    with pytest.raises(ValueError):
        cfg.fit.epochs = 5  # type: ignore[misc]
    with pytest.raises(ValueError):
        cfg.model.layers[0].units = 5  # type: ignore[misc]
