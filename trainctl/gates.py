"""Quality gates: ``--fail-under accuracy=0.9`` and ``--fail-over loss=0.5`` for CI pipelines.

A gate is checked against the flat metric dict of an evaluation (plus the report's metrics with
``--report``), so a pipeline can refuse a model that got worse. Parsing happens before any work,
so a typo in the syntax costs nothing; metric names are checked once the metrics are known.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from trainctl.errors import ConfigError, GateFailed, Problem

Direction = Literal["under", "over"]


@dataclass(frozen=True)
class Gate:
    """``under``: fail when the metric is below ``threshold``; ``over``: fail when it is above."""

    metric: str
    threshold: float
    direction: Direction = "under"

    @property
    def option(self) -> str:
        return f"--fail-{self.direction}"


@dataclass(frozen=True)
class GateResult:
    gate: Gate
    value: float
    passed: bool
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.gate.metric,
            "option": self.gate.option,
            "threshold": self.gate.threshold,
            "value": self.value if math.isfinite(self.value) else None,
            "passed": self.passed,
            "message": self.message,
        }


def parse_gate(text: str, direction: Direction = "under") -> Gate:
    """``"accuracy=0.9"`` -> ``Gate("accuracy", 0.9, direction)``; a ConfigError for anything else."""
    key = f"--fail-{direction}"
    name, sep, raw = text.partition("=")
    name, raw = name.strip(), raw.strip()
    if not sep or not name or not raw:
        raise ConfigError(f"expected METRIC=THRESHOLD (e.g. accuracy=0.9), received {text!r}", key=key)
    try:
        threshold = float(raw)
    except ValueError:
        raise ConfigError(f"expected a number after '=', received {raw!r} in {text!r}", key=key) from None
    if not math.isfinite(threshold):
        raise ConfigError(f"expected a finite threshold, received {raw!r} in {text!r}", key=key)
    return Gate(name, threshold, direction)


def parse_gates(under: Iterable[str] = (), over: Iterable[str] = ()) -> list[Gate]:
    return [parse_gate(t, "under") for t in under] + [parse_gate(t, "over") for t in over]


def _num(value: float) -> str:
    return f"{value:.4f}"


def _by(diff: float) -> str:
    """The margin, readable even when it is tiny (0.0000 would look like no failure at all)."""
    return f"{diff:.4f}" if diff >= 5e-5 else f"{diff:.2g}"


def check_gate(gate: Gate, value: float) -> GateResult:
    """Compare one metric value; the message says by how much a failing gate missed."""
    name, limit = gate.metric, gate.threshold
    if math.isnan(value):
        return GateResult(gate, value, False, f"{name} is not a number, so it cannot meet {gate.option} {limit:g}")
    if gate.direction == "under":
        if value < limit:
            return GateResult(gate, value, False, f"{name} {_num(value)} is below {limit:g} by {_by(limit - value)}")
        return GateResult(gate, value, True, f"{name} {_num(value)} is at least {limit:g}")
    if value > limit:
        return GateResult(gate, value, False, f"{name} {_num(value)} is above {limit:g} by {_by(value - limit)}")
    return GateResult(gate, value, True, f"{name} {_num(value)} is at most {limit:g}")


def check_gates(
    gates: Iterable[Gate], metrics: Mapping[str, Any], *, report_only: Iterable[str] = ()
) -> list[GateResult]:
    """Check every gate against ``metrics``; an unknown metric name is a ConfigError.

    ``report_only`` names metrics that exist only with ``--report``, so the hint can say so.
    """
    from trainctl.config.base import did_you_mean

    gates = list(gates)
    numeric = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    problems = []
    later = set(report_only)
    for gate in gates:
        if gate.metric in numeric:
            continue
        guess = did_you_mean(gate.metric, [*numeric, *later])
        hint = f"did you mean {guess!r}? " if guess else ""
        if gate.metric in later or (guess in later and guess not in numeric):
            hint += "that metric is computed by --report: add it. "
        hint += f"metrics: {', '.join(numeric) or '(none)'}"
        problems.append(
            Problem(f"expected a metric of this evaluation, received {gate.metric!r}", key=gate.option, hint=hint)
        )
    if problems:
        raise ConfigError(problems[0].message, problems=problems)
    return [check_gate(g, numeric[g.metric]) for g in gates]


def failed(results: Iterable[GateResult]) -> GateFailed | None:
    """The error to raise when any gate failed (one line per failed gate), else None."""
    bad = [r for r in results if not r.passed]
    if not bad:
        return None
    return GateFailed(bad[0].message, problems=[Problem(r.message, key=r.gate.option) for r in bad])


__all__ = ["Gate", "GateResult", "check_gate", "check_gates", "failed", "parse_gate", "parse_gates"]
