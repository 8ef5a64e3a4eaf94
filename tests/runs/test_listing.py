"""Reading run folders for ``trainctl runs``: hand-written folders with hand-picked numbers, so
each expected best value, duration and difference is known without running anything."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from trainctl.errors import ArtifactError
from trainctl.runs.listing import (
    MISSING,
    best_val,
    config_diff,
    config_file,
    final_metrics,
    find_run,
    flatten,
    highlights,
    metric_diff,
    read_record,
    scan_runs,
)


def make_run(
    runs: Path,
    folder: str,
    run: dict[str, Any] | str | None = None,
    history: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    config: str | None = None,
) -> Path:
    path = runs / folder
    path.mkdir(parents=True)
    if run is not None:
        text = run if isinstance(run, str) else json.dumps({"format_version": 1} | run)
        (path / "run.json").write_text(text)
    if history is not None:
        (path / "history.json").write_text(json.dumps(history))
    if metrics is not None:
        (path / "metrics.json").write_text(json.dumps(metrics))
    if config is not None:
        (path / "config.resolved.yaml").write_text(config)
    return path


# ------------------------------------------------------------------------------- best value
def test_accuracy_is_maximised_and_the_first_epoch_wins_a_tie() -> None:
    history = {"loss": [1, 1, 1, 1], "accuracy": [0, 0, 0, 0], "val_loss": [0.9, 0.5, 0.7, 0.6]}
    history["val_accuracy"] = [0.5, 0.8, 0.8, 0.7]
    best = best_val(history)
    assert best is not None
    assert (best.key, best.value, best.epoch, best.mode) == ("val_accuracy", 0.8, 2, "max")


def test_error_metrics_are_minimised() -> None:
    history = {"loss": [3, 2, 1], "mae": [3, 2, 1], "val_loss": [5, 4, 6], "val_mae": [2.5, 1.5, 1.75]}
    best = best_val(history)
    assert best is not None and (best.key, best.value, best.epoch, best.mode) == ("val_mae", 1.5, 2, "min")


def test_null_and_inf_epochs_are_skipped_or_ranked_as_json_wrote_them() -> None:
    # history.json writes NaN as null and inf as "inf": a diverged epoch must not become the best
    history = {"loss": [1, 2, 3], "val_loss": [None, "inf", 0.75]}
    best = best_val(history)
    assert best is not None and (best.key, best.value, best.epoch) == ("val_loss", 0.75, 3)


def test_unknown_direction_falls_back_to_val_loss_and_no_validation_gives_none() -> None:
    history = {"loss": [2.0, 1.0], "my_score": [1, 2], "val_loss": [1.5, 1.25], "val_my_score": [3, 1]}
    best = best_val(history)
    assert best is not None and (best.key, best.value, best.epoch, best.mode) == ("val_loss", 1.25, 2, "min")
    assert best_val({"loss": [1.0], "accuracy": [0.5], "lr": [0.1]}) is None
    assert best_val({}) is None


def test_directions_agree_with_the_callbacks_auto_mode() -> None:
    """The listing keeps its own copy of the table (the callbacks' module imports numpy)."""
    import trainctl.config.compile  # noqa: F401
    from trainctl.config.base import METRICS
    from trainctl.runs.listing import direction
    from trainctl.training.callbacks.monitor import metric_direction

    spellings = [*METRICS._lookup, "loss", "my_score"]
    for name in spellings:
        expected = {"up": "max", "down": "min", None: None}[metric_direction(f"val_{name}")]
        assert direction(f"val_{name}") == expected, name


def test_a_renamed_metric_takes_its_direction_from_the_config(tmp_path: Path) -> None:
    config = "compile:\n  metrics:\n  - {type: mean_absolute_error, name: err}\n"
    history = {"loss": [3, 2, 1], "err": [1, 1, 1], "val_loss": [1.0, 2.0, 3.0], "val_err": [0.5, 0.25, 0.75]}
    folder = make_run(tmp_path, "m-20260101-000000", run={"name": "m"}, history=history, config=config)
    best = read_record(folder).best_val
    assert best is not None and (best.key, best.value, best.epoch, best.mode) == ("val_err", 0.25, 2, "min")


# ------------------------------------------------------------------------------- records
def test_record_reads_status_duration_epochs_best_and_test(tmp_path: Path) -> None:
    folder = make_run(
        tmp_path,
        "m-20260102-030405",
        run={
            "name": "m",
            "status": "stopped_early",
            "started": "2026-01-02T03:04:05+00:00",
            "ended": "2026-01-02T04:06:35+00:00",
            "epochs": 3,
        },
        history={
            "loss": [1, 1, 1],
            "accuracy": [0.1, 0.2, 0.3],
            "val_loss": [1, 1, 1],
            "val_accuracy": [0.4, 0.9, 0.6],
        },
        metrics={"train": {"loss": 1, "accuracy": 0.3}, "test": {"loss": 0.8, "accuracy": 0.85}},
    )
    r = read_record(folder)
    assert (r.name, r.status, r.epochs) == ("m", "stopped_early", 3)
    assert r.duration_s == 3600 + 2 * 60 + 30
    assert r.best_val is not None and (r.best_val.value, r.best_val.epoch) == (0.9, 2)
    assert r.test == ("accuracy", 0.85)
    out = r.to_json()
    assert out["best_val"] == {"key": "val_accuracy", "value": 0.9, "epoch": 2, "mode": "max"}
    assert out["test"] == {"key": "accuracy", "value": 0.85} and out["duration_s"] == 3750


def test_a_running_run_has_no_duration_and_counts_its_epochs_from_history(tmp_path: Path) -> None:
    folder = make_run(
        tmp_path,
        "m-20260102-030405",
        run={"name": "m", "status": "running", "started": "2026-01-02T03:04:05+00:00"},
        history={"loss": [2.0, 1.0], "val_loss": [3.0, 2.5]},
    )
    r = read_record(folder)
    assert (r.status, r.duration_s, r.epochs, r.test) == ("running", None, 2, None)
    # no metrics.json yet: the last epoch stands in for the final metrics
    assert final_metrics(folder) == {"train": {"loss": 1.0}, "val": {"loss": 2.5}}


@pytest.mark.parametrize(
    ("text", "reason"),
    [("{not json", "not valid JSON"), ("[1, 2]", "not a JSON object"), ('{"format_version": 7}', "format_version 7")],
)
def test_a_corrupt_run_json_is_a_corrupt_record_not_a_crash(tmp_path: Path, text: str, reason: str) -> None:
    r = read_record(make_run(tmp_path, "broken-20260102-030405-3", run=text))
    assert (r.name, r.status, r.best_val) == ("broken", "corrupt", None)
    assert len(r.problems) == 1 and reason in r.problems[0]


def test_a_broken_history_is_reported_but_the_record_stays(tmp_path: Path) -> None:
    folder = make_run(tmp_path, "m-20260102-030405", run={"name": "m", "status": "completed"})
    (folder / "history.json").write_text("{truncated")
    r = read_record(folder)
    assert r.status == "completed" and r.best_val is None
    assert any("history.json" in p for p in r.problems)


def test_scan_lists_runs_newest_first_and_skips_what_is_not_a_run(tmp_path: Path) -> None:
    def started(t: str) -> dict[str, Any]:
        return {"name": "m", "status": "completed", "started": t, "ended": t}

    make_run(tmp_path, "m-20260101-000000", run=started("2026-01-01T00:00:00+00:00"))
    make_run(tmp_path, "m-20260301-000000", run=started("2026-03-01T00:00:00+00:00"))
    # two runs started within the same second: the -2 folder was created second
    make_run(tmp_path, "m-20260201-000000", run=started("2026-02-01T00:00:00+00:00"))
    make_run(tmp_path, "m-20260201-000000-2", run=started("2026-02-01T00:00:00+00:00"))
    make_run(tmp_path, "notes")  # a folder without run.json
    make_run(tmp_path, ".m-20260401-000000.tmp", run=started("2026-04-01T00:00:00+00:00"))  # a temp folder
    (tmp_path / "stray.json").write_text("{}")
    names = [r.folder.name for r in scan_runs(tmp_path)]
    assert names == ["m-20260301-000000", "m-20260201-000000-2", "m-20260201-000000", "m-20260101-000000"]
    assert scan_runs(tmp_path / "absent") == []


# ------------------------------------------------------------------------------- configs
def test_flatten_spells_keys_as_overrides_do() -> None:
    config = {
        "seed": 1,
        "compile": {"optimizer": {"type": "Adam", "learning_rate": 0.001}},
        "model": {"layers": [{"type": "Dense", "input_shape": [4]}, {"type": "Dense", "units": 3}]},
        "fit": {"callbacks": []},
    }
    assert flatten(config) == {
        "seed": 1,
        "compile.optimizer.type": "Adam",
        "compile.optimizer.learning_rate": 0.001,
        "model.layers[0].type": "Dense",
        "model.layers[0].input_shape": [4],
        "model.layers[1].type": "Dense",
        "model.layers[1].units": 3,
        "fit.callbacks": [],
    }


def test_config_diff_keeps_only_differing_keys_and_tells_absent_from_null() -> None:
    a = {"seed": 1, "lr": 0.1, "epochs": 5, "flag": 1, "layers": [{"name": None}]}
    b = {"seed": 1, "lr": 0.01, "epochs": 5.0, "flag": True, "layers": [{"name": None}, {"name": None}]}
    diff = {d.key: d.values for d in config_diff([a, b])}
    # 5 and 5.0 are the same number; 1 and true are not the same YAML value
    assert diff == {"lr": (0.1, 0.01), "flag": (1, True), "layers[1].name": (MISSING, None)}
    assert config_diff([a, a]) == []


def test_metric_diff_gives_deltas_against_the_first_run() -> None:
    first = {"train": {"loss": 1.0}, "val": {"loss": 0.5, "accuracy": 0.75}}
    second = {"train": {"loss": 0.25}, "val": {"loss": 0.75}, "test": {"accuracy": 0.5}}
    diff = {d.key: (d.values, d.deltas) for d in metric_diff([first, second])}
    assert diff["train.loss"] == ((1.0, 0.25), (0.0, -0.75))
    assert diff["val.loss"] == ((0.5, 0.75), (0.0, 0.25))
    assert diff["val.accuracy"] == ((0.75, MISSING), (0.0, None))
    assert diff["test.accuracy"] == ((MISSING, 0.5), (None, None))
    assert list(diff) == ["train.loss", "val.loss", "val.accuracy", "test.accuracy"]


def test_highlights_pick_the_facts_people_compare() -> None:
    config = {
        "model": {"name": "mlp", "layers": [{"type": "Dense"}, {"type": "Dropout"}]},
        "compile": {
            "optimizer": {"type": "SGD", "learning_rate": {"type": "ExponentialDecay", "initial_learning_rate": 0.1}},
            "loss": {"type": "mean_squared_error"},
            "metrics": [{"type": "mean_absolute_error", "name": "mae"}],
        },
        "data": {"source": "csv", "path": "train.csv"},
        "fit": {"epochs": 7, "batch_size": 16, "callbacks": [{"type": "EarlyStopping"}]},
    }
    assert highlights(config) == {
        "model": "mlp",
        "layers": ["Dense", "Dropout"],
        "optimizer": "SGD",
        "learning_rate": "ExponentialDecay",
        "loss": "mean_squared_error",
        "metrics": ["mae"],
        "data": "csv",
        "data_name": "train.csv",
        "epochs": 7,
        "batch_size": 16,
        "callbacks": ["EarlyStopping"],
    }


# ------------------------------------------------------------------------------- finding
def test_find_run_by_path_folder_name_or_run_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = make_run(tmp_path / "runs", "exp-20260101-000000", run={"name": "exp"}, config="name: exp\n")
    new = make_run(tmp_path / "runs", "exp-20260102-000000", run={"name": "exp"}, config="name: exp\n")
    monkeypatch.chdir(tmp_path)
    runs = Path("runs")
    assert find_run("exp-20260101-000000", runs).path == runs / old.name
    assert find_run(old, runs).path == old
    assert find_run("exp", runs).path == runs / new.name  # the newest
    assert config_file("exp", runs) == runs / new.name / "config.resolved.yaml"
    assert config_file("other.yaml", runs) == Path("other.yaml")  # a YAML path stays a config
    with pytest.raises(ArtifactError, match="received 'epx'") as err:
        find_run("epx", runs)
    assert err.value.exit_code == 4 and "did you mean 'exp'" in err.value.render()


def test_listing_never_imports_torch_numpy_or_matplotlib(tmp_path: Path) -> None:
    make_run(
        tmp_path,
        "m-20260101-000000",
        run={"name": "m", "status": "completed"},
        history={"loss": [1.0], "accuracy": [0.5], "val_loss": [1.0], "val_accuracy": [0.5]},
    )
    code = (
        "import sys; from pathlib import Path; from trainctl.runs.listing import scan_runs; "
        f"assert scan_runs(Path({str(tmp_path)!r}))[0].best_val.mode == 'max'; "
        "heavy = {'torch', 'numpy', 'matplotlib'} & {m.split('.')[0] for m in sys.modules}; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_non_finite_test_metrics_are_left_out(tmp_path: Path) -> None:
    folder = make_run(
        tmp_path,
        "m-20260101-000000",
        run={"name": "m", "status": "diverged"},
        metrics={"train": {"loss": None}, "test": {"loss": None}},
    )
    r = read_record(folder)
    assert r.test is None and r.status == "diverged"
    assert math.isnan(metric_diff([final_metrics(folder)])[0].values[0])
