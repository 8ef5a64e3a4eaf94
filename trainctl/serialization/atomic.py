"""Re-export: atomic writers live in :mod:`trainctl.atomic` (torch-free, used by the run folder too)."""

from trainctl.atomic import atomic_path, atomic_write_bytes

__all__ = ["atomic_path", "atomic_write_bytes"]
