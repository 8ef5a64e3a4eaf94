"""``trainctl tune``: run a study of trials, each an ordinary run folder, with Optuna as the engine.

The coordinator (this module, in the ``trainctl tune`` process) owns the study: it asks Optuna for
each trial's parameters, starts one process per trial (``python -m trainctl.tune.trial``) with up to
``jobs`` at once, and stops when the study holds ``trials`` completed or pruned trials. Everything
lives in the storage (default ``runs/<study>/study.db``), so the same command continues a study
after a crash, a Ctrl-C or a ``kill -9``: a trial whose process is gone is marked failed and not
counted, and Optuna never reuses a trial number. Never prints; ``on_event`` gets progress lines.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from trainctl.errors import ArtifactError, ConfigError, Interrupted

POLL_S = 0.5
MAX_FAILED_FACTOR = 2  # a study gives up when more than this many x --trials trials failed in one invocation


@dataclass
class TrialRow:
    number: int
    state: str  # complete, pruned, failed, running
    value: float | None
    params: dict[str, Any]
    epochs: int | None
    test: dict[str, float]
    run_dir: str | None


@dataclass
class StudyResult:
    name: str
    storage: str
    objective: str
    direction: str
    rows: list[TrialRow]
    best: TrialRow | None
    best_yaml: Path | None
    study_dir: Path
    ran: int = 0  # trials started by this invocation
    stale: list[int] = field(default_factory=list)  # trials found cut off and marked failed


# ---------------------------------------------------------------------------------------------
# processes


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _die_with_parent() -> None:
    """Linux: the trial process gets SIGKILL when the coordinator dies, even by ``kill -9``."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def fail_stale(study: Any) -> list[int]:
    """RUNNING trials of this host whose process is gone (a crash, ``kill -9``): mark them failed.

    Trials of other hosts (a shared database) are left to their own coordinator.
    """
    import optuna

    host = socket.gethostname()
    cut: list[int] = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        pid = t.system_attrs.get("trainctl:pid")
        if t.system_attrs.get("trainctl:host", host) != host:
            continue
        if isinstance(pid, int) and _alive(pid):
            continue
        study._storage.set_trial_user_attr(t._trial_id, "error", "cut off: its process was gone")
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        run_dir = t.user_attrs.get("run_dir")
        if run_dir and (Path(run_dir) / "run.json").is_file():
            from trainctl.runs import RunDir

            with contextlib.suppress(OSError, ArtifactError):
                RunDir(Path(run_dir)).update_run(status="failed", error="cut off: the tune process was killed")
        cut.append(t.number)
    return cut


def _counts(study: Any) -> tuple[int, int]:
    """(completed or pruned, running)."""
    import optuna

    s = optuna.trial.TrialState
    done = len(study.get_trials(deepcopy=False, states=(s.COMPLETE, s.PRUNED)))
    running = len(study.get_trials(deepcopy=False, states=(s.RUNNING,)))
    return done, running


# ---------------------------------------------------------------------------------------------
# the study


def study_name(loaded: Any, given: str | None) -> str:
    import re

    name = given or loaded.config.name or (loaded.path.stem if loaded.path else "study")
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", name):
        raise ConfigError(
            f"expected letters, digits, '.', '_' or '-' in a study name (it names a folder), received {name!r}",
            key="--study",
        )
    return name


