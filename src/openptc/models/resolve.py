"""Model strings: ``"<provider>:<model>"``, optionally ``"...@<base_url>"``, to a ``Model``.

A plain mapping from prefix to constructor — adding a provider is one line. Provider SDKs are
imported only when their prefix is used, so ``openptc`` works without any of them installed.

    anthropic:claude-sonnet-4-6               Anthropic Messages API (ANTHROPIC_API_KEY)
    bedrock:anthropic.claude-sonnet-4-6-v1:0  Bedrock Converse, any Bedrock model (AWS config)
    bedrock-invoke:anthropic.claude-...       Bedrock InvokeModel with the native Anthropic body
    openai:gpt-4.1                            OpenAI Chat Completions (OPENAI_API_KEY)
    openai-responses:gpt-4.1                  OpenAI Responses API
    openai-compatible:qwen3-coder@http://host:8000/v1   any OpenAI-compatible server
    vllm:… ollama:… litellm:… llamacpp:…      the same, at each server's default local address
    scripted:expense-audit                    offline scripted model (demo and tests)

A provider's SDK comes with an extra (``pip install 'openptc[anthropic]'``); without it the model
string fails with one line naming that command (``openptc.extras``).

Scripted models are found by name among the ``openptc.scripted`` entry points, so a package
(openptc's own scenarios, or a user's) adds one without ``models`` importing it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from openptc.extras import Extra, needs
from openptc.models.base import Model

LOCAL_SERVERS = {
    "vllm": "http://127.0.0.1:8000/v1",
    "ollama": "http://127.0.0.1:11434/v1",
    "litellm": "http://127.0.0.1:4000/v1",
    "llamacpp": "http://127.0.0.1:8080/v1",
}


def split_base_url(rest: str) -> tuple[str, str | None]:
    """``"model@http://host/v1"`` -> ``("model", "http://host/v1")``; model ids may hold ':'."""
    for marker in ("@http://", "@https://"):
        model, sep, url = rest.partition(marker)
        if sep:
            return model, marker[1:] + url
    return rest, None


# Each provider's adapter module and the extra that brings its SDK: checked before a model is
# made (``require_adapter``), so a missing SDK is one line naming the pip command.
ADAPTERS: dict[str, tuple[str, Extra]] = {
    "anthropic": ("openptc.models.anthropic", "anthropic"),
    "bedrock": ("openptc.models.bedrock_converse", "bedrock"),
    "bedrock-invoke": ("openptc.models.bedrock_invoke", "bedrock"),
    "openai": ("openptc.models.openai_chat", "openai"),
    "openai-responses": ("openptc.models.openai_responses", "openai"),
    "openai-compatible": ("openptc.models.openai_chat", "openai"),
    **{name: ("openptc.models.openai_chat", "openai") for name in LOCAL_SERVERS},
}


def require_adapter(prefix: str, spec: str) -> None:
    """Import the adapter of ``prefix`` now; its SDK missing raises ``MissingExtra``."""
    if prefix in ADAPTERS:
        module, extra = ADAPTERS[prefix]
        with needs(extra, f"the model {spec!r}"):
            importlib.import_module(module)


def _anthropic(model: str, base_url: str | None) -> Model:
    from openptc.models.anthropic import AnthropicModel

    return AnthropicModel(model, base_url=base_url)


def _bedrock(model: str, base_url: str | None) -> Model:
    from openptc.models.bedrock_converse import BedrockConverseModel

    return BedrockConverseModel(model, endpoint_url=base_url)


def _bedrock_invoke(model: str, base_url: str | None) -> Model:
    from openptc.models.bedrock_invoke import BedrockInvokeModel

    return BedrockInvokeModel(model, endpoint_url=base_url)


def _openai(model: str, base_url: str | None) -> Model:
    from openptc.models.openai_chat import OpenAIChatModel

    return OpenAIChatModel(model, base_url=base_url)


def _openai_responses(model: str, base_url: str | None) -> Model:
    from openptc.models.openai_responses import OpenAIResponsesModel

    return OpenAIResponsesModel(model, base_url=base_url)


def _needs_base_url(base_url: str | None) -> str:
    if base_url is None:
        raise ValueError(
            "openai-compatible needs the server's address: 'openai-compatible:<model>@<base_url>'"
            ", e.g. 'openai-compatible:qwen3-coder@http://127.0.0.1:8000/v1'"
        )
    return base_url


def _openai_compatible(model: str, base_url: str | None) -> Model:
    from openptc.models.openai_chat import OpenAIChatModel

    return OpenAIChatModel(model, base_url=_needs_base_url(base_url), local=True)


def _local_server(default_url: str) -> Callable[[str, str | None], Model]:
    def build(model: str, base_url: str | None) -> Model:
        return _openai_compatible(model, base_url or default_url)

    return build


def _scripted(name: str, base_url: str | None) -> Model:
    from openptc.models.scripted import scripted_model

    return scripted_model(name)


CONSTRUCTORS: dict[str, Callable[[str, str | None], Model]] = {
    "anthropic": _anthropic,
    "bedrock": _bedrock,
    "bedrock-invoke": _bedrock_invoke,
    "openai": _openai,
    "openai-responses": _openai_responses,
    "openai-compatible": _openai_compatible,
    "scripted": _scripted,
    **{name: _local_server(url) for name, url in LOCAL_SERVERS.items()},
}


def parse_model_string(spec: str) -> tuple[str, str, str | None]:
    """``"<provider>:<model>[@<base_url>]"`` -> ``(provider, model, base_url)``, or a
    ``ValueError`` listing the providers."""
    prefix, sep, rest = spec.partition(":")
    if not sep or prefix not in CONSTRUCTORS or not rest:
        raise ValueError(
            f"unknown model {spec!r}: expected '<provider>:<model>' with provider one of "
            + ", ".join(sorted(CONSTRUCTORS))
            + " (e.g. 'anthropic:claude-sonnet-4-6' or 'scripted:expense-audit')"
        )
    model, base_url = split_base_url(rest)
    return prefix, model, base_url


def check_model_string(spec: str) -> None:
    """Everything ``model_from_string`` would check, without making the model (no client, no
    credentials read): the string parses, its SDK imports, a scripted brain exists. For
    servers that must refuse to start on a mapping that cannot serve a request."""
    prefix, model, base_url = parse_model_string(spec)
    if prefix == "openai-compatible":
        _needs_base_url(base_url)
    if prefix == "scripted":
        from openptc.models.scripted import scripted_brain

        scripted_brain(model)
    require_adapter(prefix, spec)


def model_from_string(spec: str) -> Model:
    """Resolve a model string (see the module docstring) to a ready ``Model``."""
    prefix, model, base_url = parse_model_string(spec)
    require_adapter(prefix, spec)
    return CONSTRUCTORS[prefix](model, base_url)
