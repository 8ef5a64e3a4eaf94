"""CSVLogger: the file text equals what real Keras writes; append mode; kill and resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from trainctl.errors import ConfigError
from trainctl.training.callbacks import CSVLogger, build_callbacks

WITH_VAL = [
    {"loss": 0.9, "accuracy": 0.5, "val_loss": 1.1, "val_accuracy": 0.4},
    {"loss": 0.7, "accuracy": 0.625, "val_loss": 0.95, "val_accuracy": 0.5},
    {"loss": 0.123456789012, "accuracy": 0.75, "val_loss": 0.8, "val_accuracy": 0.6},
]
NO_VAL = [{"loss": 0.5, "mae": 0.25}, {"loss": 0.4, "mae": 0.2}]


def text(path: Path) -> str:
    return path.read_bytes().decode()


def test_format_by_hand(make_trainer: Any, run: Any) -> None:
    trainer = make_trainer()
    run(CSVLogger(), trainer, WITH_VAL[:2])
    assert text(trainer.root / "training.log") == (
        "epoch,accuracy,loss,val_accuracy,val_loss\r\n0,0.5,0.9,0.4,1.1\r\n1,0.625,0.7,0.5,0.95\r\n"
    )
    # without validation, Keras still adds val_ columns, filled with NA
    run(CSVLogger("sub/log.csv", separator=";"), trainer, NO_VAL[:1])
    assert text(trainer.root / "sub" / "log.csv") == ("epoch;loss;mae;val_loss;val_mae\r\n0;0.5;0.25;NA;NA\r\n")


@pytest.mark.keras
@pytest.mark.parametrize(("seq", "separator"), [(WITH_VAL, ","), (NO_VAL, ","), (WITH_VAL, "\t"), (NO_VAL, ";")])
def test_equals_keras_output(
    keras: Any, make_trainer: Any, keras_model: Any, run: Any, seq: Any, separator: str
) -> None:
    trainer = make_trainer()
    theirs = trainer.root / "keras.log"
    run(keras.callbacks.CSVLogger(str(theirs), separator=separator), keras_model(), seq)
    run(CSVLogger("ours.log", separator=separator), trainer, seq)
    assert text(trainer.root / "ours.log") == text(theirs)


@pytest.mark.keras
def test_append_equals_keras(keras: Any, make_trainer: Any, keras_model: Any, run: Any) -> None:
    trainer = make_trainer()
    theirs = trainer.root / "keras.log"
    for append in (False, True, True):  # a fresh file, then two continued fits
        run(keras.callbacks.CSVLogger(str(theirs), append=append), keras_model(), WITH_VAL)
        run(CSVLogger("ours.log", append=append), trainer, WITH_VAL)
    assert text(trainer.root / "ours.log") == text(theirs)
    assert text(theirs).count("epoch") == 1 and text(theirs).count("\r\n") == 10
    # append=False starts the file again
    run(CSVLogger("ours.log"), trainer, WITH_VAL[:1])
    assert text(trainer.root / "ours.log").count("\r\n") == 2


def test_rows_are_on_disk_after_each_epoch(make_trainer: Any) -> None:
    cb, trainer = CSVLogger(), make_trainer()
    cb.set_trainer(trainer)
    cb.on_train_begin()
    cb.on_epoch_end(0, dict(WITH_VAL[0]))
    # no on_train_end: a run killed now keeps the row
    assert text(trainer.root / "training.log").splitlines()[1] == "0,0.5,0.9,0.4,1.1"


@pytest.mark.parametrize("begin", [True, False])
@pytest.mark.parametrize("cut", [0, 1, 2])
def test_resume_cuts_rows_past_the_state_and_continues(make_trainer: Any, run: Any, cut: int, begin: bool) -> None:
    seq = [*WITH_VAL, {"loss": 0.6, "accuracy": 0.8, "val_loss": 0.7, "val_accuracy": 0.7}]
    whole = make_trainer()
    run(CSVLogger("whole.log"), whole, seq)
    trainer = make_trainer()
    first = CSVLogger("run.log")
    first.set_trainer(trainer)
    first.on_train_begin()
    for epoch in range(cut):
        first.on_epoch_end(epoch, dict(seq[epoch]))
    state = json.loads(json.dumps(first.state_dict()))
    first.on_epoch_end(cut, dict(seq[cut]))  # written, then killed before the state was saved
    second = CSVLogger("run.log")
    second.load_state_dict(state)
    if not begin:  # a trainer may skip on_train_begin when it resumes
        second.on_train_begin = lambda logs=None: None  # type: ignore[method-assign]
    run(second, trainer, seq[cut:], start=cut)
    assert text(trainer.root / "run.log") == text(trainer.root / "whole.log")


def test_multi_character_separator_is_a_located_config_error() -> None:
    from trainctl.config.callbacks import CSVLogger as Spec

    with pytest.raises(ConfigError) as err:
        build_callbacks([Spec.model_validate({}), Spec.model_validate({"separator": "::"})])
    assert err.value.key == "fit.callbacks[1].separator"