def threads_per_trial(cfg_threads: int | None, jobs: int) -> int:
    """J trials x threads fit the cores; a config's own ``threads`` is kept when it fits."""
    from trainctl.host import cpu_cores

    fit = max(1, cpu_cores() // jobs)
    return min(cfg_threads, fit) if cfg_threads else fit


def run_study(
    config: Path,
    *,
    overrides: tuple[str, ...] = (),
    trials: int | None = None,
    jobs: int = 1,
    study: str | None = None,
    storage: str | None = None,
    timeout: float | None = None,
    runs_dir: Path = Path("runs"),
    on_event: Callable[[str], None] | None = None,
) -> StudyResult:
    """Run (or continue) the study until it holds ``trials`` completed or pruned trials."""
    import optuna

    from trainctl.config import load_config
    from trainctl.tune.storage import default_storage, distributions, open_storage, pruner, sampler

    say = on_event or (lambda _line: None)
    if jobs < 1:
        raise ConfigError(f"expected --jobs of at least 1, received {jobs}", key="--jobs")
    loaded = load_config(config, overrides)
    spec = loaded.config.tune
    if spec is None:
        raise ConfigError(
            f"expected a tune: section in {config}",
            key="tune",
            hint="add tune: {objective: val_loss, parameters: {fit.batch_size: {choice: [32, 64]}}}",
        )
    wanted = trials or spec.trials or 10
    if wanted < 1:
        raise ConfigError(f"expected --trials of at least 1, received {wanted}", key="--trials")
    name = study_name(loaded, study)
    study_dir = Path(runs_dir) / name
    study_dir.mkdir(parents=True, exist_ok=True)
    url = storage or default_storage(runs_dir, name)
    direction = spec.resolved_direction
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = open_storage(url)
    existing = {s.study_name: s for s in optuna.get_all_study_summaries(store, include_best_trial=False)}
    if name in existing and existing[name].direction.name.lower() != direction:
        raise ConfigError(
            f"study {name!r} in {url} optimizes in direction {existing[name].direction.name.lower()}, "
            f"this config asks for {direction}",
            key="tune.direction",
            hint="give another --study name",
        )
    seed = (loaded.config.seed or 0) + (existing[name].n_trials if name in existing else 0)
    st = optuna.create_study(
        study_name=name,
        storage=store,
        sampler=sampler(spec, seed),
        pruner=pruner(spec, loaded.config.fit.epochs),
        direction=direction,
        load_if_exists=True,
    )
    st.set_user_attr("config", str(Path(config).resolve()))
    st.set_user_attr("overrides", list(overrides))
    st.set_user_attr("objective", spec.objective)
    stale = fail_stale(st)
    if stale:
        say(f"marked {len(stale)} cut-off trial(s) failed: {', '.join(map(str, stale))}")
    dists = distributions(spec)
    threads = threads_per_trial(loaded.config.threads, jobs)
    procs: dict[int, subprocess.Popen[bytes]] = {}
    logs = study_dir / "logs"
    logs.mkdir(exist_ok=True)
    started = time.monotonic()
    ran = failed = 0
    stop_error: str | None = None
    interrupted: int | None = None
    try:
        while True:
            done, running = _counts(st)
            out_of_time = timeout is not None and time.monotonic() - started >= timeout
            launch = (
                not out_of_time and stop_error is None and interrupted is None and failed <= MAX_FAILED_FACTOR * wanted
            )
            while launch and len(procs) < jobs and done + running < wanted:
                trial = st.ask(dists)
                st._storage.set_trial_system_attr(trial._trial_id, "trainctl:pid", os.getpid())
                st._storage.set_trial_system_attr(trial._trial_id, "trainctl:host", socket.gethostname())
                procs[trial.number] = _start(trial.number, url, name, config, overrides, study_dir, threads, logs)
                ran += 1
                running += 1
                say(f"trial {trial.number} started: {_params_text(trial.params)}")
            if not procs:
                if done >= wanted or not launch:
                    break
                fail_stale(st)  # only other processes' trials are running: wait, unless they died
            finished = _wait_any(procs)
            for number, code in finished:
                state = _finish(st, number, code)
                if state == "failed":
                    failed += 1
                if code == ConfigError.exit_code and stop_error is None:
                    stop_error = _trial_error(st, number) or f"trial {number} stopped with a config error"
                if code in (128 + signal.SIGINT, 128 + signal.SIGTERM) and interrupted is None:
                    interrupted = code - 128  # the trial was interrupted (Ctrl-C reaches the whole group)
                say(f"trial {number} {state}" + _value_text(st, number))
    except KeyboardInterrupt:
        _stop_all(procs, signal.SIGINT)
        for number in list(procs):
            _finish(st, number, procs[number].returncode)
        raise Interrupted(signal.SIGINT, "tune interrupted; run the same command again to continue") from None
    if interrupted is not None:
        _stop_all(procs, signal.SIGINT)
        raise Interrupted(interrupted, "tune interrupted; run the same command again to continue")
    if stop_error is not None:
        raise ConfigError(stop_error, key="tune")
    result = summarize(st, url, study_dir)
    result.ran, result.stale = ran, stale
    if result.best is not None:
        result.best_yaml = write_best_yaml(loaded, result, study_dir / "best.yaml")
    done, _ = _counts(st)
    if done < wanted and not (timeout is not None and time.monotonic() - started >= timeout):
        raise ConfigError(
            f"the study holds {done} completed or pruned trials of {wanted}: {failed} trial(s) failed",
            key="tune",
            hint=f"read {logs}/trial-N.log and the trials' run.json errors",
        )
    return result


def _start(
    number: int,
    url: str,
    name: str,
    config: Path,
    overrides: tuple[str, ...],
    study_dir: Path,
    threads: int,
    logs: Path,
) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "trainctl.tune.trial",
        "--storage",
        url,
        "--study",
        name,
        "--number",
        str(number),
        "--config",
        str(config),
        "--runs-dir",
        str(study_dir),
        "--threads",
        str(threads),
        *[f"--override={o}" for o in overrides],
    ]
    with (logs / f"trial-{number}.log").open("wb") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)


def _wait_any(procs: dict[int, subprocess.Popen[bytes]]) -> list[tuple[int, int]]:
    """Block until at least one trial process exits; return (number, exit code) of those that did."""
    while procs:
        done = [(n, p.returncode) for n, p in procs.items() if p.poll() is not None]
        if done:
            for n, _ in done:
                procs.pop(n)
            return done
        time.sleep(POLL_S)
    time.sleep(POLL_S)  # only other coordinators' trials are running: wait for them
    return []


