"""``ModelSettings`` in the words of OpenAI's two APIs, and what each of them refuses.

Refusals are raised before any request (``UnsupportedSetting``), so a run never pays for a call
the API would reject, and the message says what to do instead.

Reasoning. Chat Completions takes ``reasoning_effort``; the Responses API takes ``reasoning:
{"effort", "summary": "auto"}`` and, because openptc uses it statelessly (``store=False``),
``include: ["reasoning.encrypted_content"]``: the encrypted reasoning is what carries the model's
thinking from one turn to the next. A budget is turned into the smallest effort that holds it
(``Reasoning.level``). OpenAI-compatible servers get ``reasoning_effort`` as well: vLLM and
Ollama honour it for the models that reason (gpt-oss, Qwen3, ...), DeepSeek maps it to its own
levels (its thinking mode is on by default). ``minimal`` is OpenAI's own level: local servers are
asked for ``low``, the least effort they all know (Ollama takes low, medium, high). Some models
switch thinking on in a way of their own (vLLM's ``chat_template_kwargs``, DeepSeek's
``thinking``): pass that in ``settings.extra``.

OpenAI's reasoning models refuse ``temperature``, ``top_p`` and ``stop``: with reasoning on, they
are refused here for OpenAI's own API (local servers take them).

Prompt caching. OpenAI caches prompt prefixes by itself; openptc keeps the prefix stable (system
prompt, then tools, then the conversation) and, with ``settings.cache``, sends a
``prompt_cache_key`` derived from the system prompt and the tool specs, so every call of one run
(and of runs with the same tools) is routed to the same cache. Only to OpenAI's own API: local
servers may refuse a field they do not know. Caching cannot be turned off at OpenAI;
``cache=False`` only drops the key.

Sampling. ``stop_sequences`` go as Chat's ``stop`` (OpenAI takes at most 4); the Responses API
has none. ``top_k`` does not exist at OpenAI; vLLM and Ollama take it as an extra body field.
``user`` is OpenAI's ``safety_identifier`` (``user`` is deprecated there) and a local server's
``user``. ``metadata``: OpenAI's Chat Completions rejects it unless the completion is stored
("The 'metadata' parameter is only allowed when 'store' is enabled."), and openptc does not store
conversations, so it is refused there; the Responses API and local servers get it. ``extra`` is
merged into the body (the SDK's ``extra_body``), over anything openptc set.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from openptc.models.base import ModelRequest
from openptc.models.settings import Effort, ModelSettings, Reasoning, UnsupportedSetting

MAX_STOP_SEQUENCES = 4
METADATA_LIMITS = (16, 64, 512)  # pairs, key length, value length (OpenAI's documented limits)
ENCRYPTED_REASONING = "reasoning.encrypted_content"


def prompt_cache_key(request: ModelRequest) -> str:
    """A key naming the request's stable prefix (system prompt and tool specs), the same for
    every call that shares it."""
    prefix = [request.system, [[t.name, t.description, t.input_schema] for t in request.tools]]
    text = json.dumps(prefix, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "openptc-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def effort(reasoning: Reasoning, *, local: bool) -> Effort:
    """The level to ask for: ``minimal`` is OpenAI's alone, a local server gets ``low``."""
    level = reasoning.level()
    return "low" if local and level == "minimal" else level


def _where(api: str, local: bool) -> str:
    return f"an OpenAI-compatible server ({api})" if local else f"OpenAI's {api}"


