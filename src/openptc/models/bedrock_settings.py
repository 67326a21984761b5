"""``ModelSettings`` in Converse's words, or ``UnsupportedSetting`` before any request.

- ``inferenceConfig``: maxTokens, temperature (Converse takes 0 to 1), topP, stopSequences;
- reasoning, in ``additionalModelRequestFields`` and the family's own words:
  Claude ``thinking`` (a budget, or adaptive with ``output_config.effort``, as the model takes
  it; see ``bedrock_models.claude_thinking``), plus the interleaved-thinking beta on Claude 4
  with a budget so that it thinks between tool calls too; gpt-oss ``reasoning_effort`` (low,
  medium or high: minimal is low); DeepSeek R1 reasons always, so nothing is sent and the
  effort or budget cannot be chosen. Other models: refused, pointing at ``extra``. The answer
  keeps its room: maxTokens is raised by the budget (``Reasoning.budget()``);
- with Claude thinking on, the model refuses a temperature other than 1, top_k, top_p below
  0.95 and a forced tool choice, so they are refused here first; Claude 4.5 and later take a
  temperature or a top_p, not both, and 4.7 and later none of temperature, top_p, top_k (the
  rules of every Claude API: ``claude_models``);
- ``top_k``: ``{"top_k": n}`` for Claude, refused for others (their field, if any, differs);
- ``metadata`` and ``user`` (as ``metadata["user"]``): ``requestMetadata``, the string pairs
  Bedrock keeps with the invocation log; Bedrock's rules on them are checked here;
- ``extra``: merged last into ``additionalModelRequestFields``, so it wins;
- ``stop_sequences`` on Claude also ask for ``/stop_sequence`` among the
  ``additionalModelResponseFieldPaths``: Converse's own reply does not say which one stopped
  the model, Claude's raw reply does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from openptc.models import claude_models
from openptc.models.base import ModelRequest
from openptc.models.bedrock_models import (
    BedrockModel,
    bedrock_model,
    claude_thinking,
    is_deepseek_r1,
    is_gpt_oss,
    prompt_cache_places,
)
from openptc.models.claude_models import INTERLEAVED_THINKING_BETA as INTERLEAVED_THINKING
from openptc.models.settings import Reasoning, UnsupportedSetting

STOP_SEQUENCE_PATH = "/stop_sequence"
_METADATA_TEXT = re.compile(r"[a-zA-Z0-9\s:_@$#=/+,\-.]*")
_METADATA_MAX = 16


@dataclass
class ConverseSettings:
    """The parts of a Converse request that the settings decide."""

    inference: dict[str, Any]
    additional: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    response_paths: list[str] = field(default_factory=list)
    cache_places: frozenset[str] = frozenset()


def converse_settings(model_id: str, request: ModelRequest) -> ConverseSettings:
    """What ``request.settings`` add to a Converse request for ``model_id``; raises
    ``UnsupportedSetting`` for what this model cannot take."""
    settings = request.settings
    model = bedrock_model(model_id)
    where = f"Bedrock Converse for {model_id!r}"
    inference: dict[str, Any] = {"maxTokens": request.max_tokens}
    out = ConverseSettings(inference)
    if settings.reasoning is not None:
        out.additional.update(_reasoning_fields(model, where, settings.reasoning, request))
        inference["maxTokens"] += settings.reasoning.budget()
    if model.is_claude:
        claude_models.check_sampling(settings, model.claude_generation, model_id, where)
        if settings.reasoning is not None:
            claude_models.check_thinking(request, where)
    if settings.temperature is not None:
        if settings.temperature > 1:
            raise UnsupportedSetting(
                f"temperature={settings.temperature}",
                where,
                "Converse takes 0 to 1; pass one in that range",
            )
        inference["temperature"] = settings.temperature
    if settings.top_p is not None:
        inference["topP"] = settings.top_p
    if settings.top_k is not None:
        if not model.is_claude:
            raise UnsupportedSetting(
                "top_k",
                where,
                "Converse has no top_k, and only Claude's own field is known here; pass the "
                "model's field with ModelSettings(extra={...}) (additionalModelRequestFields)",
            )
        out.additional["top_k"] = settings.top_k
    if settings.stop_sequences:
        inference["stopSequences"] = list(settings.stop_sequences)
        if model.is_claude:
            out.response_paths.append(STOP_SEQUENCE_PATH)
    out.metadata = _request_metadata(dict(settings.metadata), settings.user, where)
    out.additional.update(settings.extra)
    if settings.cache:
        out.cache_places = prompt_cache_places(model_id)
    return out


def _reasoning_fields(
    model: BedrockModel, where: str, reasoning: Reasoning, request: ModelRequest
) -> dict[str, Any]:
    if model.is_claude:
        form = claude_thinking(model)
        claude_models.check_has_thinking(form, where)
        fields = claude_models.thinking_fields(reasoning, form)
        budget = not claude_models.is_adaptive(reasoning, form)
        if budget and request.tools and model.claude_generation >= (4, 0):
            # so that it thinks between tool calls too (Claude 4 and later)
            fields["anthropic_beta"] = [INTERLEAVED_THINKING]
        return fields
    if is_gpt_oss(model):
        level = reasoning.level()
        return {"reasoning_effort": "low" if level == "minimal" else level}
    if is_deepseek_r1(model):
        return {}  # it always reasons; there is no field to say how much
    raise UnsupportedSetting(
        "reasoning",
        where,
        "openptc knows how to ask Claude, gpt-oss and DeepSeek R1 to reason on Bedrock, not "
        "this model; pass the model's own reasoning field with ModelSettings(extra={...}), "
        "which goes into additionalModelRequestFields as it is",
    )


def _request_metadata(pairs: dict[str, str], user: str | None, where: str) -> dict[str, str]:
    if user is not None:
        pairs["user"] = user
    if len(pairs) > _METADATA_MAX:
        raise UnsupportedSetting(
            f"{len(pairs)} metadata pairs", where, f"requestMetadata holds at most {_METADATA_MAX}"
        )
    for key, value in pairs.items():
        for text, kind in ((key, "key"), (value, "value")):
            if not isinstance(text, str) or not _METADATA_TEXT.fullmatch(text) or len(text) > 256:
                raise UnsupportedSetting(
                    f"metadata {kind} {text!r}",
                    where,
                    "requestMetadata takes up to 256 letters, digits, spaces and : _ @ $ # = / "
                    "+ , - .",
                )
        if not key:
            raise UnsupportedSetting("an empty metadata key", where, "keys need a character")
    return pairs


__all__ = [
    "INTERLEAVED_THINKING",
    "STOP_SEQUENCE_PATH",
    "ConverseSettings",
    "converse_settings",
]
