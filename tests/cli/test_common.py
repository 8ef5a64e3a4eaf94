"""The one error boundary (trainctl.cli.common.handle_errors), in process."""

from __future__ import annotations

import errno

import pytest
import typer

from trainctl.cli.common import STATE, handle_errors
from trainctl.errors import EXIT_CODES, DataError


def _raising(exc: BaseException):
    @handle_errors()
    def command() -> None:
        raise exc

    return command


@pytest.mark.parametrize(
    "exc,code,fragment",
    [
        (OSError(errno.ENOSPC, "No space left on device", "/runs/x/model.h5"), 7, "/runs/x/model.h5"),
        (OSError(errno.EFBIG, "File too large", "out.csv"), 7, "ulimit -f"),
        (OSError(errno.EROFS, "Read-only file system", "/ro/runs"), 7, "read-only"),
        (PermissionError(errno.EACCES, "Permission denied", "/root/x"), 7, "EACCES"),
        (IsADirectoryError(errno.EISDIR, "Is a directory", "out.csv"), 7, "give a file name"),
        (MemoryError(), 7, "out of memory"),
        (RuntimeError("[enforce fail at alloc_cpu.cpp:118] DefaultCPUAllocator: can't allocate memory"), 7, "memory"),
        (RecursionError("maximum recursion depth exceeded"), 2, "nested too deeply"),
        (DataError("bad rows"), 3, "bad rows"),
    ],
)
def test_system_failures_get_their_code(
    exc: BaseException, code: int, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(typer.Exit) as info:
        _raising(exc)()
    assert info.value.exit_code == code and code in EXIT_CODES
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment in err and err.count("\n") == 1


def test_broken_pipe_is_quiet_141(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as info:
        _raising(BrokenPipeError(errno.EPIPE, "Broken pipe"))()
    assert info.value.exit_code == 141 and capsys.readouterr().err == ""


@pytest.mark.parametrize("exc", [KeyError("x"), TypeError("bug"), RuntimeError("a torch bug"), ValueError("v")])
def test_a_true_bug_keeps_its_traceback(exc: BaseException) -> None:
    with pytest.raises(type(exc)):
        _raising(exc)()


def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(STATE, "debug", True)
    with pytest.raises(OSError):
        _raising(OSError(errno.ENOSPC, "No space left on device"))()
