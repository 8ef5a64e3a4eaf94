"""Quality gates: parsing, comparison in both directions, and messages that say by how much."""

from __future__ import annotations

import pytest

from trainctl.errors import ConfigError, GateFailed
from trainctl.gates import Gate, check_gate, check_gates, failed, parse_gate, parse_gates


def test_parse() -> None:
    assert parse_gate("accuracy=0.9") == Gate("accuracy", 0.9, "under")
    assert parse_gate(" loss = 5e-1 ", "over") == Gate("loss", 0.5, "over")
    assert parse_gates(["auc=0.95"], ["loss=0.4"]) == [Gate("auc", 0.95, "under"), Gate("loss", 0.4, "over")]


@pytest.mark.parametrize("text", ["accuracy", "=0.9", "accuracy=", "accuracy=high", "accuracy=nan", "acc>0.9"])
def test_parse_errors(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_gate(text)
    assert info.value.exit_code == 2 and info.value.key == "--fail-under"
    assert repr(text) in info.value.render()


def test_under_fails_below_and_says_by_how_much() -> None:
    res = check_gate(Gate("accuracy", 0.9), 0.8694444)
    assert not res.passed and res.message == "accuracy 0.8694 is below 0.9 by 0.0306"
    assert check_gate(Gate("accuracy", 0.9), 0.9).passed  # equal meets the gate
    assert check_gate(Gate("accuracy", 0.9), 0.95).passed
    tiny = check_gate(Gate("accuracy", 0.9), 0.89999)
    assert not tiny.passed and tiny.message.endswith("by 1e-05")  # never "by 0.0000"


def test_over_fails_above() -> None:
    res = check_gate(Gate("loss", 0.5, "over"), 0.6123)
    assert not res.passed and res.message == "loss 0.6123 is above 0.5 by 0.1123"
    assert check_gate(Gate("loss", 0.5, "over"), 0.5).passed
    assert check_gate(Gate("loss", 0.5, "over"), 0.1).passed


def test_nan_never_passes() -> None:
    for direction in ("under", "over"):
        res = check_gate(Gate("loss", 0.5, direction), float("nan"))  # type: ignore[arg-type]
        assert not res.passed and "not a number" in res.message
        assert res.to_json()["value"] is None


def test_check_gates_and_failure_error() -> None:
    metrics = {"loss": 0.42, "accuracy": 0.87}
    results = check_gates(parse_gates(["accuracy=0.8"], ["loss=0.5"]), metrics)
    assert [r.passed for r in results] == [True, True] and failed(results) is None
    results = check_gates(parse_gates(["accuracy=0.9"], ["loss=0.4"]), metrics)
    err = failed(results)
    assert isinstance(err, GateFailed) and err.exit_code == 6
    assert err.render() == (
        "--fail-under: accuracy 0.8700 is below 0.9 by 0.0300\n--fail-over: loss 0.4200 is above 0.4 by 0.0200"
    )
    assert results[0].to_json() == {
        "metric": "accuracy",
        "option": "--fail-under",
        "threshold": 0.9,
        "value": 0.87,
        "passed": False,
        "message": "accuracy 0.8700 is below 0.9 by 0.0300",
    }


def test_unknown_metric_is_a_config_error_with_a_guess() -> None:
    with pytest.raises(ConfigError) as info:
        check_gates([Gate("acuracy", 0.9)], {"loss": 0.4, "accuracy": 0.9})
    text = info.value.render()
    assert info.value.exit_code == 2 and "did you mean 'accuracy'?" in text and "metrics: loss, accuracy" in text
    with pytest.raises(ConfigError) as info:
        check_gates([Gate("auc", 0.9)], {"loss": 0.4}, report_only=["auc", "r2"])
    assert "computed by --report" in info.value.render()