def _stop_all(procs: dict[int, subprocess.Popen[bytes]], sig: int) -> None:
    for p in procs.values():
        with contextlib.suppress(ProcessLookupError):
            p.send_signal(sig)
    deadline = time.monotonic() + 60
    for p in procs.values():
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _finish(st: Any, number: int, code: int | None) -> str:
    """The trial's state once its process exited; a trial the process never told about is failed."""
    import optuna

    t = st._storage.get_trial(st._storage.get_trial_id_from_study_id_trial_number(st._study_id, number))
    if t.state == optuna.trial.TrialState.RUNNING:
        st._storage.set_trial_user_attr(t._trial_id, "error", f"its process exited with code {code}")
        st.tell(number, state=optuna.trial.TrialState.FAIL)
        return "failed"
    return _STATE[t.state.name]


def _trial_error(st: Any, number: int) -> str | None:
    t = st._storage.get_trial(st._storage.get_trial_id_from_study_id_trial_number(st._study_id, number))
    return t.user_attrs.get("error")


def _value_text(st: Any, number: int) -> str:
    t = st._storage.get_trial(st._storage.get_trial_id_from_study_id_trial_number(st._study_id, number))
    return f": {t.value:.6g}" if t.value is not None else ""


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


_STATE = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running", "WAITING": "waiting"}


# ---------------------------------------------------------------------------------------------
# results


def summarize(st: Any, url: str, study_dir: Path) -> StudyResult:
    """Every trial as a row, sorted by the objective (best first; pruned and failed ones after)."""
    rows = []
    for t in st.get_trials(deepcopy=False):
        ua = t.user_attrs
        rows.append(
            TrialRow(
                number=t.number,
                state=_STATE.get(t.state.name, t.state.name.lower()),
                value=t.value,
                params=dict(t.params),
                epochs=ua.get("epochs"),
                test={k[5:]: v for k, v in ua.items() if k.startswith("test_")},
                run_dir=ua.get("run_dir"),
            )
        )
    sign = 1.0 if st.direction.name == "MINIMIZE" else -1.0
    order = {"complete": 0, "pruned": 1, "running": 2, "waiting": 3, "failed": 4}
    rows.sort(key=lambda r: (order.get(r.state, 5), sign * r.value if r.value is not None else 0.0, r.number))
    best = next((r for r in rows if r.state == "complete"), None)
    return StudyResult(
        name=st.study_name,
        storage=url,
        objective=str(st.user_attrs.get("objective", "value")),
        direction=st.direction.name.lower(),
        rows=rows,
        best=best,
        best_yaml=None,
        study_dir=study_dir,
    )


def write_best_yaml(loaded: Any, result: StudyResult, path: Path) -> Path:
    """The original config with the best trial's parameters applied, as ``trainctl train`` takes it.

    The ``tune:`` section is left out, and relative data paths are made absolute (the file lives
    in the study folder, not beside the original config).
    """
    from trainctl.atomic import atomic_write_bytes
    from trainctl.config import load_config
    from trainctl.config.loader import apply_override
    from trainctl.tune.trial import trial_overrides

    assert result.best is not None
    raw = copy.deepcopy(loaded.raw)
    raw.pop("tune", None)
    for item in trial_overrides(result.best.params):
        apply_override(raw, item)
    if isinstance(raw.get("data"), dict):
        raw["data"] = _absolute_paths(raw["data"], loaded.base_dir)
    head = (
        f"# trainctl train {path}\n"
        f"# best trial {result.best.number} of study {result.name}: {result.objective} = {result.best.value:.6g}"
        f" ({datetime.now(UTC).isoformat(timespec='seconds')})\n"
        f"# from {loaded.path}" + (f" with {' '.join(loaded.overrides)}" if loaded.overrides else "") + "\n"
    )
    text = head + yaml.safe_dump(raw, sort_keys=False, default_flow_style=None, width=100)
    load_config(None, text=text)  # it must be a valid config
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


def _absolute_paths(node: Any, base: Path) -> Any:
    if isinstance(node, dict):
        return {k: _absolute_paths(v, base) for k, v in node.items()}
    if isinstance(node, str) and node and not Path(node).is_absolute() and (base / node).exists():
        return str((base / node).resolve())
    return node


def load_study_result(name: str, *, storage: str | None = None, runs_dir: Path = Path("runs")) -> StudyResult:
    """A study as :func:`summarize` rows, from its storage (``trainctl tune show``)."""
    import optuna

    from trainctl.tune.storage import default_storage, open_storage

    study_dir = Path(runs_dir) / name
    url = storage or default_storage(runs_dir, name)
    if storage is None and not (study_dir / "study.db").is_file():
        raise ArtifactError(
            f"no study {name!r}: {study_dir / 'study.db'} not found",
            hint="give the study name trainctl tune printed, --runs-dir, or --storage URL",
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        st = optuna.load_study(study_name=name, storage=open_storage(url))
    except KeyError:
        raise ArtifactError(f"no study {name!r} in {url}") from None
    result = summarize(st, url, study_dir)
    best = study_dir / "best.yaml"
    result.best_yaml = best if best.is_file() else None
    return result
