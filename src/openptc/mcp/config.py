"""The ``mcpServers`` configuration that MCP clients already use, read into typed server entries.

One file serves Claude Desktop, Claude Code, Cursor and openptc alike::

    {"mcpServers": {
        "git":  {"command": "uvx", "args": ["mcp-server-git"], "env": {"GIT_PAGER": "cat"}},
        "docs": {"url": "https://example.com/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}}
    }}

An entry with ``command`` runs over stdio, one with ``url`` over streamable HTTP (``type`` may say
``stdio`` or ``http``/``streamable-http``, as Claude Code writes it). ``${VAR}`` and
``${VAR:-default}`` in strings are taken from the environment, as Claude Code does, so secrets stay
out of the file. A stdio server gets only HOME, LOGNAME, PATH, SHELL, TERM and USER of our own
environment plus its ``env`` (as Claude Desktop does): the secrets of the process that runs the
agent reach a server only where the config names them. Entries with ``"disabled": true`` are
skipped. Every problem is reported naming the
server and the field, because a config file with ten servers is otherwise hard to debug.

Each server's tools appear in a program as ``<group>.<tool>``; ``group_name`` says how the group is
derived from the server's key.
"""

from __future__ import annotations

import builtins
import json
import keyword
import os
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "GROUP_SUFFIX",
    "RESERVED_NAMES",
    "HttpServer",
    "McpConfigError",
    "ServerConfig",
    "StdioServer",
    "group_name",
    "load_config",
    "parse_config",
    "python_name",
]

GROUP_SUFFIX = "_tools"

# Names a program already has: the sandbox's injected globals, and the names a model habitually
# uses. A group must never shadow any of them (nor they a group).
RESERVED_NAMES: frozenset[str] = frozenset(
    {"asyncio", "json", "ToolError", "ToolArgumentError", "exit", "quit", "main"}
)

_HTTP_TYPES = {"http", "streamable-http", "streamable_http", "streamableHttp"}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class McpConfigError(ValueError):
    """The ``mcpServers`` configuration is not usable; the message names the server and field."""


@dataclass(frozen=True)
class StdioServer:
    """A server that openptc starts as a subprocess and talks to over its stdin and stdout."""

    name: str
    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None

    @property
    def group(self) -> str:
        return group_name(self.name)

    def describe(self) -> str:
        return shlex.join([self.command, *self.args])


@dataclass(frozen=True)
class HttpServer:
    """A server reached at a URL over the streamable HTTP transport."""

    name: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def group(self) -> str:
        return group_name(self.name)

    def describe(self) -> str:
        return self.url


ServerConfig = StdioServer | HttpServer


