"""ModelCheckpoint: default paths, safe placeholders, save_best_only against real Keras."""

from __future__ import annotations

import json
from typing import Any

import pytest

from trainctl.config.callbacks import ModelCheckpoint as Spec
from trainctl.errors import ConfigError
from trainctl.training.callbacks import ModelCheckpoint, build_callbacks

SEQ = [
    {"loss": 0.8, "val_loss": 0.6},
    {"loss": 0.6, "val_loss": 0.4},
    {"loss": 0.5, "val_loss": 0.45},
    {"loss": 0.4, "val_loss": 0.3},
]


def saved(trainer: Any) -> list[tuple[str, bool]]:
    return [(str(p.relative_to(trainer.root)), w) for p, w in trainer.saved]


def test_default_paths(make_trainer: Any, run: Any) -> None:
    trainer = make_trainer()
    run(ModelCheckpoint(), trainer, SEQ[:2])
    assert saved(trainer) == [("checkpoints/epoch001", False), ("checkpoints/epoch002", False)]
    assert (trainer.root / "checkpoints").is_dir()
    trainer = make_trainer()
    run(ModelCheckpoint(save_best_only=True, save_weights_only=True), trainer, SEQ)
    # val_loss improves at epochs 0, 1 and 3
    assert saved(trainer) == [("checkpoints/best", True)] * 3


def test_placeholders_format_like_str_format(make_trainer: Any, run: Any) -> None:
    template = "ckpt/{epoch:02d}-{val_loss:.3f}-{loss}-{epoch!r}.pt"
    trainer = make_trainer()
    run(ModelCheckpoint(template), trainer, SEQ)
    expected = [template.format(epoch=i + 1, **logs) for i, logs in enumerate(SEQ)]
    assert [p for p, _ in saved(trainer)] == expected
    assert expected[3] == "ckpt/04-0.300-0.4-4.pt"


@pytest.mark.parametrize(
    "template",
    [
        "m{epoch.__class__}",
        "m{epoch[0]}",
        "m{}",
        "m{0}",
        "m{val_loss:{width}}",
        "m{epoch",
        "m}",
        "m{epoch!x}",
    ],
)
def test_unsafe_or_broken_templates_are_rejected_at_build(template: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_callbacks([Spec(filepath="ok"), Spec(filepath=template)])
    assert err.value.key == "fit.callbacks[1].filepath"


def test_unknown_placeholder_and_bad_spec(make_trainer: Any, run: Any) -> None:
    with pytest.raises(ConfigError) as err:
        run(ModelCheckpoint("m{val_los:.2f}"), make_trainer(), SEQ)
    assert err.value.key == "filepath" and "{val_loss}" in (err.value.hint or "")
    with pytest.raises(ConfigError, match="cannot format"):
        run(ModelCheckpoint("m{val_loss:d}"), make_trainer(), SEQ)


def test_integer_save_freq_is_not_supported_yet() -> None:
    with pytest.raises(ConfigError) as err:
        build_callbacks([Spec(save_freq=100)])
    assert err.value.key == "fit.callbacks[0].save_freq"


def test_initial_value_threshold_and_messages(make_trainer: Any, run: Any) -> None:
    trainer = make_trainer()
    cb = ModelCheckpoint("b", save_best_only=True, initial_value_threshold=0.5, verbose=1)
    run(cb, trainer, SEQ)
    assert len(trainer.saved) == 2 and cb.best == 0.3  # 0.6 and 0.45 do not beat the best
    assert cb.messages[:3] == [
        "Epoch 1: val_loss did not improve from 0.50000",
        "Epoch 2: val_loss improved from 0.50000 to 0.40000, saving model to b",
        "Epoch 2: finished saving model to b",
    ]


@pytest.mark.keras
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"save_best_only": True},
        {"save_best_only": True, "mode": "max"},
        {"save_best_only": True, "initial_value_threshold": 0.42, "save_weights_only": True},
        {"save_best_only": True, "monitor": "loss"},
    ],
)
def test_saves_what_keras_saves(
    keras: Any, make_trainer: Any, keras_model: Any, run: Any, kwargs: dict[str, Any]
) -> None:
    ext = ".weights.h5" if kwargs.get("save_weights_only") else ".keras"
    template = "m{epoch:03d}-{val_loss:.2f}" + ext
    trainer, model = make_trainer(), keras_model()
    ours = ModelCheckpoint(template, **kwargs)
    theirs = keras.callbacks.ModelCheckpoint(template, **kwargs)
    run(ours, trainer, SEQ)
    run(theirs, model, SEQ)
    assert saved(trainer) == model.saved
    assert ours.best == theirs.best


def test_best_survives_json_resume(make_trainer: Any, run: Any) -> None:
    first = ModelCheckpoint(save_best_only=True)
    run(first, make_trainer(), SEQ[:2])
    second, trainer = ModelCheckpoint(save_best_only=True), make_trainer()
    second.load_state_dict(json.loads(json.dumps(first.state_dict(), allow_nan=False)))
    run(second, trainer, SEQ[2:], start=2)
    assert [p.name for p, _ in trainer.saved] == ["best"]  # only epoch 3 (0.3) beats 0.4
