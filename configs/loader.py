"""Load YAML configs: base.yaml, then an optional overlay file, deep-merged, then validated."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from configs.schema import VipcastConfig


BUILTIN_CONFIGS = ("base", "demo", "cdnow")


class ConfigError(ValueError):
    """A config file that cannot be read or does not match the schema."""


def _read_yaml(text: str, origin: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: top level must be a mapping of keys, got {type(data).__name__}")
    return data


def _merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def builtin_config_text(name: str) -> str:
    """Text of a config shipped in this package (`base`, `demo` or `cdnow`)."""
    return resources.files("configs").joinpath(f"{name}.yaml").read_text()


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> VipcastConfig:
    """Load base.yaml overlaid with `path` (a file, or the name of a built-in config) and `overrides`."""
    data = _read_yaml(builtin_config_text("base"), "configs/base.yaml")
    origin = "configs/base.yaml"
    if path is not None:
        candidate = Path(path)
        if candidate.exists():
            origin = str(candidate)
            data = _merge(data, _read_yaml(candidate.read_text(), origin))
        elif str(path) in BUILTIN_CONFIGS:
            origin = f"configs/{path}.yaml"
            data = _merge(data, _read_yaml(builtin_config_text(str(path)), origin))
        else:
            raise ConfigError(f"config file not found: {path} (built-in configs: {', '.join(BUILTIN_CONFIGS)})")
    if overrides:
        data = _merge(data, overrides)
    try:
        return VipcastConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{origin}: {problems}") from exc