def load_config(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> list[ServerConfig]:
    """Read an ``mcpServers`` JSON file (relative ``cwd`` entries resolve against its folder)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise McpConfigError(f"cannot read the MCP config {path}: {e.strerror or e}") from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise McpConfigError(f"{path} is not valid JSON: {e}") from e
    return parse_config(data, environ, base=path.parent, source=str(path))


def parse_config(
    data: Any,
    environ: Mapping[str, str] | None = None,
    *,
    base: Path | None = None,
    source: str = "the MCP config",
) -> list[ServerConfig]:
    """Servers of an ``{"mcpServers": {...}}`` document, or of its inner ``{name: entry}`` map."""
    env = os.environ if environ is None else environ
    if not isinstance(data, Mapping):
        raise McpConfigError(f"{source} must be a JSON object with an 'mcpServers' object")
    servers = data.get("mcpServers", data.get("servers")) if _is_document(data) else data
    if not isinstance(servers, Mapping):
        raise McpConfigError(f"{source}: 'mcpServers' must be an object of server entries")
    parsed: list[ServerConfig] = []
    groups: dict[str, str] = {}
    for name, entry in servers.items():
        if not isinstance(name, str) or not name.strip():
            raise McpConfigError(f"{source}: server names must be non-empty strings")
        if isinstance(entry, Mapping) and entry.get("disabled") is True:
            continue
        server = _parse_entry(name, entry, env, base, source)
        group = server.group
        if group in groups:
            raise McpConfigError(
                f"{source}: servers {groups[group]!r} and {name!r} would both appear in programs "
                f"as {group!r}; rename one of them"
            )
        groups[group] = name
        parsed.append(server)
    return parsed


def _is_document(data: Mapping[str, Any]) -> bool:
    """A whole config file (``mcpServers``, or VS Code's ``servers``) rather than the inner map."""
    return "mcpServers" in data or (
        "servers" in data and isinstance(data["servers"], Mapping) and len(data) <= 2
    )


def _parse_entry(
    name: str, entry: Any, env: Mapping[str, str], base: Path | None, source: str
) -> ServerConfig:
    where = f"{source}: server {name!r}"
    if not isinstance(entry, Mapping):
        raise McpConfigError(f"{where} must be an object with 'command' or 'url'")
    kind = entry.get("type")
    if kind is not None and not isinstance(kind, str):
        raise McpConfigError(f"{where}: 'type' must be a string")
    has_command, has_url = "command" in entry, "url" in entry
    if kind == "sse":
        raise McpConfigError(
            f"{where}: type 'sse' (the HTTP+SSE transport, deprecated since 2025-03-26) is not "
            "supported; point 'url' at the server's streamable HTTP endpoint and drop 'type'"
        )
    if kind is not None and kind != "stdio" and kind not in _HTTP_TYPES:
        raise McpConfigError(f"{where}: unknown type {kind!r}; use 'stdio' or 'http'")
    if has_command and has_url:
        raise McpConfigError(f"{where} has both 'command' and 'url'; keep one")
    if kind == "stdio" or (kind is None and has_command):
        return _stdio(name, entry, env, base, where)
    if kind in _HTTP_TYPES or has_url:
        return _http(name, entry, env, where)
    raise McpConfigError(
        f"{where} needs 'command' (a server started over stdio) or 'url' (streamable HTTP)"
    )


def _stdio(
    name: str, entry: Mapping[str, Any], env: Mapping[str, str], base: Path | None, where: str
) -> StdioServer:
    command = _string(entry.get("command"), f"{where}: 'command'", env)
    if not command.strip():
        raise McpConfigError(f"{where}: 'command' is empty")
    args = entry.get("args", [])
    if not isinstance(args, list):
        raise McpConfigError(f"{where}: 'args' must be a list of strings")
    cwd = entry.get("cwd")
    if cwd is not None:
        cwd_path = Path(_string(cwd, f"{where}: 'cwd'", env)).expanduser()
        cwd = str(base / cwd_path if base is not None and not cwd_path.is_absolute() else cwd_path)
    return StdioServer(
        name=name,
        command=command,
        args=tuple(_string(a, f"{where}: args[{i}]", env) for i, a in enumerate(args)),
        env=_string_map(entry.get("env"), f"{where}: 'env'", env),
        cwd=cwd,
    )


def _http(name: str, entry: Mapping[str, Any], env: Mapping[str, str], where: str) -> HttpServer:
    url = _string(entry.get("url"), f"{where}: 'url'", env)
    if not re.match(r"https?://", url):
        raise McpConfigError(f"{where}: 'url' must start with http:// or https://, got {url!r}")
    return HttpServer(
        name=name, url=url, headers=_string_map(entry.get("headers"), f"{where}: 'headers'", env)
    )


def _string(value: Any, what: str, env: Mapping[str, str]) -> str:
    if not isinstance(value, str):
        raise McpConfigError(f"{what} must be a string, got {type(value).__name__}")

    def expand(m: re.Match[str]) -> str:
        var, default = m.group(1), m.group(2)
        if var in env:
            return env[var]
        if default is not None:
            return default
        raise McpConfigError(f"{what} uses ${{{var}}}, which is not set in the environment")

    return _VAR.sub(expand, value)


def _string_map(value: Any, what: str, env: Mapping[str, str]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise McpConfigError(f"{what} must be an object of strings")
    out: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, int | float) and not isinstance(item, bool):
            item = str(item)  # a port or a count written as a number
        out[str(key)] = _string(item, f"{what}[{key!r}]", env)
    return out


def group_name(server: str) -> str:
    """The name under which a server's tools appear in a program: ``<snake_case key>_tools``.

    Lower case, every other character than a letter, digit or underscore made ``_``, then the
    suffix: ``time`` becomes ``time_tools``, ``brave-search`` ``brave_search_tools``, ``GitHub``
    ``github_tools``, ``1password`` ``mcp_1password_tools``. The suffix is always added (not
    only on a clash) so the rule is one line to learn, and so a group can never be a keyword, a
    builtin, a standard-library module (a server named ``time`` or ``json``), a name the sandbox
    injects (``asyncio``, ``json``, ``ToolError``, ...) or a variable a program is likely to use
    (``git``, ``memory``, ``files``).
    """
    base = re.sub(r"_+", "_", re.sub(r"[^0-9a-z_]", "_", server.lower())).strip("_") or "server"
    if base[0].isdigit():
        base = f"mcp_{base}"
    group = base if base.endswith(GROUP_SUFFIX) else base + GROUP_SUFFIX
    while _taken(group):  # no stdlib module or builtin ends in _tools today; stay safe tomorrow
        group += "_mcp"
    return group


def python_name(name: str) -> str:
    """An MCP name (``get-sum``, ``list.files``) as a Python identifier; valid ones are kept."""
    if name.isidentifier() and name.isascii() and not keyword.iskeyword(name):
        return name
    ident = re.sub(r"_+", "_", re.sub(r"[^0-9A-Za-z_]", "_", name))
    if not ident or ident == "_":
        return "tool"
    if ident[0].isdigit():
        ident = f"_{ident}"
    return ident + "_" if keyword.iskeyword(ident) or keyword.issoftkeyword(ident) else ident


def _taken(name: str) -> bool:
    return (
        keyword.iskeyword(name)
        or name in RESERVED_NAMES
        or name in sys.stdlib_module_names
        or hasattr(builtins, name)
    )
