"""Read an HDF5 file in a child process before this process opens it.

A damaged or hostile HDF5 file can crash or hang the HDF5 C library inside h5py: fuzzing found a
segfault from one byte of a string type, and one wrong object size in a global heap loops
forever. No ``try``/``except`` contains that; the whole command dies with signal 11, or never
returns. So a child reads the file first, every object, attribute and dataset, as the loaders
will. If the child dies on a signal or hangs, the file is refused with exit 4 and this process
never opens it. A file the child reads cleanly is then read here as usual, with the loaders' own
checks and messages (a Python error in the child is left for them to report).

The child runs this file as a script in isolated mode, so it imports h5py and numpy only (no
torch): about 0.2 s. ``predict`` and ``evaluate`` start it before importing torch, and ``import``
before building the model, so it runs while they wait anyway. This module imports nothing heavy
(it sits outside ``trainctl.serialization``, whose import loads torch).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

# no trainctl import at module level: the child runs this file alone, without the package
_SCRIPT = __file__  # run as a script: the child imports h5py and numpy, not trainctl
# a file that makes h5py loop (one wrong size in a global heap does) is refused after this long
PROBE_TIMEOUT_S = 30.0
PROBE_BYTES_PER_S = 100e6  # plus the time to read the file at this rate
PROBE_MEMORY_BYTES = 8 * 2**30  # the child's address-space limit: a bomb fails there, not here
MAX_PROBE_ELEMENTS = 2**26  # a dataset is read whole up to this size, else its first rows only
# the signals a library crash raises; any other (the OOM killer's SIGKILL, a stray SIGTERM) says
# nothing about the file
CRASH_SIGNALS = frozenset({"SIGSEGV", "SIGBUS", "SIGABRT", "SIGILL", "SIGFPE", "SIGSYS", "SIGTRAP"})


class H5Probe:
    """A child process reading ``path``; :meth:`check` waits for it and judges the file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.proc: subprocess.Popen[bytes] | None = None
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", _SCRIPT, str(self.path), str(os.getpid())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches this process, which then stops the child
            )
        except OSError:  # no process can be started here (a sandbox, no PIDs left): read as before
            self.proc = None

    def check(self, label: str) -> None:
        """Raise :class:`ArtifactError` when the child died on a signal or did not finish."""
        from trainctl.errors import ArtifactError

        if self.proc is None:
            return
        timeout = PROBE_TIMEOUT_S + self.path.stat().st_size / PROBE_BYTES_PER_S
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise ArtifactError(
                f"{label}: reading this HDF5 file did not finish within {timeout:.0f} s "
                f"({self.path}); the file is damaged",
                hint="re-save it from the program that wrote it",
            ) from None
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            if name not in CRASH_SIGNALS:
                raise ArtifactError(
                    f"{label}: the child process reading this HDF5 file was stopped by {name} ({self.path})",
                    hint="run the command again; if it recurs, the machine may be short of memory",
                )
            raise ArtifactError(
                f"{label}: the HDF5 library crashed reading this file ({name}; {self.path}); "
                "the file is damaged or was crafted",
                hint="re-save it from the program that wrote it; trainctl does not open it in its own process",
            )

    def __enter__(self) -> H5Probe:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def checked(path: Path, label: str) -> None:
    """Probe ``path`` now and wait for the verdict."""
    with H5Probe(path) as probe:
        probe.check(label)


def _die_with_parent(parent: int | None) -> None:  # pragma: no cover - runs in the child
    """Linux: the kernel kills this child when its parent dies, so a file that makes h5py loop
    cannot leave an orphan spinning after ``kill -9`` of trainctl."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the parent's timeout still bounds the wait
        return
    if parent is not None and os.getppid() != parent:  # the parent died before the call above
        os._exit(1)


def _read_all(path: str, parent: int | None = None) -> None:  # pragma: no cover - the child
    import resource

    _die_with_parent(parent)

    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = PROBE_MEMORY_BYTES if hard == resource.RLIM_INFINITY else min(PROBE_MEMORY_BYTES, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    import h5py
    import numpy as np

    def visit(name: str, obj: object) -> None:
        for key in obj.attrs:  # type: ignore[attr-defined]
            obj.attrs[key]  # type: ignore[attr-defined]
        if isinstance(obj, h5py.Dataset) and obj.shape is not None:
            size = float(np.prod(obj.shape, dtype=np.float64))
            if size <= MAX_PROBE_ELEMENTS or not obj.shape:
                obj[()]
            else:  # only its first rows: a header may claim terabytes that the loaders then refuse
                row = max(1.0, size / obj.shape[0])
                obj[: max(1, int(MAX_PROBE_ELEMENTS // row))]

    with h5py.File(path, "r") as f:
        for key in f.attrs:
            f.attrs[key]
        f.visititems(visit)


if __name__ == "__main__":  # pragma: no cover - the child
    try:
        _read_all(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None)
    except Exception:
        sys.exit(1)
