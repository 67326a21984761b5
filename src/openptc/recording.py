"""Recorded transcripts: save what a real model answered, replay it offline.

A transcript is JSON lines: one header, then one line per model response, written as each
response arrives (a run that dies half-way still leaves what happened). Replaying feeds the
responses back in order through a ``ScriptedModel``, which labels itself as a replay, so a run
against a real provider can be rerun in CI with no key and no network.
"""

from __future__ import annotations

import json
from dataclasses import asdict
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
        fields = ("text", "wire", "signature", "redacted", "id", "encrypted")
        return ReasoningBlock(**{k: data[k] for k in fields if k in data})
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


class RecordingModel:
    """Wraps any model and appends each of its responses to a transcript file."""

    def __init__(self, inner: Any, path: Path, *, mode: str, prompt: str) -> None:
        self._inner = inner
        self._path = path
        header = {
            "format": FORMAT,
            "version": VERSION,
            "model": inner.name,
            "label": inner.label,
            "mode": mode,
            "prompt": prompt,
            "prompt_version": PROMPT_VERSION,
        }
        path.write_text(json.dumps(header) + "\n")

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
        response: ModelResponse = await self._inner.generate(request, on_text=on_text)
        with self._path.open("a") as transcript:
            transcript.write(json.dumps(response_to_json(response)) + "\n")
        return response


def load_transcript(path: Path) -> tuple[dict[str, Any], list[ModelResponse]]:
    """The header and the recorded responses; a clear error for anything else."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if not lines:
        raise ModelError(f"{path} is empty: not a transcript")
    header = json.loads(lines[0])
    if header.get("format") != FORMAT:
        raise ModelError(f"{path} is not an openptc transcript (no '{FORMAT}' header)")
    if header.get("version") != VERSION:
        raise ModelError(f"{path} has transcript version {header.get('version')}, need {VERSION}")
    return header, [response_from_json(json.loads(line)) for line in lines[1:]]


def replay_model(path: Path) -> ScriptedModel:
    """A scripted model that answers with the transcript's responses, in order."""
    header, responses = load_transcript(path)
    return ScriptedModel.from_turns(
        responses,
        name=f"scripted:replay:{header['model']}",
        about=f"replaying a transcript of {header['model']} from {path.name}",
    )
