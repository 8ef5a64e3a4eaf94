"""``trainctl.importer`` against REAL Keras 3 (torch backend).

Every expectation comes from Keras: the predictions of the model Keras trained, the compile
arguments we handed Keras, ``keras.__version__``, and Keras reading back the run folder we wrote.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
layers = keras.layers

from keras.src.legacy.saving import legacy_h5_format  # noqa: E402

from trainctl.config import load_config  # noqa: E402
from trainctl.data import Preprocessor  # noqa: E402
from trainctl.errors import ArtifactError, ConfigError, DataError  # noqa: E402
from trainctl.importer import ImportedConfig, import_keras, load_resolved, read_keras_model  # noqa: E402
from trainctl.serialization import load_keras_zip, load_model_from_dir, read_keras_zip  # noqa: E402

pytestmark = pytest.mark.keras

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 6)).astype("float32")
Y = np.eye(3, dtype="float32")[RNG.integers(0, 3, 40)]


def _ours(run: Path, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return load_model_from_dir(run)(torch.from_numpy(x)).numpy()


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A Keras MLP fitted for one epoch, saved in every form Keras writes."""
    keras.utils.set_random_seed(1)
    km = keras.Sequential(
        [keras.Input((6,)), layers.Dense(5, activation="relu"), layers.Dropout(0.1),
         layers.Dense(3, activation="softmax")],
        name="keras_mlp",
    )  # fmt: skip
    km.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy", metrics=["accuracy"])
    km.fit(X, Y, epochs=1, batch_size=8, verbose=0)
    d = tmp_path_factory.mktemp("keras")
    km.save(d / "m.keras")
    km.save(d / "m.h5")
    km.save_weights(d / "m.weights.h5")
    (d / "m.json").write_text(km.to_json())
    import h5py

    with h5py.File(d / "legacy_weights.h5", "w") as f:  # tf-keras's save_weights("x.h5") layout
        legacy_h5_format.save_weights_to_hdf5_group(f, km)
    return {"km": km, "dir": d, "want": km.predict(X, verbose=0)}


FORMS = {
    "keras": (["m.keras"], "keras"),
    "h5": (["m.h5"], "h5"),
    "json_native": (["m.json", "m.weights.h5"], "json+weights"),
    "json_legacy": (["m.json", "legacy_weights.h5"], "json+weights"),
}


@pytest.mark.parametrize("form", list(FORMS))
def test_import_predicts_like_keras(saved: dict[str, Any], form: str, tmp_path: Path) -> None:
    names, fmt = FORMS[form]
    out = tmp_path / "run"
    result = import_keras([saved["dir"] / n for n in names], out)
    assert result.source.format == fmt
    assert np.abs(_ours(out, X) - saved["want"]).max() <= 1e-5
    # the run folder we wrote is Keras's model again
    back = keras.models.load_model(out / "model.h5")
    assert np.abs(back.predict(X, verbose=0) - saved["want"]).max() <= 1e-5
    assert back.count_params() == saved["km"].count_params()

    cfg = load_resolved(out / "config.resolved.yaml").config
    assert isinstance(cfg, ImportedConfig) and cfg.data is None
    assert cfg.compile.loss.type == "categorical_crossentropy"
    assert [m.name for m in cfg.compile.metrics] == ["accuracy"]
    if form == "h5":  # only the legacy file keeps the optimizer (Keras-on-torch leaves it out of compile_config)
        assert cfg.compile.optimizer.type == "Adam" and cfg.compile.optimizer.learning_rate == 0.01

    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "imported" and run["imported"] is True and run["data"] is None
    assert run["format_version"] == 1
    assert run["source"]["format"] == fmt
    if form in ("keras", "h5"):
        assert run["keras_version"] == keras.__version__
    pre = Preprocessor.from_json(json.loads((out / "preprocess.json").read_text()))
    np.testing.assert_array_equal(pre.transform_x(X), X)
    assert "Total params: 53" in (out / "summary.txt").read_text()  # 6*5+5 + 5*3+3, by hand


def test_layer_names_and_frozen_layers_survive(tmp_path: Path) -> None:
    km = keras.Sequential(
        [keras.Input((4,)), layers.Dense(3, name="hidden", trainable=False), layers.Dense(2, name="out")]
    )
    km.save(tmp_path / "k.keras")
    import_keras([tmp_path / "k.keras"], tmp_path / "run", loss="mse")
    back = keras.models.load_model(tmp_path / "run" / "model.h5")
    assert [la.name for la in back.layers] == ["hidden", "out"]
    assert [la.trainable for la in back.layers] == [False, True]


