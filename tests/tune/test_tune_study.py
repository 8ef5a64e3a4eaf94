"""``trainctl tune`` end to end on the digits quickstart (few epochs, threads=1): a parallel study
with pruning, trials as ordinary run folders, best.yaml, ``tune show``, and a study killed with
``kill -9`` that the same command continues without repeating trial numbers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.clihelp import CONFIGS, ROOT, Cli

optuna = pytest.importorskip("optuna")

CFG = CONFIGS / "digits_quickstart.yaml"
EPOCHS = 4


def _study_cfg(tmp_path: Path) -> Path:
    """The quickstart with a wider learning-rate range and the median pruner's patience of one trial:
    some trials are then clearly worse after an epoch or two, and get pruned."""
    text = CFG.read_text().replace("{loguniform: [1.0e-4, 1.0e-1]}", "{loguniform: [1.0e-5, 1.0e-1]}")
    text = text.replace("  pruner: median\n", "  pruner: median\n  startup_trials: 1\n")
    text = text.replace("  sampler: tpe\n", "  sampler: random\n")
    path = tmp_path / "digits_tune.yaml"
    path.write_text(text)
    return path


def _trials(db: Path, name: str) -> list:
    st = optuna.load_study(study_name=name, storage=f"sqlite:///{db}")
    return st.get_trials(deepcopy=False)


def _json_run(cli: Cli, *args: str | Path) -> dict:
    res = cli(*args, "--json")
    assert res.exit_code == 0, res.output + res.stderr
    return json.loads(res.stdout)


def test_a_parallel_study_prunes_and_its_trials_are_runs(tmp_path: Path, cli: Cli) -> None:
    cfg, runs = _study_cfg(tmp_path), tmp_path / "runs"
    out = _json_run(
        cli, "tune", cfg, f"fit.epochs={EPOCHS}", "threads=1", "--trials", "6", "--jobs", "2",
        "--study", "dq", "--runs-dir", runs,
    )  # fmt: skip
    trials = out["trials"]
    numbers = [t["number"] for t in trials]
    assert len(numbers) == len(set(numbers))
    states = [t["state"] for t in trials]
    assert states.count("complete") + states.count("pruned") == 6 and "failed" not in states

    # sorted by the objective (val_loss, minimized), completed trials first
    values = [t["value"] for t in trials if t["state"] == "complete"]
    assert values == sorted(values)
    assert out["best"] == trials[0]["number"]

    # every trial is an ordinary run folder under runs/<study>/trial-<n>-<stamp>/
    for t in trials:
        run_dir = Path(t["run_dir"])
        assert run_dir.parent == runs / "dq" and run_dir.name.startswith(f"trial-{t['number']}-")
        info = json.loads((run_dir / "run.json").read_text())
        history = json.loads((run_dir / "history.json").read_text())
        assert info["status"] == ("pruned" if t["state"] == "pruned" else "completed")
        if t["state"] == "pruned":
            assert len(history["val_loss"]) == info["pruned_after_epoch"] < EPOCHS  # stopped early
        else:
            assert t["value"] == pytest.approx(history["val_loss"][-1])
            # the trial's folder passes `trainctl evaluate`: the same test metrics as it recorded
            ev = _json_run(cli, "evaluate", run_dir)
            assert ev["metrics"]["accuracy"] == pytest.approx(t["test"]["accuracy"], abs=1e-6)
        # the sampled parameters are in the trial's resolved config
        resolved = (run_dir / "config.resolved.yaml").read_text()
        assert f"units: {t['params']['model.layers[0].units']}" in resolved
    assert "pruned" in states, "expected at least one pruned trial"

    # `runs list` shows the pruned status
    listing = cli("runs", "list", "--runs-dir", runs / "dq")
    assert listing.exit_code == 0 and "pruned" in listing.stdout

    # best.yaml is the config with the best parameters applied, and trains
    best = runs / "dq" / "best.yaml"
    text = best.read_text()
    assert "tune:" not in text and text.startswith(f"# trainctl train {best}")
    from trainctl.config import load_config

    cfg_best = load_config(best).config
    params = trials[0]["params"]
    assert cfg_best.model.layers[0].units == params["model.layers[0].units"]
    assert cfg_best.fit.batch_size == params["fit.batch_size"]
    assert cfg_best.compile.optimizer.learning_rate == pytest.approx(params["compile.optimizer.learning_rate"])
    assert cfg_best.model.layers[1].rate == pytest.approx(params["model.layers[1].rate"])
    trained = cli.train_json(best, "fit.epochs=1", "threads=1")
    assert trained["status"] in ("completed", "stopped_early")

    # tune show: the same table, and the two plots
    shown = _json_run(cli, "tune", "show", "dq", "--runs-dir", runs)
    assert [t["number"] for t in shown["trials"]] == numbers
    for png in ("history.png", "importance.png"):
        data = (runs / "dq" / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    plain = cli("tune", "show", "dq", "--runs-dir", runs)
    assert plain.exit_code == 0 and "val_loss" in plain.stdout and "pruned" in plain.stdout

    # running the same command again: the study is complete, nothing new starts
    again = _json_run(
        cli, "tune", cfg, f"fit.epochs={EPOCHS}", "threads=1", "--trials", "6", "--jobs", "2",
        "--study", "dq", "--runs-dir", runs,
    )  # fmt: skip
    assert again["ran"] == 0 and sorted(t["number"] for t in again["trials"]) == sorted(numbers)


def test_kill_9_then_the_same_command_continues(tmp_path: Path) -> None:
    cfg, runs = _study_cfg(tmp_path), tmp_path / "runs"
    cmd = [
        sys.executable, "-m", "trainctl", "tune", str(cfg), f"fit.epochs={EPOCHS}", "threads=1",
        "--trials", "5", "--jobs", "2", "--study", "k9", "--runs-dir", str(runs),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    assert proc.stdout is not None
    finished = 0
    for line in proc.stdout:  # wait for one finished trial, then for the next ones to be running
        if line.startswith("trial ") and (" complete" in line or " pruned" in line):
            finished += 1
        if finished >= 1 and line.startswith("trial ") and " started" in line:
            break
    time.sleep(2.0)  # the new trial is training
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    db = runs / "k9" / "study.db"
    cut = [t for t in _trials(db, "k9") if t.state == optuna.trial.TrialState.RUNNING]
    assert cut, "expected trials cut off mid-run"
    time.sleep(1.0)  # their processes die with the coordinator

    rerun = subprocess.run([*cmd, "--json"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    out = json.loads(rerun.stdout)
    assert sorted(out["stale"]) == sorted(t.number for t in cut)
    trials = _trials(db, "k9")
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)) == max(numbers) + 1
    counted = [t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    assert len(counted) == 5
    for t in trials:
        if t.number in out["stale"]:
            assert t.state == optuna.trial.TrialState.FAIL
            if "run_dir" in t.user_attrs:
                info = json.loads((Path(t.user_attrs["run_dir"]) / "run.json").read_text())
                assert info["status"] == "failed"
    # every completed trial's run folder passes `trainctl evaluate`
    for t in counted:
        if t.state == optuna.trial.TrialState.COMPLETE:
            ev = subprocess.run(
                [sys.executable, "-m", "trainctl", "evaluate", t.user_attrs["run_dir"], "--json"],
                capture_output=True, text=True, cwd=ROOT, timeout=120,
            )  # fmt: skip
            assert ev.returncode == 0, ev.stderr
            assert json.loads(ev.stdout)["metrics"]["accuracy"] == pytest.approx(t.user_attrs["test_accuracy"])


@pytest.mark.slow
def test_done_means_study_of_16_trials_beats_the_untuned_config(tmp_path: Path, cli: Cli) -> None:
    """Issue 14's study: 16 trials, --jobs 2, the quickstart's own tune: section (fit.epochs=10 to keep
    it cheap); the best trial's test accuracy is at least the untuned config's on the same seed."""
    runs = tmp_path / "runs"
    out = _json_run(
        cli, "tune", CFG, "fit.epochs=10", "threads=1", "--trials", "16", "--jobs", "2", "--runs-dir", runs
    )  # fmt: skip
    states = [t["state"] for t in out["trials"]]
    assert states.count("complete") + states.count("pruned") == 16 and "pruned" in states
    best = next(t for t in out["trials"] if t["number"] == out["best"])
    untuned = cli.train_json(CFG, "fit.epochs=10", "threads=1")
    assert best["test"]["accuracy"] >= untuned["metrics"]["test"]["accuracy"]


def test_ctrl_c_exits_130_and_the_same_command_continues(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group: the running trials end as failed (their run.json
    `interrupted`), tune exits 130, and the same command then fills the study up."""
    cfg, runs = _study_cfg(tmp_path), tmp_path / "runs"
    cmd = [
        sys.executable, "-m", "trainctl", "tune", str(cfg), f"fit.epochs={EPOCHS}", "threads=1",
        "--trials", "3", "--jobs", "2", "--study", "cc", "--runs-dir", str(runs),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT,
        start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    assert proc.stdout is not None
    started = 0
    for line in proc.stdout:
        started += line.startswith("trial ") and " started" in line
        if started == 2:
            break
    time.sleep(4.0)  # both trials are training
    os.killpg(proc.pid, signal.SIGINT)
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, rest
    assert "run the same command again" in rest
    first = {t.number: t.state for t in _trials(runs / "cc" / "study.db", "cc")}
    assert optuna.trial.TrialState.RUNNING not in first.values()

    rerun = subprocess.run([*cmd, "--json"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    trials = _trials(runs / "cc" / "study.db", "cc")
    counted = [t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    assert len(counted) == 3 and all(t.number not in first or first[t.number] == t.state for t in trials)
