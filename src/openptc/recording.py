"""Recorded transcripts: save what a real model answered, replay it offline.

A transcript is JSON lines: one header, then one line per model response, written as each
response arrives (a run that dies half-way still leaves what happened). Replaying feeds the
responses back in order through a ``ScriptedModel``, which labels itself as a replay, so a run
against a real provider can be rerun in CI with no key and no network.

A replay is only the same run if the model is asked the same thing: the header keeps the mode,
the question, the prompt version and a fingerprint of the tools as the model saw them (names,
descriptions, schemas, and in ptc mode the stubs), and ``transcript_differences`` names what
differs. A field the header lacks (transcripts written before the fingerprint existed, or by
hand) cannot be checked: ``ptc run`` replays them with a warning naming it, rather than refuse
every older transcript; the fields they do have are still checked.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from openptc.models.base import (
    Block,
    ModelRequest,
    ModelResponse,
    ModelUsage,
    ReasoningBlock,
    TextBlock,
    TextSink,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    close_model,
)
from openptc.models.errors import ModelError
from openptc.models.scripted import ScriptedModel
from openptc.prompts import PROMPT_VERSION

FORMAT = "openptc-transcript"
VERSION = 1


def block_to_json(block: Block) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ToolUseBlock):
        data: dict[str, Any] = {
            "type": "tool_use",
            "id": block.id,
            "name": block.name,
            "input": block.input,
        }
        if block.raw_input is not None:
            data["raw_input"] = block.raw_input
            data["input_error"] = block.input_error
        return data
    if isinstance(block, ReasoningBlock):
        kept = {k: v for k, v in asdict(block).items() if v is not None}
        return {"type": "reasoning", **kept}
    return {
        "type": "tool_result",
        "tool_use_id": block.tool_use_id,
        "content": block.content,
        "is_error": block.is_error,
    }


def block_from_json(data: dict[str, Any]) -> Block:
    kind = data.get("type")
    if kind == "text":
        return TextBlock(str(data["text"]))
    if kind == "tool_use":
        return ToolUseBlock(
            id=str(data["id"]),
            name=str(data["name"]),
            input=dict(data.get("input") or {}),
            raw_input=data.get("raw_input"),
            input_error=data.get("input_error"),
        )
    if kind == "tool_result":
        return ToolResultBlock(
            str(data["tool_use_id"]), str(data["content"]), bool(data.get("is_error"))
        )
    if kind == "reasoning":
        names = {f.name for f in fields(ReasoningBlock)}
        return ReasoningBlock(**{k: v for k, v in data.items() if k in names})
    raise ValueError(f"unknown block type {kind!r} in transcript")


def response_to_json(response: ModelResponse) -> dict[str, Any]:
    return {
        "type": "response",
        "model": response.model,
        "stop_reason": response.stop_reason,
        "stop_sequence": response.stop_sequence,
        "usage": asdict(response.usage) if response.usage is not None else None,
        "content": [block_to_json(b) for b in response.content],
    }


def response_from_json(data: dict[str, Any]) -> ModelResponse:
    usage = data.get("usage")
    return ModelResponse(
        content=tuple(block_from_json(b) for b in data["content"]),
        stop_reason=data["stop_reason"],
        usage=ModelUsage(**usage) if usage else None,
        model=str(data.get("model", "")),
        stop_sequence=data.get("stop_sequence"),
    )


def tools_fingerprint(specs: Sequence[ToolSpec]) -> str:
    """A short hash of the tools as offered to the model: equal only if the model saw the same."""
    offered = [[s.name, s.description, s.input_schema] for s in specs]
    canonical = json.dumps(offered, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class RecordingModel:
    """Wraps any model and appends each of its responses to a transcript file.

    The header is written at once (a path that cannot be written fails here, before the run),
    and again with the tools' fingerprint when the first request shows what the model is
    offered.
    """

    def __init__(self, inner: Any, path: Path, *, mode: str, prompt: str) -> None:
        self._inner = inner
        self._path = path
        self._header: dict[str, Any] | None = {
            "format": FORMAT,
            "version": VERSION,
            "model": inner.name,
            "label": inner.label,
            "mode": mode,
            "prompt": prompt,
            "prompt_version": PROMPT_VERSION,
        }
        path.write_text(json.dumps(self._header) + "\n")

    @property
    def name(self) -> str:
        return str(self._inner.name)

    @property
    def label(self) -> str:
        return f"{self._inner.label} (recording to {self._path})"

    async def aclose(self) -> None:
        await close_model(self._inner)

    async def generate(
        self, request: ModelRequest, *, on_text: TextSink | None = None
    ) -> ModelResponse:
        if self._header is not None:  # the first request: nothing but the header written yet
            header, self._header = self._header, None
            header["tools"] = tools_fingerprint(request.tools)
            self._path.write_text(json.dumps(header) + "\n")
        response: ModelResponse = await self._inner.generate(request, on_text=on_text)
        with self._path.open("a") as transcript:
            transcript.write(json.dumps(response_to_json(response)) + "\n")
        return response


def load_transcript(path: Path) -> tuple[dict[str, Any], list[ModelResponse]]:
    """The header and the recorded responses; a one-line ``ModelError`` for anything else."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ModelError(f"cannot read the transcript {path}: {reason}") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ModelError(f"{path} is empty: not a transcript")
    header = _json_line(path, 1, lines[0])
    if header.get("format") != FORMAT:
        raise ModelError(f"{path} is not an openptc transcript (no '{FORMAT}' header)")
    if header.get("version") != VERSION:
        raise ModelError(f"{path} has transcript version {header.get('version')}, need {VERSION}")
    responses = []
    for number, line in enumerate(lines[1:], 2):
        try:
            responses.append(response_from_json(_json_line(path, number, line)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{path} line {number} is not a recorded response: {exc}") from None
    return header, responses


def _json_line(path: Path, number: int, line: str) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path} line {number} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path} line {number} is not a JSON object")
    return data


