"""What a client of ``ptc mcp`` reads to find tools: servers and tools one line each, a search by
words, and the Python stubs of the tools it chose.

A toolbox of upstream MCP tools can hold hundreds of schemas; a client that is handed all of them
pays for every one in every request. Here it pays for a few lines, and for the stubs of the few
tools its program will call. Tools named ``server.tool`` belong to ``server``; the others to
``LOCAL`` (tools given as Python functions).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from openptc.mcp.config import GROUP_SUFFIX
from openptc.tools import Tool, Toolbox

__all__ = [
    "LOCAL",
    "Catalog",
    "describe_tools",
    "list_tools",
    "search_tools",
    "server_of",
    "summary_line",
]

LOCAL = "(local)"
_SUMMARY_CHARS = 110
_WORDS = re.compile(r"[A-Za-z][a-z]*|[0-9]+|[A-Z]+(?![a-z])")


def server_of(name: str) -> str:
    """The server a tool belongs to: the part of its name before the first dot."""
    head, dot, _ = name.partition(".")
    return head if dot else LOCAL


def summary_line(tool: Tool[..., Any]) -> str:
    """``name(required, optional=default) — first sentence of the description``."""
    summary = _first_sentence(tool.description)
    return f"{tool.name}({_params(tool.input_schema)})" + (f" — {summary}" if summary else "")


@dataclass(frozen=True)
class Catalog:
    """The tools of a toolbox grouped by server, in the toolbox's order."""

    servers: dict[str, list[Tool[..., Any]]]

    @classmethod
    def of(cls, toolbox: Iterable[Tool[..., Any]]) -> Catalog:
        servers: dict[str, list[Tool[..., Any]]] = {}
        for tool in toolbox:
            servers.setdefault(server_of(tool.name), []).append(tool)
        return cls(servers)

    @property
    def tools(self) -> list[Tool[..., Any]]:
        return [tool for tools in self.servers.values() for tool in tools]

    def headline(self) -> str:
        """One line for a tool description: how many tools, from which servers."""
        count = sum(len(tools) for tools in self.servers.values())
        if not count:
            return "no tools are available"
        grouped = {name: len(tools) for name, tools in self.servers.items() if name != LOCAL}
        local = len(self.servers.get(LOCAL, ()))
        text = _count(count, "tool")
        if grouped:
            parts = ", ".join(f"{name} ({n})" for name, n in grouped.items())
            text += f" from {_count(len(grouped), 'server')}: {parts}"
            if local:
                text += f", and {local} without a server"
        return text


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def list_tools(
    toolbox: Iterable[Tool[..., Any]],
    server: str | None = None,
    unavailable: Mapping[str, str] | None = None,
) -> str:
    """Every server on one line, and under it each of its tools on one line; then the servers
    in ``unavailable`` (name -> why), which have no tools now."""
    catalog = Catalog.of(toolbox)
    chosen = catalog.servers
    down = dict(unavailable or {})
    if server:
        server = _server_named(server, chosen) or server
        if server not in chosen and server not in down:
            return f"no server named {server!r}; servers: {_names([*chosen, *down])}"
        chosen = {server: chosen[server]} if server in chosen else {}
        down = {server: down[server]} if server in down else {}
    lines: list[str] = []
    for name, tools in chosen.items():
        lines.append(f"{name}: {_count(len(tools), 'tool')}")
        lines.extend(f"  {summary_line(tool)}" for tool in tools)
    lines.extend(f"{name}: unavailable ({' '.join(why.split())})" for name, why in down.items())
    return "\n".join(lines) or "no tools are available"


def search_tools(toolbox: Iterable[Tool[..., Any]], query: str, limit: int = 10) -> str:
    """The tools that best match the words of ``query``, best first, one line each."""
    words = _words(query)
    if not words:
        return "the query has no words to search for; try e.g. 'commit log' or 'read file'"
    scored = [(_score(tool, words), i, tool) for i, tool in enumerate(toolbox)]
    found = sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1]))
    if not found:
        return f"no tool matches {query!r}; call list_tools to see them all"
    shown = found[: max(1, limit)]
    more = len(found) - len(shown)
    lines = [summary_line(tool) for _, _, tool in shown]
    if more > 0:
        lines.append(f"(and {more} more; raise the limit or narrow the words)")
    return "\n".join(lines)


