"""What every command shares: error rendering, exit codes, ``--json`` output, consoles."""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from trainctl.errors import ConfigError, IOFailure, TrainctlError

F = TypeVar("F", bound=Callable[..., Any])


class State:
    debug: bool = False


STATE = State()


def emit_json(obj: Any) -> None:
    """The one JSON object a ``--json`` command writes to stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()


def plain_output() -> bool:
    """No terminal (or CI): print plain lines, no colours, no cursor movement."""
    return bool(os.environ.get("CI")) or not sys.stdout.isatty()


BROKEN_PIPE_EXIT = 141
"""What a shell reports for a command killed by SIGPIPE (128 + 13): ``predict ... | head`` ends
quietly with this code, as ``cat`` or ``yes`` would."""

_HINTS = {
    errno.ENOSPC: "the disk is full: free some space or write elsewhere",
    errno.EDQUOT: "the disk quota is exhausted: free some space or write elsewhere",
    errno.EFBIG: "the file size limit was reached (ulimit -f): raise it or write a smaller file",
    errno.EROFS: "the file system is read-only: choose a writable --runs-dir or --output",
    errno.EACCES: "permission denied: choose a folder you can write to",
    errno.EPERM: "operation not permitted: choose a folder you can write to",
    errno.EISDIR: "the path is a folder: give a file name",
    errno.ENOTDIR: "a parent of the path is a file, not a folder",
    errno.ENOENT: "check the path",
    errno.EBADF: "the stream is closed: give the command an open stdin/stdout (or use --output)",
    errno.ENAMETOOLONG: "use a shorter name",
    errno.EMFILE: "too many open files: raise ulimit -n",
}


class ClosedStream(io.TextIOBase):
    """Stands in for a stdin/stdout the shell closed (``>&-``): Python sets those to None, and
    every use would be an AttributeError; this turns the first use into the I/O exit code."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _closed(self, *_: Any) -> Any:
        raise OSError(errno.EBADF, f"{self.name} is closed")

    write = read = readline = fileno = _closed  # type: ignore[assignment]

    def __iter__(self) -> Any:
        self._closed()

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def readable(self) -> bool:
        return self.name == "stdin"

    def writable(self) -> bool:
        return self.name != "stdin"


def guard_standard_streams() -> None:
    """Closed fds 0-2 get /dev/null (so no file we open later lands on fd 1 and receives stray
    output), and a closed sys.stdin/stdout becomes a :class:`ClosedStream` that fails cleanly."""
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            if name == "stderr":
                sys.stderr = open(fd, "w", closefd=False)  # noqa: SIM115  nowhere to report; keep the exit code
            else:
                setattr(sys, name, ClosedStream(name))


def _silence_stdout() -> None:
    """After a broken pipe, point fd 1 at /dev/null so the interpreter's final flush is quiet."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass


def system_error(exc: BaseException) -> TrainctlError | None:
    """The :class:`TrainctlError` a system-level exception stands for, or None for a true bug."""
    if isinstance(exc, OSError):
        code = exc.errno
        what = exc.strerror or str(exc) or type(exc).__name__
        paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
        where = f"{' -> '.join(paths)}: " if paths else ""
        name = errno.errorcode.get(code, "") if code is not None else ""
        return IOFailure(f"{where}{what}" + (f" [{name}]" if name else ""), hint=_HINTS.get(code or -1))
    if isinstance(exc, MemoryError):
        return IOFailure("out of memory", hint="use a smaller batch_size, model or input")
    if isinstance(exc, RuntimeError) and not isinstance(exc, RecursionError):
        text = str(exc)
        if "can't allocate memory" in text or "out of memory" in text.lower():
            return IOFailure(
                "out of memory: " + text.splitlines()[0][:200], hint="use a smaller batch_size, model or input"
            )
        return None
    if isinstance(exc, RecursionError):
        return ConfigError(
            "the input is nested too deeply to process (Python recursion limit)",
            hint="flatten the nesting; a YAML alias that refers to itself also does this",
        )
    return None


def _report(exc: TrainctlError, json_flag: str | None, kwargs: dict[str, Any]) -> None:
    try:
        sys.stderr.write(f"error: {exc.render()}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    if json_flag and kwargs.get(json_flag):
        with contextlib.suppress(OSError, ValueError):
            emit_json(
                {
                    "status": "error",
                    "error": exc.kind,
                    "exit_code": exc.exit_code,
                    "problems": [p.render() for p in exc.problems],
                }
            )


def handle_errors(json_flag: str | None = None) -> Callable[[F], F]:
    """The one error boundary every command goes through.

    :class:`TrainctlError` becomes its message on stderr and its exit code. System failures get
    theirs too: an ``OSError`` (disk full, read-only, closed stream...) or ``MemoryError`` is
    :class:`IOFailure` (exit 7), a broken stdout pipe exits 141 quietly, and a ``RecursionError``
    is a too-deeply-nested input (exit 2). Anything else is a bug: its traceback is shown, exit 1.
    ``--debug`` shows every traceback. With ``--json``, the error is also the one JSON object on
    stdout."""

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                result = fn(*args, **kwargs)
                sys.stdout.flush()  # a closed pipe or full disk shows here, not at interpreter exit
                return result
            except TrainctlError as exc:
                if STATE.debug:
                    raise
                _report(exc, json_flag, kwargs)
                raise typer.Exit(exc.exit_code) from None
            except BrokenPipeError:
                if STATE.debug:
                    raise
                _silence_stdout()
                raise typer.Exit(BROKEN_PIPE_EXIT) from None
            except (OSError, MemoryError, RuntimeError) as exc:
                mapped = system_error(exc)
                if STATE.debug or mapped is None:
                    raise
                _report(mapped, json_flag, kwargs)
                raise typer.Exit(mapped.exit_code) from None

        return wrapper  # type: ignore[return-value]

    return deco
