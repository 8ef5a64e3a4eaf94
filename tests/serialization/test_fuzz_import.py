"""Fuzzing ``import`` with hypothesis: a real trainctl-saved Keras model (model.json, .weights.h5,
whole-model .h5, .keras) with its JSON mutated structurally and its binary files mutated byte-wise
(headers most often). Reading must end in a model or a TrainctlError, never anything else: a
file that crashes or hangs the HDF5 library is refused by the child-process probe (exit 4).

CI runs the fixed-seed slices; ``TRAINCTL_FUZZ_FULL=1 pytest -m slow`` the full counts."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.clihelp import CONFIGS, Cli
from tests.fuzzhelp import FULL, byte_mutated, fast, full, mutated
from trainctl import h5probe
from trainctl.errors import TrainctlError
from trainctl.importer import read_keras_model


@pytest.fixture(scope="module", autouse=True)
def quick_probe() -> Iterator[None]:
    """Mutated HDF5 files can make h5py loop forever (see test_h5probe): give up on those sooner."""
    saved = h5probe.PROBE_TIMEOUT_S
    h5probe.PROBE_TIMEOUT_S = 5.0
    yield
    h5probe.PROBE_TIMEOUT_S = saved


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The files of one trained XOR run."""
    tmp = tmp_path_factory.mktemp("fuzz-import")
    run = Path(Cli(tmp / "runs").train_json(CONFIGS / "xor.yaml", "fit.epochs=1")["run_dir"])
    out = {name: (run / name).read_bytes() for name in ("model.json", "model.weights.h5", "model.h5")}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", out["model.json"])
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        zf.writestr("model.weights.h5", out["model.weights.h5"])
    out["model.keras"] = buf.getvalue()
    return out


@st.composite
def cases(draw: st.DrawFn, base: dict[str, bytes]) -> dict[str, bytes]:
    files = dict(base)
    kind = draw(st.sampled_from(["json", "json+weights", "h5", "keras", "keras-json"]))
    if kind.startswith("json"):
        spec = draw(mutated(json.loads(files["model.json"])))
        files["model.json"] = json.dumps(spec, allow_nan=True).encode()
        if kind == "json+weights":
            files["model.weights.h5"] = draw(byte_mutated(files["model.weights.h5"], header=4096))
        return {"model.json": files["model.json"], "model.weights.h5": files["model.weights.h5"]}
    if kind == "h5":
        return {"model.h5": draw(byte_mutated(files["model.h5"], header=4096))}
    if kind == "keras":
        return {"model.keras": draw(byte_mutated(files["model.keras"], header=512))}
    spec = draw(mutated(json.loads(files["model.json"])))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", json.dumps(spec, allow_nan=True))
        zf.writestr("model.weights.h5", files["model.weights.h5"])
    return {"model.keras": buf.getvalue()}


def check(tmp: Path, files: dict[str, bytes]) -> None:
    paths = []
    for name, data in files.items():
        (tmp / name).write_bytes(data)
        paths.append(tmp / name)
    try:
        read_keras_model(paths)
    except TrainctlError as exc:
        assert exc.exit_code in (2, 4), exc.render()
        assert exc.render().strip()


@fast(200)
@given(data=st.data())
def test_fuzz_import_ci_slice(
    tmp_path_factory: pytest.TempPathFactory, base: dict[str, bytes], data: st.DataObject
) -> None:
    check(tmp_path_factory.mktemp("imp"), data.draw(cases(base)))


@pytest.mark.slow
@pytest.mark.skipif(not FULL, reason="the full fuzz run: TRAINCTL_FUZZ_FULL=1")
@full(3_000)
@given(data=st.data())
def test_fuzz_import_full(
    tmp_path_factory: pytest.TempPathFactory, base: dict[str, bytes], data: st.DataObject
) -> None:
    check(tmp_path_factory.mktemp("imp"), data.draw(cases(base)))