def test_training_config_becomes_the_compile_section(tmp_path: Path) -> None:
    km = keras.Sequential([keras.Input((6,)), layers.Dense(3)])
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    km.compile(
        optimizer=keras.optimizers.SGD(learning_rate=schedule, momentum=0.9, nesterov=True),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
        metrics=["acc", keras.metrics.AUC(num_thresholds=50), keras.metrics.TopKCategoricalAccuracy(k=2)],
    )
    km.save(tmp_path / "k.h5")
    comp = import_keras([tmp_path / "k.h5"], tmp_path / "run").config.compile
    assert comp.loss.type == "categorical_crossentropy"
    assert comp.loss.from_logits is True and comp.loss.label_smoothing == pytest.approx(0.1)
    assert [(m.type, m.name) for m in comp.metrics] == [
        ("accuracy", "acc"),
        ("auc", "auc"),
        ("top_k_categorical_accuracy", "top_k_categorical_accuracy"),
    ]
    assert comp.metrics[1].num_thresholds == 50 and comp.metrics[2].k == 2
    opt = comp.optimizer
    assert (opt.type, opt.momentum, opt.nesterov) == ("SGD", 0.9, True)
    lr = opt.learning_rate
    assert (lr.type, lr.initial_learning_rate, lr.decay_steps, lr.decay_rate) == ("ExponentialDecay", 0.1, 10, 0.5)
    # the resolved config is a config trainctl reads back
    text = (tmp_path / "run" / "config.resolved.yaml").read_text()
    text = text.replace("\ndata: null\n", "\ndata: {source: synthetic, kind: random}\n")
    assert load_config(None, text=text).config.compile == comp


def test_function_losses_from_keras_json(tmp_path: Path) -> None:
    km = keras.Sequential([keras.Input((2,)), layers.Dense(1)])
    km.compile(optimizer="sgd", loss=keras.losses.mean_squared_error, metrics=[keras.metrics.mean_absolute_error])
    (tmp_path / "k.json").write_text(km.to_json())
    km.save_weights(tmp_path / "k.weights.h5")
    comp = import_keras([tmp_path / "k.json", tmp_path / "k.weights.h5"], tmp_path / "run").config.compile
    assert comp.loss.type == "mean_squared_error"
    assert [(m.type, m.name) for m in comp.metrics] == [("mean_absolute_error", "mean_absolute_error")]


def test_flags_replace_the_files_settings(saved: dict[str, Any], tmp_path: Path) -> None:
    comp = import_keras(
        [saved["dir"] / "m.h5"], tmp_path / "run", loss="mse", metrics=["mae", "acc"], optimizer="sgd"
    ).config.compile
    assert comp.loss.type == "mean_squared_error"
    assert [m.name for m in comp.metrics] == ["mae", "acc"]
    assert comp.optimizer.type == "SGD" and comp.optimizer.learning_rate == 0.01  # Keras's SGD default


def test_uncompiled_model_imports_without_a_loss_and_evaluate_asks_for_one(tmp_path: Path) -> None:
    from trainctl.evaluation import evaluate, predict

    km = keras.Sequential([keras.Input((3,)), layers.Dense(2)])
    km.save(tmp_path / "k.keras")
    result = import_keras([tmp_path / "k.keras"], tmp_path / "run")
    assert result.config.compile.loss is None
    x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    predict(tmp_path / "run", tmp_path / "x.npy", tmp_path / "out.npy", mode="raw")
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), km.predict(x, verbose=0), atol=1e-5)
    with pytest.raises(ConfigError) as err:
        evaluate(tmp_path / "run", data=tmp_path / "x.npy")
    assert err.value.key == "compile.loss" and "--loss" in (err.value.hint or "")
    comp = import_keras([tmp_path / "k.keras"], tmp_path / "run2", loss="huber").config.compile
    assert comp.loss.type == "huber" and comp.metrics == []


