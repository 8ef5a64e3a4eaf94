"""The exception hierarchy: each class carries the exit code the CLI returns for it.

Library code raises these; only ``trainctl.cli`` turns them into exit codes and text. Each class
also subclasses the builtin a Python caller would expect (``ValueError``, ``FileNotFoundError``...),
so ``except ValueError`` keeps working for people who use trainctl as a library.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located as precisely as we can.

    ``key`` is the dotted config key (``fit.epochs``, ``model.layers[2].units``); ``where`` is a
    ``file:line`` filled in by the config loader when the key came from YAML.
    """

    message: str
    key: str | None = None
    where: str | None = None
    hint: str | None = None

    def render(self) -> str:
        head = ": ".join(part for part in (self.where, self.key) if part)
        text = f"{head}: {self.message}" if head else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class TrainctlError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with; see README 'Exit codes'."""

    exit_code = 1
    kind = "error"

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        hint: str | None = None,
        problems: list[Problem] | None = None,
    ) -> None:
        self.problems: list[Problem] = problems or [Problem(message, key=key, hint=hint)]
        self.key = key
        self.hint = hint
        super().__init__(message)

    def locate(self, where_of: object) -> None:
        """Fill in ``file:line`` for each problem from a callable ``key -> 'file:line' | None``."""
        if not callable(where_of):
            return
        self.problems = [
            p if p.where or not p.key else Problem(p.message, p.key, where_of(p.key), p.hint) for p in self.problems
        ]

    def render(self) -> str:
        return "\n".join(p.render() for p in self.problems)


class ConfigError(TrainctlError, ValueError):
    """The YAML file, an override or a command-line option is wrong."""

    exit_code = 2
    kind = "config"


class DataError(TrainctlError, ValueError):
    """Data is missing, unreadable, or of the wrong shape or dtype."""

    exit_code = 3
    kind = "data"


class DataFileNotFound(DataError, FileNotFoundError):
    """A data file named by the config or the command line does not exist."""


class ArtifactError(TrainctlError, ValueError):
    """A run folder or model file is missing, corrupt, or does not match the model."""

    exit_code = 4
    kind = "artifact"


class TrainingDiverged(TrainctlError, ArithmeticError):
    """The loss became NaN or infinite."""

    exit_code = 5
    kind = "diverged"


class GateFailed(TrainctlError):
    """A ``--fail-under`` quality gate was not met."""

    exit_code = 6
    kind = "gate"


class IOFailure(TrainctlError, OSError):
    """The system refused a read or write: disk full, file too large, read-only or forbidden
    folder, a path that is a folder, a closed stdin/stdout, or memory exhausted.

    Not the input's fault and not a bug, so it has its own exit code: a CI job can retry it.
    """

    exit_code = 7
    kind = "io"


class RunBusy(TrainctlError):
    """Another trainctl process holds the run folder's lock (two ``--resume`` of one run)."""

    exit_code = 8
    kind = "busy"


class DistributedFailure(TrainctlError):
    """A distributed run failed as a whole: a worker died (killed, out of memory, an exception) or
    hung past the collective timeout. The message names the rank. Other ranks' own errors keep
    their codes (a config error on every rank is still 2)."""

    exit_code = 9
    kind = "distributed"


class Interrupted(TrainctlError):
    """SIGINT/SIGTERM arrived; a resumable state was saved before this was raised."""

    kind = "interrupted"

    def __init__(self, signum: int, message: str = "interrupted") -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum


EXIT_CODES: dict[int, str] = {
    0: "success (early stopping included)",
    1: "unexpected internal error (traceback shown)",
    2: "config or usage error",
    3: "data error (missing file, wrong shape or dtype)",
    4: "artifact error (missing or corrupt run folder, weight mismatch)",
    5: "training diverged (NaN or inf loss)",
    6: "quality gate failed (--fail-under)",
    7: "I/O or system failure (disk full, file too large, read-only or forbidden path, closed stream, out of memory)",
    8: "run folder busy (another trainctl process holds its lock)",
    9: "distributed run failed: a worker process died or hung past the collective timeout (the message names the rank)",
    141: "stdout closed by its reader (broken pipe, e.g. `| head`): quiet exit, as Unix tools do",
    130: "interrupted by SIGINT, resumable state saved",
    143: "interrupted by SIGTERM, resumable state saved",
}
