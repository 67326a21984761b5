"""A real proxy on 127.0.0.1 (uvicorn, local sandbox) driven by the official ``anthropic`` SDK.

The backend is a scripted model (the only stand-in: no provider is reachable here), or a
``MeteredModel`` where a test needs the usage a provider reports; everything between the SDK
and the sandbox is the real thing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anthropic
from pydantic import SecretStr

from fakes.harness import serve
from openptc.models.base import (
    Model,
    ModelError,
    ModelRequest,
    ModelResponse,
    TextSink,
    ToolUseBlock,
)
from openptc.models.resolve import model_from_string
from openptc.models.scripted import ScriptedModel, Turn
from openptc.proxy.app import create_app
from openptc.proxy.config import ApiKey, ProxyConfig
from openptc.proxy.store import RecordStore
from openptc.scenarios import expense
from openptc.tools import Toolbox

KEY_A = "sk-proxy-test-a"
KEY_B = "sk-proxy-test-b"
CODE_TOOL = {"type": "code_execution_20260120", "name": "code_execution"}


def expense_tools(caller: str = "code_execution_20260120") -> list[dict[str, Any]]:
    """The audit's tools as a client declares them: callable from code only."""
    toolbox = Toolbox(expense.make_tools())
    return [{**spec, "allowed_callers": [caller]} for spec in toolbox.specs()]


def config(**overrides: Any) -> ProxyConfig:
    values: dict[str, Any] = {
        "api_keys": [
            ApiKey(key=SecretStr(KEY_A), name="a"),
            ApiKey(key=SecretStr(KEY_B), name="b", max_containers=2),
        ],
        "models": {"claude-expense": "scripted:expense-audit", "*": "scripted:expense-audit"},
        "pool_size": 1,
    }
    values.update(overrides)
    return ProxyConfig(**values)


@dataclass
class Proxy:
    url: str
    models: dict[str, Model] = field(default_factory=dict)

    def client(self, key: str = KEY_A, **kwargs: Any) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(api_key=key, base_url=self.url, max_retries=0, **kwargs)


@asynccontextmanager
async def running_proxy(
    settings: ProxyConfig,
    models: dict[str, Model] | None = None,
    store: RecordStore | None = None,
    port: int = 0,
) -> AsyncIterator[Proxy]:
    """Serve the proxy; model names in ``models`` map to those scripted backends."""
    registry = dict(models or {})

    def model_for(spec: str) -> Model:
        if spec not in registry:
            registry[spec] = model_from_string(spec)
        return registry[spec]

    app = create_app(settings, store=store, model_for=model_for)
    async with serve(app, lifespan=True, port=port) as url:
        yield Proxy(url, registry)


async def answer_calls(
    content: list[Any],
    toolbox: Toolbox | None = None,
    *,
    fail: Callable[[str], bool] = lambda n: False,
) -> list[dict[str, Any]]:
    """The client's side of PTC: run each requested tool, answer with its JSON text."""
    tools = toolbox or Toolbox(expense.make_tools())
    results = []
    for block in content:
        if block.type != "tool_use":
            continue
        if fail(block.name):
            results.append(
                {
                    "type": "tool_result",
                    "tool_use_id": block.id,
                    "content": "boom: backend down",
                    "is_error": True,
                }
            )
            continue
        value = await tools.call(block.name, dict(block.input))
        results.append(
            {"type": "tool_result", "tool_use_id": block.id, "content": json.dumps(value)}
        )
    return results


async def answer_until_done(
    client: anthropic.AsyncAnthropic,
    messages: list[dict[str, Any]],
    response: Any,
    **request: Any,
) -> Any:
    """Answer every pause with the audit's tools until the turn ends; returns the last response.

    ``request`` holds what each follow-up sends besides the messages (model, tools, ...); the
    container is the one the first pause named.
    """
    container = response.container.id
    while response.stop_reason == "tool_use":
        messages += [
            {"role": "assistant", "content": response.content},
            {"role": "user", "content": await answer_calls(response.content)},
        ]
        response = await client.messages.create(messages=messages, container=container, **request)
    return response


def code_turn(n: int, program: str) -> list[ToolUseBlock]:
    """A backend turn that runs ``program`` with the code tool (as the hosted API names it)."""
    return [ToolUseBlock(id=f"toolu_code{n}", name="code_execution", input={"code": program})]


def scripted(*turns: Turn) -> ScriptedModel:
    """A backend that plays ``turns`` in order (labelled as a test script)."""
    return ScriptedModel.from_turns(turns, name="scripted:test", about="test script")


class MeteredModel:
    """A backend that plays whole responses in order *with* their usage (a scripted model
    reports none), records the requests it got, and counts how often it was closed."""

    def __init__(self, *turns: ModelResponse, fail_close: bool = False) -> None:
        self._turns = list(turns)
        self._fail_close = fail_close
        self.requests: list[ModelRequest] = []
        self.closed = 0

    @property
    def name(self) -> str:
        return "scripted:metered"

    @property
    def label(self) -> str:
        return "scripted (offline, test turns with usage)"

    async def generate(
        self, request: ModelRequest, *, on_text: TextSink | None = None
    ) -> ModelResponse:
        self.requests.append(request)
        if not self._turns:
            raise ModelError("the metered test model has no turn left")
        response = self._turns.pop(0)
        if on_text is not None and response.text:
            on_text(response.text)
        return response

    async def aclose(self) -> None:
        self.closed += 1
        if self._fail_close:
            raise RuntimeError("this test model fails to close")
