"""The trainer's full state for exact resume: weights, optimizer, every RNG, callbacks, history.

``trainctl.serialization.state`` stores it (safetensors + JSON, no pickle); this module decides
what goes in, so that a resumed run continues bit-identically on CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainctl.errors import ArtifactError


def trainer_state(trainer: Any) -> dict[str, Any]:
    import torch

    # the batch order is a pure function of (seed, epoch) (trainctl.data.batches.Order): no loader state
    rng: dict[str, Any] = {"torch": torch.get_rng_state()}
    if trainer.generator is not None:  # a trainer fed bare Splits shuffles from its own generator
        rng["shuffle"] = trainer.generator.get_state()
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return {
        "epoch": trainer.epoch,
        "stop_training": trainer.stop_training,
        "history": trainer.history,
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "rng": rng,
        "callbacks": [cb.state_dict() for cb in trainer.callbacks],
        # EarlyStopping(restore_best_weights) keeps tensors outside its JSON state
        "best_weights": [getattr(cb, "best_weights", None) or {} for cb in trainer.callbacks],
    } | ({"grad_scaler": trainer.scaler.state_dict()} if getattr(trainer, "scaler", None) is not None else {})


def load_trainer_state(trainer: Any, state: dict[str, Any], where: Path) -> None:
    import torch

    try:
        trainer.model.load_state_dict(state["model"])
        trainer.optimizer.load_state_dict(state["optimizer"])
        if len(state["callbacks"]) != len(trainer.callbacks):
            raise ArtifactError(
                f"{where}: saved {len(state['callbacks'])} callback states, the config has "
                f"{len(trainer.callbacks)} callbacks"
            )
        best = state.get("best_weights") or [{}] * len(trainer.callbacks)
        for cb, cb_state, weights in zip(trainer.callbacks, state["callbacks"], best, strict=True):
            cb.set_trainer(trainer)
            cb.load_state_dict(cb_state)
            if weights:
                cb.best_weights = weights  # type: ignore[attr-defined]
        if getattr(trainer, "scaler", None) is not None and "grad_scaler" in state:
            trainer.scaler.load_state_dict(state["grad_scaler"])  # 16-mixed: the loss scale it reached
        torch.set_rng_state(state["rng"]["torch"])
        if trainer.generator is not None and "shuffle" in state["rng"]:
            trainer.generator.set_state(state["rng"]["shuffle"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise ArtifactError(f"{where}: the saved state does not fit this model ({exc})") from None
    trainer.epoch = int(state["epoch"])
    trainer.stop_training = bool(state["stop_training"])
    trainer.history = {k: list(v) for k, v in state["history"].items()}
