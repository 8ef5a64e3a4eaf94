"""Shared pieces of the hypothesis fuzz tests: hostile values, structural mutations of parsed
configs/JSON, and byte mutations of binary files. The fast slices (fixed seed, a few hundred
examples) run in CI; ``TRAINCTL_FUZZ_FULL=1 pytest -m slow tests/**/test_fuzz_*.py`` runs the full
counts."""

from __future__ import annotations

import copy
import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FULL = os.environ.get("TRAINCTL_FUZZ_FULL") == "1"


def fast(n: int) -> settings:
    """The CI slice: derandomized (a fixed seed), ``n`` examples, no deadline (shared machines)."""
    return settings(
        max_examples=n,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def full(n: int) -> settings:
    return settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))


HUGE_INTS = st.sampled_from([0, -1, 1, 2**31, 2**63, -(2**63), 2**64 + 1, 10**12, 10**100])
ODD_FLOATS = st.sampled_from([float("inf"), float("-inf"), float("nan"), 1e308, -0.0, 5e-324, 1e-300])
UNICODE = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=0, max_size=12) | st.sampled_from(
    ["\u202e", "\x00", "ünïcødé", "🙂", "a" * 300, "../../etc", "", " "]
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), HUGE_INTS, st.floats(), ODD_FLOATS, UNICODE)
# nested lists and mappings, some deep
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(UNICODE, inner, max_size=4),
    max_leaves=12,
)


def deep(depth: int, leaf: Any = 1) -> Any:
    node = leaf
    for i in range(depth):
        node = [node] if i % 2 else {"k": node}
    return node


def paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside nested dicts/lists (the root excluded)."""
    out: list[tuple[Any, ...]] = []
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        out.append((*prefix, k))
        out += paths(v, (*prefix, k))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: Any, max_ops: int = 3) -> Any:
    """``base`` with 1..max_ops mutations: a value replaced (hostile scalar, nested, deep), a key
    dropped, a key added, or a list item duplicated."""
    obj = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, max_ops))):
        where = paths(obj)
        if not where:
            break
        path = draw(st.sampled_from(where))
        parent = obj
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        op = draw(st.sampled_from(["replace", "replace", "drop", "add", "dup", "deep"]))
        if op == "replace":
            parent[last] = draw(VALUES)
        elif op == "deep":
            parent[last] = deep(draw(st.integers(5, 150)))
        elif op == "drop":
            del parent[last]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(UNICODE)] = draw(VALUES)
        elif op == "dup" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
    return obj


@st.composite
def byte_mutated(draw: st.DrawFn, data: bytes, header: int = 256) -> bytes:
    """``data`` with a few bytes flipped (mostly in the first ``header`` bytes), truncated, or
    with bytes inserted."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "flip", "set", "truncate", "insert", "header"]))
        if not buf:
            break
        limit = min(len(buf), header) if op in ("flip", "header") else len(buf)
        i = draw(st.integers(0, max(limit - 1, 0)))
        if op == "flip":
            buf[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" or op == "header":
            buf[i] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0x30, 0x39]))
        elif op == "truncate":
            del buf[i:]
        elif op == "insert":
            buf[i:i] = draw(st.binary(min_size=1, max_size=8))
    return bytes(buf)
