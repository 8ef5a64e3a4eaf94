"""Helpers for the data tests: an IDX writer that shares no code with the reader under test,
and spec builders that go through pydantic the way the config loader does."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
from pydantic import TypeAdapter

from trainctl.config.data import Data, Step, StepField


def idx_bytes(arr: np.ndarray, magic: int | None = None) -> bytes:
    """IDX encoding of a uint8 array, written with ``struct`` from the format description."""
    head = struct.pack(">I", magic) if magic is not None else struct.pack(">BBBB", 0, 0, 0x08, arr.ndim)
    return head + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(np.uint8).tobytes()


def source(**fields: Any) -> Any:
    """A validated ``data:`` spec."""
    return TypeAdapter(Data).validate_python(fields)


def steps(*items: Any) -> list[Step]:
    return TypeAdapter(list[StepField]).validate_python(list(items))
