"""Typed, strict configuration: YAML files in this folder loaded into frozen pydantic models."""

from configs.schema import VipcastConfig
from configs.loader import load_config, ConfigError

__all__ = ["VipcastConfig", "load_config", "ConfigError"]
