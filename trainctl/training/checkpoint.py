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

    from trainctl.model.augment import generator_states

    # the batch order is a pure function of (seed, epoch) (trainctl.data.batches.Order): no loader state
    rng: dict[str, Any] = {"torch": torch.get_rng_state()}
    if trainer.generator is not None:  # a trainer fed bare Splits shuffles from its own generator
        rng["shuffle"] = trainer.generator.get_state()
    augment = generator_states(trainer.model)  # augmentation layers' own generators
    if augment:
        rng["augment"] = augment
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


def check_state(state: Any, where: Path, epochs: int) -> None:
    """Refuse a crafted or damaged state before any of it is used: an ``epoch`` outside
    ``0..epochs`` would train "Epoch -4/2" and mark the run completed."""
    expected = {
        "epoch": int,
        "stop_training": bool,
        "history": dict,
        "model": dict,
        "optimizer": dict,
        "rng": dict,
        "callbacks": list,
    }
    for key, kind in expected.items():
        value = state.get(key) if isinstance(state, dict) else None
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ArtifactError(
                f"{where}: expected {key!r} to be a {kind.__name__} in the saved state, "
                f"received {type(value).__name__}",
                hint="the state file is damaged; start a new run",
            )
    if not 0 <= state["epoch"] <= epochs:
        raise ArtifactError(
            f"{where}: expected a saved epoch in 0..{epochs} (fit.epochs), received {state['epoch']}",
            hint="the state file is damaged; start a new run",
        )
    if not all(isinstance(v, list) for v in state["history"].values()):
        raise ArtifactError(f"{where}: expected lists of numbers in the saved history", hint="start a new run")
    rng = state["rng"]
    if "torch" not in rng:  # the batch order needs no state: it is a function of (seed, epoch)
        raise ArtifactError(f"{where}: expected the RNG state 'torch' in the saved state")


def load_trainer_state(trainer: Any, state: dict[str, Any], where: Path) -> None:
    import torch

    from trainctl.model.augment import generator_states, set_generator_states

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
        if "augment" in state["rng"] or generator_states(trainer.model):
            set_generator_states(trainer.model, state["rng"].get("augment", {}))
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    except (KeyError, RuntimeError, ValueError, TypeError, IndexError, AttributeError) as exc:
        raise ArtifactError(f"{where}: the saved state does not fit this model ({exc})") from None
    trainer.epoch = int(state["epoch"])
    trainer.stop_training = bool(state["stop_training"])
    trainer.history = {k: list(v) for k, v in state["history"].items()}