def transcript_differences(
    header: dict[str, Any], *, mode: str, prompt: str, tools: Sequence[ToolSpec]
) -> tuple[list[str], list[str]]:
    """What makes this run differ from the recorded one, and what the header does not record.

    Each difference is a short phrase ("another mode (recorded: direct, now: ptc)"). A field
    the header lacks (written before openptc recorded it, or by hand) is named in the second
    list: it cannot be checked, which is worth a warning but not a refusal.
    """
    differences: list[str] = []
    fingerprint = tools_fingerprint(tools)
    checks = (
        ("mode", "mode", mode, f"another mode (recorded: {header.get('mode')}, now: {mode})"),
        (
            "prompt",
            "question",
            prompt,
            f"another question (recorded: {_short(header.get('prompt'))})",
        ),
        ("tools", "tools", fingerprint, "other tools (names, descriptions or schemas differ)"),
        (
            "prompt_version",
            "system prompt version",
            PROMPT_VERSION,
            f"another system prompt (version {header.get('prompt_version')}, now {PROMPT_VERSION})",
        ),
    )
    missing = [what for key, what, _, _ in checks if header.get(key) is None]
    for key, _, now, differs in checks:
        if key == "tools" and header.get("mode") != mode:
            continue  # each mode offers the tools differently: "another mode" says it already
        if header.get(key) is not None and header[key] != now:
            differences.append(differs)
    return differences, missing


def _short(value: Any, most: int = 60) -> str:
    text = " ".join(str(value).split())
    return repr(text if len(text) <= most else text[: most - 1] + "…")


def replay_model(path: Path) -> ScriptedModel:
    """A scripted model that answers with the transcript's responses, in order."""
    return transcript_model(path, *load_transcript(path))


def transcript_model(
    path: Path, header: dict[str, Any], responses: list[ModelResponse]
) -> ScriptedModel:
    """The replaying model of a transcript already loaded (and perhaps checked)."""
    model = header.get("model", "an unknown model")
    return ScriptedModel.from_turns(
        responses,
        name=f"scripted:replay:{model}",
        about=f"replaying a transcript of {model} from {path.name}",
    )
