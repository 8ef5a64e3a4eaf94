"""The run directory: the only owner of file names inside a run folder."""

from trainctl.runs.rundir import RunDir

__all__ = ["RunDir"]