def test_bad_flag_is_a_config_error_with_a_guess(saved: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        import_keras([saved["dir"] / "m.h5"], tmp_path / "run", loss="categorical_crossentropyy")
    assert err.value.problems[0].key == "--loss"
    assert "categorical_crossentropy" in err.value.render()


def test_from_logits_against_a_softmax_layer_is_refused(saved: dict[str, Any], tmp_path: Path) -> None:
    km = keras.Sequential([keras.Input((3,)), layers.Dense(2, activation="softmax")])
    km.compile(loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    km.save(tmp_path / "k.h5")
    with pytest.raises(ConfigError, match="from_logits"):
        import_keras([tmp_path / "k.h5"], tmp_path / "run")


def _unsupported(case: str) -> tuple[Any, list[str]]:
    """A Keras model using something trainctl lacks, and the words the refusal must contain."""
    km = keras.Sequential([keras.Input((4,)), layers.Dense(2)])
    if case == "layer":
        km = keras.Sequential(
            [keras.Input((8, 8, 1)), layers.GaussianNoise(0.1, name="noise"), layers.Flatten(), layers.Dense(2)]
        )
        return km, ["GaussianNoise", "'noise'"]
    if case == "layer_option":
        km = keras.Sequential([keras.Input((4,)), layers.Dense(2, kernel_constraint="non_neg", name="dense_nn")])
        return km, ["kernel_constraint", "'dense_nn'"]
    if case == "optimizer_option":
        km.compile(optimizer=keras.optimizers.Adam(use_ema=True), loss="mse")
        return km, ["use_ema=True", "Adam"]
    km.compile(optimizer="adam", loss="squared_hinge")
    return km, ["squared_hinge"]


@pytest.mark.parametrize("case", ["layer", "layer_option", "optimizer_option", "loss"])
def test_unsupported_is_refused_by_name(case: str, tmp_path: Path) -> None:
    km, words = _unsupported(case)
    km.save(tmp_path / "k.h5")
    with pytest.raises(ArtifactError) as err:
        import_keras([tmp_path / "k.h5"], tmp_path / "run", loss="mse" if case.startswith("layer") else None)
    for word in words:
        assert word in err.value.render()
    assert "k.h5" in err.value.render()
    assert not (tmp_path / "run").exists() and list(tmp_path.iterdir()) == [tmp_path / "k.h5"]


def test_flag_replaces_an_unsupported_optimizer(tmp_path: Path) -> None:
    km, _ = _unsupported("optimizer_option")
    km.save(tmp_path / "k.h5")
    assert import_keras([tmp_path / "k.h5"], tmp_path / "run", optimizer="adam").config.compile.optimizer.type == "Adam"


def test_out_must_be_new_or_empty(saved: dict[str, Any], tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError) as err:
        import_keras([saved["dir"] / "m.h5"], full)
    assert err.value.key == "--out" and (full / "keep.txt").read_text() == "mine"
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError):
        import_keras([saved["dir"] / "m.h5"], tmp_path / "afile")
    empty = tmp_path / "empty"
    empty.mkdir()
    import_keras([saved["dir"] / "m.h5"], empty)
    assert (empty / "model.weights.h5").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["m.json"], "weights"),
        (["m.weights.h5"], "weights only"),
        (["legacy_weights.h5"], "weights only"),
        (["m.keras", "m.h5"], "expected one of"),
        (["m.txt"], "expected .keras"),
    ],
)
def test_file_combinations_are_checked(saved: dict[str, Any], names: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        read_keras_model([saved["dir"] / n for n in names])


def test_missing_and_mismatched_files(saved: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not found"):
        read_keras_model([tmp_path / "nope.keras"])
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(ArtifactError, match="expected an HDF5 file"):
        read_keras_model([tmp_path / "junk.h5"])
    other = keras.Sequential([keras.Input((6,)), layers.Dense(4), layers.Dense(3)])
    other.save_weights(tmp_path / "o.weights.h5")
    with pytest.raises(ArtifactError, match="shape"):
        read_keras_model([saved["dir"] / "m.json", tmp_path / "o.weights.h5"])


# ---------------------------------------------------------------------------------------------
# .keras archives


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_load_keras_zip(saved: dict[str, Any], tmp_path: Path) -> None:
    model = load_keras_zip(saved["dir"] / "m.keras")
    with torch.no_grad():
        assert np.abs(model(torch.from_numpy(X)).numpy() - saved["want"]).max() <= 1e-5
    archive = read_keras_zip(saved["dir"] / "m.keras", tmp_path)
    assert archive.keras_version == keras.__version__
    assert archive.weights == tmp_path / "model.weights.h5" and archive.weights.is_file()


@pytest.mark.parametrize("bad", ["../evil.txt", "/etc/evil", "a/../../evil", "C:/evil", "a\\..\\evil"])
def test_zip_with_escaping_member_is_refused(saved: dict[str, Any], bad: str, tmp_path: Path) -> None:
    with zipfile.ZipFile(saved["dir"] / "m.keras") as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    path = _zip(tmp_path / "x.keras", members | {bad: b"boom"})
    out = tmp_path / "dest"
    out.mkdir()
    with pytest.raises(ArtifactError, match=r"absolute or contain '\.\.'"):
        read_keras_zip(path, out)
    assert list(out.iterdir()) == []


def test_zip_problems_are_artifact_errors(saved: dict[str, Any], tmp_path: Path) -> None:
    config = (saved["dir"] / "m.json").read_bytes()
    with pytest.raises(ArtifactError, match=r"model\.weights\.h5"):
        read_keras_zip(_zip(tmp_path / "a.keras", {"config.json": config}), tmp_path)
    (tmp_path / "b.keras").write_bytes(b"not a zip at all")
    with pytest.raises(ArtifactError, match="not a zip"):
        read_keras_zip(tmp_path / "b.keras", tmp_path)
    cut = (saved["dir"] / "m.keras").read_bytes()
    (tmp_path / "c.keras").write_bytes(cut[: len(cut) // 2] + cut[-200:])
    with pytest.raises(ArtifactError):
        load_keras_zip(tmp_path / "c.keras")


# ---------------------------------------------------------------------------------------------
# --data-config


def _data_config(tmp_path: Path, features: int = 6) -> Path:
    for split, n in (("", 30), ("_test", 20)):
        np.save(tmp_path / f"x{split}.npy", RNG.normal(3.0, 2.0, size=(n, features)).astype("float32"))
        np.save(tmp_path / f"y{split}.npy", RNG.integers(0, 3, n))
    path = tmp_path / "data.yaml"
    path.write_text(
        "seed: 5\ndata:\n  source: npy\n  x: x.npy\n  y: y.npy\n  x_test: x_test.npy\n  y_test: y_test.npy\n"
        "  x_steps: [standardize]\n  y_steps: [{one_hot: 3}]\n"
    )
    return path


def test_data_config_makes_a_full_run_config(saved: dict[str, Any], tmp_path: Path) -> None:
    folder = tmp_path / "cfg"
    folder.mkdir()
    path = _data_config(folder)
    out = tmp_path / "run"
    assert import_keras([saved["dir"] / "m.keras"], out, data_config=path).has_data
    cfg = load_config(out / "config.resolved.yaml").config  # a plain, valid RunConfig
    assert load_resolved(out / "config.resolved.yaml").config == cfg
    assert cfg.data.source == "npy" and cfg.seed == 5
    run = json.loads((out / "run.json").read_text())
    assert run["data"]["x"] == "x.npy" and Path(run["base_dir"]) == folder.resolve()
    pre = Preprocessor.from_json(json.loads((out / "preprocess.json").read_text()))
    x = np.load(folder / "x.npy")
    np.testing.assert_allclose(pre.transform_x(x), (x - x.mean(0)) / x.std(0), rtol=1e-5, atol=1e-5)

    # trainctl evaluate on the copied data source gives Keras's own evaluate on the same arrays
    evaluation = pytest.importorskip("trainctl.evaluation")
    x_test = (np.load(folder / "x_test.npy") - x.mean(0)) / x.std(0)
    y_test = np.eye(3, dtype="float32")[np.load(folder / "y_test.npy")]
    want = saved["km"].evaluate(x_test.astype("float32"), y_test, verbose=0, return_dict=True)
    got = evaluation.evaluate(out, save=False).metrics
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-4)
    assert got["accuracy"] == pytest.approx(want["accuracy"], abs=1e-6)


def test_data_that_does_not_fit_the_model(saved: dict[str, Any], tmp_path: Path) -> None:
    path = _data_config(tmp_path, features=4)
    with pytest.raises(DataError, match=r"\(4,\)"):
        import_keras([saved["dir"] / "m.keras"], tmp_path / "run", data_config=path)
    (tmp_path / "bad.yaml").write_text("data:\n  source: npy\n  x: x.npy\n  yy: y.npy\n")
    with pytest.raises(ConfigError) as err:
        import_keras([saved["dir"] / "m.keras"], tmp_path / "run", data_config=tmp_path / "bad.yaml")
    assert "bad.yaml:4" in err.value.render()
    assert not (tmp_path / "run").exists()
