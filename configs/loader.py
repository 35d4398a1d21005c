"""Load YAML configs: base.yaml, then an optional overlay file, deep-merged, then validated."""

from __future__ import annotations

import re

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from configs.schema import VipcastConfig


BUILTIN_CONFIGS = ("base", "demo", "cdnow")


class ConfigError(ValueError):
    """A config file that cannot be read or does not match the schema."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _yaml_problem(exc: yaml.YAMLError, origin: str) -> str:
    """One line: the file, then line and column (1-based) of the problem, then what the parser found."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{origin}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else origin
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    what = "; ".join(_one_line(part) for part in (context, problem) if part) if problem else _one_line(exc)
    return f"{where}: not valid YAML: {what}"


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key written twice in one mapping (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        first_lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` merges; its keys may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = first_lines.get(key)
            except TypeError:  # an unhashable key: the base method raises YAML's own error for it
                break
            if first is not None:
                lines = f"line {line}" if first == line else f"lines {first} and {line}"
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is written twice ({lines}): the first value would be ignored",
                    key_node.start_mark,
                )
            first_lines[key] = line
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node):
        """A date, or for text shaped like one that is none (`2025-13-01`) the text: the schema then
        names the key; PyYAML's own ValueError ("month must be in 1..12") named neither key nor file."""
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp", _UniqueKeyLoader.construct_yaml_timestamp)


def _read_yaml(text: str, origin: str) -> dict[str, Any]:
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_problem(exc, origin)) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: top level must be a mapping of keys, got {type(data).__name__}")
    return data


def _read_text(path: Path) -> str:
    """The file's text as UTF-8 (YAML's encoding), or a ConfigError naming the file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror or exc})") from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); save the config as UTF-8"
        ) from exc


def _problem(error: dict[str, Any]) -> str:
    """One schema error: the dotted key, pydantic's message and, for a wrong value, the value given."""
    key = ".".join(str(part) for part in error["loc"]) or "(top)"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] not in ("extra_forbidden", "missing", "value_error") and not isinstance(error.get("input"), dict):
        message += f" (got {error['input']!r:.60})"
    given = error.get("input")
    if isinstance(given, str) and re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+", given.strip()):
        message += f"; YAML reads {given} as text: write it with a point and a signed exponent (1.0e+6) or in full"
    return f"{key}: {message}"


def _merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def package_file(name: str) -> Path:
    """A file shipped in this package (`schema.py`, `base.yaml`, ...), where it is installed."""
    return Path(str(resources.files("configs").joinpath(name)))


def builtin_config_text(name: str) -> str:
    """Text of a config shipped in this package (`base`, `demo` or `cdnow`)."""
    return package_file(f"{name}.yaml").read_text()


class BuiltinConfig(str):
    """The name of a built-in config that no file of the current folder may stand in for: the one a
    built-in `--data` implies when no --config was given (a folder `demo/` there broke `vipcast demo`)."""


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> VipcastConfig:
    """Load base.yaml overlaid with `path` (a file, or the name of a built-in config) and `overrides`.
    A name of a built-in config reads the file of that name when there is one (and the path is not a
    `BuiltinConfig`), else the built-in."""
    data = _read_yaml(builtin_config_text("base"), "configs/base.yaml")
    origin = "configs/base.yaml"
    if path is not None:
        candidate = Path(path)
        builtin = str(path) in BUILTIN_CONFIGS and (isinstance(path, BuiltinConfig) or not candidate.is_file())
        if candidate.exists() and not builtin:
            origin = str(candidate)
            data = _merge(data, _read_yaml(_read_text(candidate), origin))
        elif builtin:
            origin = f"configs/{path}.yaml"
            data = _merge(data, _read_yaml(builtin_config_text(str(path)), origin))
        else:
            raise ConfigError(f"config file not found: {path} (built-in configs: {', '.join(BUILTIN_CONFIGS)})")
    if overrides:
        data = _merge(data, overrides)
    try:
        return VipcastConfig.model_validate(data)
    except ValidationError as exc:
        # A value given on the command line (--engine, --horizon-days) is named as such, not as the file's.
        by_origin: dict[str, list[str]] = {}
        for error in exc.errors():
            source = "command line" if _overridden(overrides, error.get("loc", ())) else origin
            by_origin.setdefault(source, []).append(_problem(error))
        raise ConfigError("; ".join(f"{source}: {'; '.join(problems)}" for source, problems in by_origin.items())) from exc


def _overridden(overrides: dict[str, Any] | None, location: tuple) -> bool:
    """Whether the value at `location` (a pydantic error's loc) came from `overrides`."""
    node: Any = overrides or {}
    for key in location:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return bool(location)
