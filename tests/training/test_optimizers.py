"""Keras-rule optimizers: hand-computed trajectories, real Keras 3, clipping, lr, exact resume."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import trainctl.config.compile as cc
from trainctl.errors import ArtifactError, ConfigError
from trainctl.training import optimizers as opt
from trainctl.training.optimizers import KerasOptimizer, build_optimizer

W0 = np.array([0.5, -1.0, 2.0])
GRADS = [np.array([0.1, -0.2, 0.3]), np.array([-0.5, 0.4, 1.0]), np.array([0.05, 0.0, -2.0])]

# ---------------------------------------------------------------------------------------------
# hand references, float64, written from the Keras formulas (one step per gradient)

Ref = Callable[..., list[np.ndarray]]


def ref_sgd(lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0) -> list[np.ndarray]:
    w, m, out = W0.copy(), np.zeros(3), []
    for g in GRADS:
        w = w - w * weight_decay * lr
        m = momentum * m - lr * g
        w = w + (momentum * m - lr * g if nesterov else m)
        out.append(w.copy())
    return out


def ref_adam(lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, weight_decay=0.0):
    w, m, v, v_max, out = W0.copy(), np.zeros(3), np.zeros(3), np.zeros(3), []
    for t, g in enumerate(GRADS, start=1):
        w = w - w * weight_decay * lr
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        v_max = np.maximum(v_max, v)
        second = v_max if amsgrad else v
        w = w - lr * math.sqrt(1 - beta_2**t) / (1 - beta_1**t) * m / (np.sqrt(second) + epsilon)
        out.append(w.copy())
    return out


def ref_rmsprop(lr=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, weight_decay=0.0):
    w, v, avg, mom, out = W0.copy(), np.zeros(3), np.zeros(3), np.zeros(3), []
    for g in GRADS:
        w = w - w * weight_decay * lr
        v = rho * v + (1 - rho) * g * g
        avg = rho * avg + (1 - rho) * g
        inc = lr * g / np.sqrt(v - (avg * avg if centered else 0.0) + epsilon)
        mom = momentum * mom + inc
        w = w - (mom if momentum > 0 else inc)
        out.append(w.copy())
    return out


def ref_adagrad(lr=0.001, initial_accumulator_value=0.1, epsilon=1e-7, weight_decay=0.0):
    w, acc, out = W0.copy(), np.full(3, initial_accumulator_value), []
    for g in GRADS:
        w = w - w * weight_decay * lr
        acc = acc + g * g
        w = w - lr * g / np.sqrt(acc + epsilon)
        out.append(w.copy())
    return out


def ref_adadelta(lr=0.001, rho=0.95, epsilon=1e-7, weight_decay=0.0):
    w, eg, ed, out = W0.copy(), np.zeros(3), np.zeros(3), []
    for g in GRADS:
        w = w - w * weight_decay * lr
        eg = rho * eg + (1 - rho) * g * g
        delta = -np.sqrt(ed + epsilon) / np.sqrt(eg + epsilon) * g
        ed = rho * ed + (1 - rho) * delta * delta
        w = w + lr * delta
        out.append(w.copy())
    return out


def ref_adamax(lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=0.0):
    w, m, u, out = W0.copy(), np.zeros(3), np.zeros(3), []
    for t, g in enumerate(GRADS, start=1):
        w = w - w * weight_decay * lr
        m = beta_1 * m + (1 - beta_1) * g
        u = np.maximum(beta_2 * u, np.abs(g))
        w = w - lr * m / ((1 - beta_1**t) * (u + epsilon))
        out.append(w.copy())
    return out


def ref_nadam(lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=0.0):
    def mu(t: int) -> float:  # Keras 3's momentum cache
        return beta_1 * (1 - 0.5 * 0.96**t)

    w, m, v, prod, out = W0.copy(), np.zeros(3), np.zeros(3), 1.0, []
    for t, g in enumerate(GRADS, start=1):
        w = w - w * weight_decay * lr
        prod = prod * mu(t)
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        m_hat = mu(t + 1) * m / (1 - prod * mu(t + 1)) + (1 - mu(t)) * g / (1 - prod)
        v_hat = v / (1 - beta_2**t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + epsilon)
        out.append(w.copy())
    return out


HAND_CASES: list[tuple[str, dict[str, Any], Ref, dict[str, Any]]] = [
    ("SGD", {}, ref_sgd, {}),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9}, ref_sgd, {"lr": 0.1, "momentum": 0.9}),
    (
        "SGD",
        {"learning_rate": 0.1, "momentum": 0.5, "nesterov": True, "weight_decay": 0.3},
        ref_sgd,
        {"lr": 0.1, "momentum": 0.5, "nesterov": True, "weight_decay": 0.3},
    ),
    ("Adam", {}, ref_adam, {}),
    ("Adam", {"learning_rate": 0.1, "epsilon": 0.1}, ref_adam, {"lr": 0.1, "epsilon": 0.1}),
    (
        "Adam",
        {"learning_rate": 0.1, "amsgrad": True, "beta_2": 0.5, "weight_decay": 0.2},
        ref_adam,
        {"lr": 0.1, "amsgrad": True, "beta_2": 0.5, "weight_decay": 0.2},
    ),
    ("AdamW", {"learning_rate": 0.1}, ref_adam, {"lr": 0.1, "weight_decay": 0.004}),
    ("RMSprop", {}, ref_rmsprop, {}),
    ("RMSprop", {"learning_rate": 0.1, "epsilon": 0.1}, ref_rmsprop, {"lr": 0.1, "epsilon": 0.1}),
    (
        "RMSprop",
        {"learning_rate": 0.1, "momentum": 0.8, "centered": True, "weight_decay": 0.1},
        ref_rmsprop,
        {"lr": 0.1, "momentum": 0.8, "centered": True, "weight_decay": 0.1},
    ),
    ("Adagrad", {}, ref_adagrad, {}),
    (
        "Adagrad",
        {"learning_rate": 0.5, "initial_accumulator_value": 0.0, "epsilon": 0.1},
        ref_adagrad,
        {"lr": 0.5, "initial_accumulator_value": 0.0, "epsilon": 0.1},
    ),
    ("Adadelta", {}, ref_adadelta, {}),
    (
        "Adadelta",
        {"learning_rate": 1.0, "rho": 0.5, "epsilon": 1e-3, "weight_decay": 0.1},
        ref_adadelta,
        {"lr": 1.0, "rho": 0.5, "epsilon": 1e-3, "weight_decay": 0.1},
    ),
    ("Adamax", {}, ref_adamax, {}),
    ("Adamax", {"learning_rate": 0.1, "epsilon": 0.1}, ref_adamax, {"lr": 0.1, "epsilon": 0.1}),
    ("Nadam", {}, ref_nadam, {}),
    (
        "Nadam",
        {"learning_rate": 0.1, "beta_1": 0.5, "epsilon": 0.1, "weight_decay": 0.1},
        ref_nadam,
        {"lr": 0.1, "beta_1": 0.5, "epsilon": 0.1, "weight_decay": 0.1},
    ),
]


def _run(name: str, kwargs: dict[str, Any], dtype: torch.dtype) -> list[np.ndarray]:
    p = torch.nn.Parameter(torch.tensor(W0, dtype=dtype))
    optimizer = build_optimizer(getattr(cc, name)(**kwargs), [p])
    out = []
    for g in GRADS:
        p.grad = torch.tensor(g, dtype=dtype)
        optimizer.step()
        out.append(p.detach().double().numpy().copy())
    return out


@pytest.mark.parametrize(("dtype", "rtol", "atol"), [(torch.float64, 1e-9, 1e-12), (torch.float32, 1e-5, 1e-6)])
@pytest.mark.parametrize(("name", "kwargs", "ref", "ref_kwargs"), HAND_CASES)
def test_matches_hand_computed_trajectory(
    name: str, kwargs: dict[str, Any], ref: Ref, ref_kwargs: dict[str, Any], dtype, rtol, atol
) -> None:
    expected = ref(**ref_kwargs)
    got = _run(name, kwargs, dtype)
    for step, (e, g) in enumerate(zip(expected, got, strict=True)):
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, err_msg=f"step {step + 1}")
    assert not np.array_equal(got[-1], W0)  # the comparison is not vacuous


def test_large_epsilon_follows_keras_not_torch() -> None:
    # one step from w=1, g=1, lr=0.1, eps=0.1, written out: Keras adds eps to the *uncorrected*
    # sqrt(v) (Adam) and puts eps inside the root (RMSprop); torch does neither.
    b1, b2, lr, eps = 0.9, 0.999, 0.1, 0.1
    adam_keras = 1 - lr * math.sqrt(1 - b2) / (1 - b1) * (1 - b1) / (math.sqrt(1 - b2) + eps)
    rms_keras = 1 - lr / math.sqrt(0.1 + eps)  # v = (1 - rho) * g^2 = 0.1
    for name, torch_cls, torch_kwargs, expected in [
        ("Adam", torch.optim.Adam, {"eps": eps}, adam_keras),
        ("RMSprop", torch.optim.RMSprop, {"alpha": 0.9, "eps": eps}, rms_keras),
    ]:
        ours = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
        theirs = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
        ours.grad, theirs.grad = torch.ones_like(ours), torch.ones_like(theirs)
        build_optimizer(getattr(cc, name)(learning_rate=lr, epsilon=eps), [ours]).step()
        torch_cls([theirs], lr=lr, **torch_kwargs).step()
        assert ours.item() == pytest.approx(expected, rel=1e-12)
        assert abs(theirs.item() - expected) > 1e-3


# ---------------------------------------------------------------------------------------------
# real Keras 3 (torch backend): same 5 gradient steps on two variables


def _keras_schedule(keras: Any, spec: Any) -> Any:
    kwargs = spec.kwargs()
    return getattr(keras.optimizers.schedules, spec.type)(**kwargs)


KERAS_CASES: list[tuple[str, dict[str, Any]]] = [
    (name, {}) for name in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam")
] + [
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("SGD", {"momentum": 0.5, "clipnorm": 0.5}),
    ("Adam", {"learning_rate": 0.05, "epsilon": 0.1, "amsgrad": True, "clipvalue": 0.4}),
    ("AdamW", {"weight_decay": 0.3, "beta_1": 0.5, "global_clipnorm": 1.0}),
    ("RMSprop", {"learning_rate": 0.01, "momentum": 0.9, "centered": True, "epsilon": 0.1}),
    ("Adagrad", {"learning_rate": 0.1, "initial_accumulator_value": 0.5, "weight_decay": 0.05}),
    ("Adadelta", {"learning_rate": 1.0, "rho": 0.9, "epsilon": 1e-3}),
    ("Adamax", {"learning_rate": 0.05, "beta_2": 0.9, "epsilon": 0.1}),
    ("Nadam", {"learning_rate": 0.05, "beta_1": 0.8, "epsilon": 0.1, "weight_decay": 0.05}),
    # schedules are read at `iterations`, and weight decay uses the scheduled rate
    (
        "Adam",
        {
            "learning_rate": {
                "type": "ExponentialDecay",
                "initial_learning_rate": 0.1,
                "decay_steps": 2,
                "decay_rate": 0.5,
            }
        },
    ),
    (
        "SGD",
        {
            "weight_decay": 0.5,
            "learning_rate": {
                "type": "CosineDecay",
                "initial_learning_rate": 0.0,
                "decay_steps": 3,
                "warmup_target": 0.2,
                "warmup_steps": 2,
            },
        },
    ),
]


@pytest.mark.keras
@pytest.mark.parametrize(("name", "kwargs"), KERAS_CASES)
def test_matches_real_keras(keras: Any, name: str, kwargs: dict[str, Any]) -> None:
    spec = getattr(cc, name)(**kwargs)
    keras_kwargs = dict(kwargs)
    if not isinstance(spec.learning_rate, float):
        keras_kwargs["learning_rate"] = _keras_schedule(keras, spec.learning_rate)
    keras_opt = getattr(keras.optimizers, name)(**keras_kwargs)

    rng = np.random.default_rng(7)
    init = [rng.normal(size=(3,)).astype(np.float32), rng.normal(size=(2, 4)).astype(np.float32)]
    grads = [[(2 * rng.normal(size=w.shape)).astype(np.float32) for w in init] for _ in range(5)]
    variables = [keras.Variable(w.copy()) for w in init]
    params = [torch.nn.Parameter(torch.tensor(w)) for w in init]
    ours = build_optimizer(spec, params)
    for step in grads:
        keras_opt.apply_gradients([(keras.ops.convert_to_tensor(g), v) for g, v in zip(step, variables, strict=True)])
        for p, g in zip(params, step, strict=True):
            p.grad = torch.tensor(g)
        ours.step()
    assert ours.iterations == int(keras.ops.convert_to_numpy(keras_opt.iterations)) == 5
    assert ours.learning_rate == pytest.approx(float(keras.ops.convert_to_numpy(keras_opt.learning_rate)))
    for v, p, w in zip(variables, params, init, strict=True):
        expected = keras.ops.convert_to_numpy(v)
        assert not np.allclose(expected, w)
        np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-5, atol=1e-7)


@pytest.mark.keras
@pytest.mark.parametrize("name", sorted(opt.OPTIMIZERS))
def test_spec_defaults_are_keras_defaults(keras: Any, name: str) -> None:
    keras_config = getattr(keras.optimizers, name)().get_config()
    ours = build_optimizer(getattr(cc, name)(), [torch.nn.Parameter(torch.zeros(1))])
    assert ours.learning_rate == pytest.approx(keras_config["learning_rate"])
    assert ours.weight_decay == keras_config["weight_decay"]
    for key, value in ours.param_groups[0].items():
        if key != "params":
            assert keras_config[key] == pytest.approx(value), key


# ---------------------------------------------------------------------------------------------
# clipping (SGD with lr=1, so each weight moves by exactly minus its clipped gradient)


def _clipped_step(grads: list[list[float]], **clip: float) -> list[np.ndarray]:
    params = [torch.nn.Parameter(torch.zeros(len(g), dtype=torch.float64)) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = torch.tensor(g, dtype=torch.float64)
    build_optimizer(cc.SGD(learning_rate=1.0, **clip), params).step()
    return [-p.detach().numpy() for p in params]


def test_clipnorm_clips_each_tensor_by_its_own_norm() -> None:
    big, small, zero = _clipped_step([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]], clipnorm=1.0)
    np.testing.assert_allclose(big, [0.6, 0.8])  # norm 5 -> 1
    np.testing.assert_allclose(small, [0.3, 0.4])  # norm 0.5 <= 1: untouched
    np.testing.assert_array_equal(zero, [0.0, 0.0])  # no NaN from 0/0


def test_global_clipnorm_scales_all_tensors_together() -> None:
    a, b = _clipped_step([[3.0, 4.0], [12.0]], global_clipnorm=2.6)  # global norm 13 -> scale 0.2
    np.testing.assert_allclose(a, [0.6, 0.8])
    np.testing.assert_allclose(b, [2.4])
    a, b = _clipped_step([[3.0, 4.0], [12.0]], global_clipnorm=20.0)
    np.testing.assert_allclose(a, [3.0, 4.0])
    np.testing.assert_allclose(b, [12.0])
    a, b = _clipped_step([[math.inf, 1.0], [1.0]], global_clipnorm=1.0)  # Keras: NaN, not silence
    assert np.isnan(a).all() and np.isnan(b).all()


def test_clipvalue_clips_elementwise() -> None:
    (a,) = _clipped_step([[-2.0, -0.1, 0.2, 0.7]], clipvalue=0.5)
    np.testing.assert_allclose(a, [-0.5, -0.1, 0.2, 0.5])


def test_clipping_leaves_grad_attribute_alone() -> None:
    p = torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.tensor([3.0, 4.0])
    build_optimizer(cc.SGD(clipnorm=1.0), [p]).step()
    assert p.grad.tolist() == [3.0, 4.0]


# ---------------------------------------------------------------------------------------------
# learning rate, iterations and parameters without gradients


def test_schedule_is_read_at_iterations_before_the_update() -> None:
    # boundaries are inclusive: step 0 uses 1.0, steps >= 1 use 0.1
    schedule = {"type": "PiecewiseConstantDecay", "boundaries": [0], "values": [1.0, 0.1]}
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    optimizer = build_optimizer(cc.SGD(learning_rate=schedule), [p])
    assert optimizer.learning_rate == 1.0
    p.grad = torch.ones_like(p)
    optimizer.step()
    assert p.item() == pytest.approx(-1.0)
    assert optimizer.learning_rate == 0.1
    optimizer.step()
    assert p.item() == pytest.approx(-1.1)
    assert optimizer.iterations == 2


def test_learning_rate_setter() -> None:
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    optimizer = build_optimizer(cc.SGD(), [p])
    optimizer.learning_rate = 0.5
    p.grad = torch.ones_like(p)
    optimizer.step()
    assert p.item() == pytest.approx(-0.5)

    schedule = {"type": "ExponentialDecay", "initial_learning_rate": 0.1, "decay_steps": 1, "decay_rate": 0.5}
    scheduled = build_optimizer(cc.Adam(learning_rate=schedule), [p])
    with pytest.raises(ConfigError) as err:
        scheduled.learning_rate = 0.01
    assert err.value.key == "compile.optimizer.learning_rate"
    assert scheduled.learning_rate == 0.1


def test_parameters_without_gradient_are_untouched() -> None:
    used = torch.nn.Parameter(torch.ones(2))
    unused = torch.nn.Parameter(torch.ones(2))
    optimizer = build_optimizer(cc.AdamW(weight_decay=0.5, learning_rate=0.1), [used, unused])
    used.grad = torch.ones(2)
    optimizer.step()
    assert unused.tolist() == [1.0, 1.0]  # neither decayed nor updated, as Keras filters None grads
    assert not optimizer.state[unused]
    assert used[0].item() < 0.95


def test_unknown_argument_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        opt.Adam([torch.nn.Parameter(torch.zeros(1))], momentum=0.9)
    with pytest.raises(ConfigError):
        opt.SGD([torch.nn.Parameter(torch.zeros(1))], clipnorm=1.0, clipvalue=1.0)


# ---------------------------------------------------------------------------------------------
# exact resume


RESUME_CASES = [
    cc.SGD(momentum=0.9, nesterov=True, weight_decay=0.01),
    cc.Adam(amsgrad=True, clipnorm=1.0),
    cc.AdamW(
        learning_rate={
            "type": "CosineDecay",
            "initial_learning_rate": 0.01,
            "decay_steps": 5,
            "warmup_target": 0.1,
            "warmup_steps": 2,
        }
    ),
    cc.RMSprop(momentum=0.5, centered=True),
    cc.Adagrad(global_clipnorm=0.5),
    cc.Adadelta(learning_rate=1.0),
    cc.Adamax(clipvalue=0.3),
    cc.Nadam(weight_decay=0.1),
]


def _model_params(seed: int = 0) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(seed)
    return [
        torch.nn.Parameter(torch.randn(4, 3, generator=gen)),
        torch.nn.Parameter(torch.randn(3, generator=gen)),
    ]


def _steps(optimizer: KerasOptimizer, params: list[torch.nn.Parameter], start: int, stop: int) -> None:
    for i in range(start, stop):
        gen = torch.Generator().manual_seed(100 + i)
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen)
        optimizer.step()


@pytest.mark.parametrize("spec", RESUME_CASES, ids=lambda s: s.type)
def test_state_dict_round_trip_is_bit_identical(spec: Any) -> None:
    straight = _model_params()
    straight_opt = build_optimizer(spec, straight)
    _steps(straight_opt, straight, 0, 2)
    if straight_opt.schedule is None:
        straight_opt.learning_rate = 0.003
    _steps(straight_opt, straight, 2, 6)

    first = _model_params()
    first_opt = build_optimizer(spec, first)
    _steps(first_opt, first, 0, 2)
    if first_opt.schedule is None:
        first_opt.learning_rate = 0.003  # as ReduceLROnPlateau would; must survive the resume
    _steps(first_opt, first, 2, 3)
    buffer = io.BytesIO()
    torch.save({"params": [p.detach() for p in first], "optimizer": first_opt.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)

    resumed = [torch.nn.Parameter(t.clone()) for t in saved["params"]]
    resumed_opt = build_optimizer(spec, resumed)
    resumed_opt.load_state_dict(saved["optimizer"])
    assert resumed_opt.iterations == 3
    _steps(resumed_opt, resumed, 3, 6)
    for a, b in zip(straight, resumed, strict=True):
        assert torch.equal(a, b)
    assert resumed_opt.learning_rate == straight_opt.learning_rate


def test_loading_a_plain_torch_state_is_refused() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    state = torch.optim.Adam([p]).state_dict()
    with pytest.raises(ArtifactError):
        build_optimizer(cc.Adam(), [p]).load_state_dict(state)


def test_loaded_state_follows_the_parameters_dtype_and_refuses_other_groups() -> None:
    p64 = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    first = build_optimizer(cc.Adam(), [p64])
    p64.grad = torch.ones(3, dtype=torch.float64)
    first.step()
    p32 = torch.nn.Parameter(torch.zeros(3))
    second = build_optimizer(cc.Adam(), [p32])
    second.load_state_dict(first.state_dict())
    assert second.state[p32]["momentum"].dtype == torch.float32
    # one step of Adam from m=0: m = (1 - beta_1) * g
    np.testing.assert_allclose(second.state[p32]["momentum"].numpy(), [0.1] * 3, rtol=1e-6)
    with pytest.raises(ValueError, match="parameter groups"):
        build_optimizer(cc.Adam(), [p32, torch.nn.Parameter(torch.zeros(1))]).load_state_dict(first.state_dict())


def test_param_groups_take_defaults_and_zero_grad_keeps_or_drops_gradients() -> None:
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    optimizer = build_optimizer(cc.SGD(momentum=0.5), [{"params": [a]}, {"params": [b], "momentum": 0.0}])
    assert [g["momentum"] for g in optimizer.param_groups] == [0.5, 0.0]
    a.grad, b.grad = torch.ones(2), torch.ones(2)
    optimizer.zero_grad(set_to_none=False)
    assert a.grad is not None and torch.equal(a.grad, torch.zeros(2))
    optimizer.zero_grad()
    assert a.grad is None and b.grad is None
    with pytest.raises(ValueError, match="more than one"):
        build_optimizer(cc.SGD(), [{"params": [a]}, {"params": [a]}])


def test_a_model_without_weights_steps_as_a_no_op() -> None:
    optimizer = build_optimizer(cc.Adam(), [])
    optimizer.step()
    assert optimizer.iterations == 0  # Keras skips apply_gradients without gradients too


def test_grad_scaler_drives_it_like_a_torch_optimizer() -> None:
    """16-mixed uses torch.amp.GradScaler; on CPU the same calls check our duck-typed contract."""
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    optimizer = build_optimizer(cc.SGD(learning_rate=0.5), [p])
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    scaler.scale((p * torch.tensor([1.0, -2.0])).sum()).backward()
    scaler.unscale_(optimizer)
    assert torch.equal(p.grad, torch.tensor([1.0, -2.0]))  # true gradients, unscaled
    scaler.step(optimizer)
    scaler.update()
    assert torch.equal(p.detach(), torch.tensor([0.5, 3.0]))  # w - 0.5 * g
    optimizer.zero_grad()
    scaler.scale(p.sum() * float("inf")).backward()
    scaler.step(optimizer)  # an inf gradient: the step is skipped and the scale halves
    scaler.update()
    assert torch.equal(p.detach(), torch.tensor([0.5, 3.0]))
    assert scaler.get_scale() == 512.0


def test_building_an_optimizer_does_not_import_dynamo() -> None:
    """torch.optim.Optimizer imports torch._dynamo on construction: ~2 s before the first step."""
    import subprocess
    import sys

    code = (
        "import sys, torch, trainctl.config.compile as cc;"
        "from trainctl.training.optimizers import build_optimizer;"
        "p = torch.nn.Parameter(torch.ones(2)); o = build_optimizer(cc.Adam(), [p]);"
        "p.sum().backward(); o.step(); o.zero_grad(); o.load_state_dict(o.state_dict());"
        "print('torch._dynamo' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.cuda
def test_cuda_step_keeps_state_on_device_without_host_sync() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    for spec in RESUME_CASES:
        params = [p.cuda() for p in _model_params()]
        params = [torch.nn.Parameter(p.detach()) for p in params]
        optimizer = build_optimizer(spec, params)
        for p in params:
            p.grad = torch.ones_like(p)
        optimizer.step()  # warm-up: state creation may allocate
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            optimizer.step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
        states = [t for s in optimizer.state.values() for t in s.values() if isinstance(t, torch.Tensor)]
        assert all(t.is_cuda for t in states)
