"""Config: YAML -> frozen, validated specs. Importing this never imports torch."""

from trainctl.config.loader import LoadedConfig, dotted, load_config

__all__ = ["LoadedConfig", "dotted", "load_config"]