def describe_tools(toolbox: Toolbox, names: Sequence[str]) -> tuple[str, list[str]]:
    """The Python stubs of the named tools (a server's name stands for all its tools), and the
    names that matched nothing, each with the closest names there are."""
    catalog = Catalog.of(toolbox)
    chosen: dict[str, Tool[..., Any]] = {}
    problems: list[str] = []
    for raw in names:
        name = raw.strip().removesuffix("()").removesuffix(".*")
        server = _server_named(name, catalog.servers)
        if name in toolbox:
            chosen.setdefault(name, toolbox[name])
        elif server is not None:
            chosen.update((t.name, t) for t in catalog.servers[server] if t.name not in chosen)
        else:
            problems.append(_unknown(name, [*toolbox.names, *catalog.servers]))
    stubs = Toolbox(chosen.values()).render_stubs() if chosen else ""
    return stubs, problems


def _unknown(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.75)
    short = [k for k in known if k.rpartition(".")[2] == name]  # the name without its server
    hints = list(dict.fromkeys(short + close))
    hint = f"; did you mean {', '.join(hints)}?" if hints else "; call search_tools to find it"
    return f"no tool or server named {name!r}{hint}"


def _server_named(name: str, servers: Mapping[str, object]) -> str | None:
    """The server called ``name``, also when given by its config key (``git`` for
    ``git_tools``)."""
    for candidate in (name, f"{name}{GROUP_SUFFIX}", f"{name.replace('-', '_')}{GROUP_SUFFIX}"):
        if candidate in servers:
            return candidate
    return None


def _names(servers: Iterable[str]) -> str:
    return ", ".join(servers) or "(none)"


def _first_sentence(text: str) -> str:
    line = " ".join(text.strip().split("\n\n", 1)[0].split())
    match = re.match(r"(.+?[.!?])(\s|$)", line)
    sentence = match.group(1) if match else line
    if len(sentence) > _SUMMARY_CHARS:
        sentence = sentence[: _SUMMARY_CHARS - 1].rstrip() + "…"
    return sentence


def _params(schema: dict[str, Any]) -> str:
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return ""
    required = set(schema.get("required") or ())
    first = [name for name in properties if name in required]
    rest = []
    for name in properties:
        if name in required:
            continue
        spec = properties[name]
        default = spec.get("default", ...) if isinstance(spec, dict) else ...
        rest.append(f"{name}=" + ("..." if default is ... else _short_json(default)))
    return ", ".join([*first, *rest])


def _short_json(value: Any) -> str:
    """A default as Python would show it (``None``, ``True``, ``"asc"``), when it is short."""
    if value is None or isinstance(value, bool):
        return repr(value)
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 20 else "..."


def _words(text: str) -> set[str]:
    """Lowercase words, splitting snake_case, camelCase, dotted and dashed names."""
    return {w.lower() for w in _WORDS.findall(text) if len(w) > 1 or w.isdigit()}


def _score(tool: Tool[..., Any], words: set[str]) -> float:
    name_words = _words(tool.name)
    params = " ".join(tool.input_schema.get("properties") or {})
    text_words = _words(tool.description) | _words(params)
    score = 0.0
    for word in words:
        if word in name_words:
            score += 3
        elif any(_related(word, w) for w in name_words):
            score += 2
        if word in text_words:
            score += 1
        elif any(_related(word, w) for w in text_words):
            score += 0.5
    return score


def _related(a: str, b: str) -> bool:
    """``commit`` and ``commits``, ``read`` and ``reading``: one starts with the other."""
    short, long = sorted((a, b), key=len)
    return len(short) >= 3 and long.startswith(short)
