"""What every command shares: error rendering, exit codes, ``--json`` output, consoles."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from trainctl.errors import TrainctlError

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


def handle_errors(json_flag: str | None = None) -> Callable[[F], F]:
    """Turn :class:`TrainctlError` into its message on stderr and its exit code; no traceback
    unless ``--debug``. With ``--json``, the error is also the one JSON object on stdout."""

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except TrainctlError as exc:
                if STATE.debug:
                    raise
                sys.stderr.write(f"error: {exc.render()}\n")
                if json_flag and kwargs.get(json_flag):
                    emit_json(
                        {
                            "status": "error",
                            "error": exc.kind,
                            "exit_code": exc.exit_code,
                            "problems": [p.render() for p in exc.problems],
                        }
                    )
                raise typer.Exit(exc.exit_code) from None

        return wrapper  # type: ignore[return-value]

    return deco
