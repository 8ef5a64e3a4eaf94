"""Fuzzing the predict readers with hypothesis: valid ``.npy``, ``.npz``, IDX (raw and gzip), CSV,
PNG and Parquet inputs with their headers and bodies mutated byte-wise. Reading must yield arrays or raise a
DataError (exit 3), never anything else.

CI runs the fixed-seed slice; ``TRAINCTL_FUZZ_FULL=1 pytest -m slow`` the full count."""

from __future__ import annotations

import gzip
import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzzhelp import FULL, byte_mutated, fast, full
from trainctl.data.inputs import open_input
from trainctl.errors import TrainctlError


def _bases() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (6, 4, 4)).astype(np.uint8)
    out: dict[str, bytes] = {}
    buf = io.BytesIO()
    np.save(buf, x.astype(np.float32))
    out["a.npy"] = buf.getvalue()
    buf = io.BytesIO()
    np.save(buf, np.asfortranarray(x.reshape(6, 16).astype(np.float64)))
    out["f.npy"] = buf.getvalue()
    buf = io.BytesIO()
    np.savez(buf, x=x)
    out["a.npz"] = buf.getvalue()
    idx = bytes([0, 0, 8, 3]) + np.array(x.shape, ">u4").tobytes() + x.tobytes()
    out["a-idx3-ubyte"] = idx
    out["b-idx3-ubyte.gz"] = gzip.compress(idx)
    out["a.csv"] = b"f1,f2,f3\n" + b"".join(b"%d,%d,%d\n" % tuple(r) for r in x.reshape(-1, 16)[:, :3])
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(x[0]).save(buf, format="PNG")
    out["img.png"] = buf.getvalue()
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # the parquet extra is optional; the test extra has it
        return out
    buf = io.BytesIO()
    flat = x.reshape(6, 16)
    pq.write_table(pa.table({f"f{j}": flat[:, j].astype(np.float64) for j in range(4)}), buf, row_group_size=4)
    out["a.parquet"] = buf.getvalue()
    return out


BASES = _bases()


def read(path: Path) -> None:
    try:
        reader = open_input(path)
        for chunk in reader.chunks(4):
            assert isinstance(chunk, np.ndarray)
    except TrainctlError as exc:
        assert exc.exit_code == 3, exc.render()
        assert exc.render().strip()


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(BASES)))
    # Parquet keeps its schema in a footer: mutate anywhere, not mostly the first bytes
    header = len(BASES[name]) if name.endswith(".parquet") else 128
    return name, draw(byte_mutated(BASES[name], header=header))


def check(case: tuple[str, bytes]) -> None:
    name, data = case
    with tempfile.TemporaryDirectory(prefix="fuzz-in-") as tmp:
        if name.endswith(".png"):
            folder = Path(tmp) / "pngs"
            folder.mkdir()
            (folder / name).write_bytes(data)
            read(folder)
        else:
            (Path(tmp) / name).write_bytes(data)
            read(Path(tmp) / name)


def test_unmutated_bases_read() -> None:
    for name in BASES:
        check((name, BASES[name]))


@fast(400)
@given(cases())
def test_fuzz_inputs_ci_slice(case: tuple[str, bytes]) -> None:
    check(case)


@pytest.mark.slow
@pytest.mark.skipif(not FULL, reason="the full fuzz run: TRAINCTL_FUZZ_FULL=1")
@full(5_000)
@given(cases())
def test_fuzz_inputs_full(case: tuple[str, bytes]) -> None:
    check(case)