def _refuse_with_reasoning(settings: ModelSettings, api: str, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(settings, name)
        if value is not None and value != ():
            raise UnsupportedSetting(
                name,
                f"OpenAI's {api}",
                "OpenAI's reasoning models refuse it; leave it unset while reasoning is on "
                "(or turn reasoning off to sample with it)",
            )


def _check_metadata(settings: ModelSettings, where: str) -> None:
    pairs, key_len, value_len = METADATA_LIMITS
    metadata = settings.metadata
    if len(metadata) > pairs:
        raise UnsupportedSetting(
            "metadata", where, f"{len(metadata)} pairs given, at most {pairs} are kept"
        )
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise UnsupportedSetting("metadata", where, f"{key!r}: keys and values are strings")
        if len(key) > key_len or len(value) > value_len:
            raise UnsupportedSetting(
                "metadata",
                where,
                f"{key[:20]!r}...: keys are at most {key_len} characters, values {value_len}",
            )


def _common(
    settings: ModelSettings, request: ModelRequest, local: bool, where: str
) -> dict[str, Any]:
    """What both APIs say alike: sampling, the end user, metadata, the cache key."""
    args: dict[str, Any] = {}
    if settings.temperature is not None:
        args["temperature"] = settings.temperature
    if settings.top_p is not None:
        args["top_p"] = settings.top_p
    if settings.user is not None:
        args["user" if local else "safety_identifier"] = settings.user
    if settings.metadata:
        if not local:
            _check_metadata(settings, where)
        args["metadata"] = dict(settings.metadata)
    if settings.cache and not local:
        args["prompt_cache_key"] = prompt_cache_key(request)
    return args


def chat_settings(request: ModelRequest, *, local: bool) -> dict[str, Any]:
    """Chat Completions arguments for ``request.settings``; refuses what the API cannot take."""
    settings = request.settings
    api = "Chat Completions"
    where = _where(api, local)
    if settings.reasoning is not None and not local:
        _refuse_with_reasoning(settings, api, ("temperature", "top_p", "stop_sequences"))
    if settings.metadata and not local:
        raise UnsupportedSetting(
            "metadata",
            where,
            "OpenAI keeps metadata only with stored completions (store=true), and openptc does "
            "not store conversations; use the Responses API (openai-responses:), which takes it",
        )
    if settings.top_k is not None and not local:
        raise UnsupportedSetting("top_k", where, "OpenAI has no top_k; use top_p or temperature")
    stops = settings.stop_sequences
    if len(stops) > MAX_STOP_SEQUENCES and not local:
        raise UnsupportedSetting(
            "stop_sequences",
            where,
            f"{len(stops)} given, OpenAI takes at most {MAX_STOP_SEQUENCES}",
        )
    args = _common(settings, request, local, where)
    if settings.reasoning is not None:
        args["reasoning_effort"] = effort(settings.reasoning, local=local)
    if stops:
        args["stop"] = list(stops)
    extra: dict[str, Any] = {}
    if settings.top_k is not None:
        extra["top_k"] = settings.top_k  # vLLM and Ollama read it from the body
    extra.update(settings.extra)
    if extra:
        args["extra_body"] = extra
    return args


def responses_settings(request: ModelRequest, *, local: bool) -> dict[str, Any]:
    """Responses API arguments for ``request.settings``; refuses what the API cannot take."""
    settings = request.settings
    api = "Responses API"
    where = _where(api, local)
    if settings.stop_sequences:
        raise UnsupportedSetting(
            "stop_sequences",
            where,
            "the Responses API has no stop sequences; use Chat Completions (openai:) for them",
        )
    if settings.top_k is not None:
        raise UnsupportedSetting(
            "top_k",
            where,
            "the Responses API has no top_k; use top_p or temperature"
            + (" (or settings.extra, if this server takes it)" if local else ""),
        )
    if settings.reasoning is not None and not local:
        _refuse_with_reasoning(settings, api, ("temperature", "top_p"))
    args = _common(settings, request, local, where)
    if settings.reasoning is not None:
        args["reasoning"] = {"effort": effort(settings.reasoning, local=local), "summary": "auto"}
        args["include"] = [ENCRYPTED_REASONING]
    if settings.extra:
        args["extra_body"] = dict(settings.extra)
    return args


__all__ = [
    "ENCRYPTED_REASONING",
    "MAX_STOP_SEQUENCES",
    "chat_settings",
    "effort",
    "prompt_cache_key",
    "responses_settings",
]
