"""Settings from a file, the environment and flags, with one precedence for every field:
flags > environment > file > defaults.

Each value is checked against its field where it comes from, so a bad one is a one-line error
naming its source (the file, ``PTC_PROXY_POOL_SIZE``, ``--pool-size``) rather than a merged
dict's. Fields listed as ``accumulate`` (keys, tokens, models) add up across sources instead.
A scalar field reads its variable as text; any other (a table, a list) reads it as JSON.
"""

from __future__ import annotations

import json
import os
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr, TypeAdapter, ValidationError

# A field's value and where it came from, as an operator would name it.
Layer = dict[str, tuple[Any, str]]

_SCALARS = (str, int, float, bool, SecretStr, type(None))


class SettingsError(ValueError):
    """A value, key or file that does not make a configuration; the message names its source."""


@dataclass(frozen=True)
class SettingsSpec:
    """How one settings class is read: its variables' prefix, older names, flag spellings."""

    model: type[BaseModel]
    prefix: str
    legacy_env: Mapping[str, str] = field(default_factory=dict)
    flags: Mapping[str, str] = field(default_factory=dict)
    accumulate: frozenset[str] = frozenset()

    def env_name(self, name: str) -> str:
        return self.prefix + name.upper()

    def flag_name(self, name: str) -> str:
        return self.flags.get(name, "--" + name.replace("_", "-"))

    def is_scalar(self, name: str) -> bool:
        annotation = self.model.model_fields[name].annotation
        union = get_origin(annotation) in (Union, types.UnionType)
        return all(
            arg in _SCALARS or get_origin(arg) is Literal
            for arg in (get_args(annotation) if union else (annotation,))
        )


def read_file(spec: SettingsSpec, path: Path) -> Layer:
    """A TOML or JSON file's settings; an unknown key is an error naming it."""
    text = path.read_text()
    toml = path.suffix == ".toml"
    try:
        data = tomllib.loads(text) if toml else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise SettingsError(f"{path}: not valid {'TOML' if toml else 'JSON'}: {exc}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: the settings must be a table / JSON object")
    known = spec.model.model_fields
    for key in data:
        if key not in known:
            raise SettingsError(f"{path}: unknown key {key!r}; known keys: {', '.join(known)}")
    return {name: (value, str(path)) for name, value in data.items()}


def read_env(spec: SettingsSpec, environ: Mapping[str, str] | None = None) -> Layer:
    """Each field's ``PREFIX_FIELD`` variable, else its older name; comma lists for
    ``accumulate`` lists, JSON for tables."""
    env = os.environ if environ is None else environ
    layer: Layer = {}
    for name in spec.model.model_fields:
        variable = spec.env_name(name)
        if not env.get(variable) and env.get(spec.legacy_env.get(name, "")):
            variable = spec.legacy_env[name]
        raw = env.get(variable)
        if not raw:
            continue
        if spec.is_scalar(name):
            layer[name] = (raw, variable)
        elif name in spec.accumulate and not raw.lstrip().startswith(("[", "{")):
            layer[name] = ([item.strip() for item in raw.split(",") if item.strip()], variable)
        else:
            layer[name] = (_json(raw, variable), variable)
    return layer


def from_flags(spec: SettingsSpec, values: Mapping[str, Any]) -> Layer:
    """Flags given (not None, not empty); a table's flag is JSON text."""
    layer: Layer = {}
    for name, value in values.items():
        if value is None or value == [] or value == {}:
            continue
        flag = spec.flag_name(name)
        if isinstance(value, str) and not spec.is_scalar(name):
            value = _json(value, flag)
        layer[name] = (value, flag)
    return layer


def _json(raw: str, source: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{source}: expected JSON (a table or list): {exc}") from None


def check(spec: SettingsSpec, layer: Layer) -> None:
    """Each value against its field, before merging, so an error names where it came from."""
    for name, (value, source) in layer.items():
        info = spec.model.model_fields[name]
        form: Any = Annotated[info.annotation, info]  # the field's type with its constraints
        try:
            TypeAdapter[Any](form).validate_python(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in (name, *first["loc"]))
            raise SettingsError(f"{source}: {where}: {first['msg']}") from None


def merge(spec: SettingsSpec, *layers: Layer) -> dict[str, Any]:
    """Later layers win; ``accumulate`` fields add up: tables update, lists gather in order of
    precedence (a flag's key first)."""
    data: dict[str, Any] = {}
    for layer in layers:
        check(spec, layer)
        for name, (value, _source) in layer.items():
            before = data.get(name)
            if name in spec.accumulate and isinstance(before, list) and isinstance(value, list):
                data[name] = [*value, *before]
            elif name in spec.accumulate and isinstance(before, dict) and isinstance(value, dict):
                data[name] = {**before, **value}
            else:
                data[name] = value
    return data


def fields_table(spec: SettingsSpec) -> str:
    """The Markdown table the docs carry: each field's file key, variable and flag."""
    rows = ["| file key | environment | flag |", "|---|---|---|"]
    for name in spec.model.model_fields:
        env = f"`{spec.env_name(name)}`"
        if name in spec.legacy_env:
            env += f" (or `{spec.legacy_env[name]}`)"
        rows.append(f"| `{name}` | {env} | `{spec.flag_name(name)}` |")
    return "\n".join(rows) + "\n"
