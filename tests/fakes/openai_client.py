"""The fake OpenAI API running on loopback, and the adapters pointed at it with the real SDK.

What the OpenAI tests share: ``fake()`` serves ``openai_server.openai_app`` and hands out models
whose ``openai.AsyncOpenAI`` client speaks HTTP to it; nothing in the SDK is patched.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import openai
from starlette.applications import Starlette

from openptc.models import Model, ModelRequest, Turn
from openptc.models.openai_chat import OpenAIChatModel
from openptc.models.openai_responses import OpenAIResponsesModel
from openptc.models.retry import RetryPolicy
from openptc.scenarios import brains

from .harness import Recorder, serve
from .openai_chat_server import DEEPSEEK, Local
from .openai_server import openai_app

KEY = "sk-proj-test-0123456789abcdef"
FAST = RetryPolicy(attempts=3, base_delay_s=0.01)
REASONING_ROUTES: dict[str, tuple[str, Local | None]] = {
    "responses": ("responses", None),
    "chat-deepseek": ("chat", DEEPSEEK),
}
"""Where reasoning goes back: a route's API, and the server the fake plays (None: OpenAI)."""


class Fake:
    """A running fake: its URL (with /v1), what it received, and what it answered."""

    def __init__(self, url: str, recorder: Recorder, app: Starlette, local: Local | None) -> None:
        self.url, self.recorder, self.app, self.local = url, recorder, app, local
        self.clients: list[openai.AsyncOpenAI] = []

    @property
    def bodies(self) -> list[Any]:
        return [body for _, _, body in self.recorder.requests]

    @property
    def served(self) -> list[dict[str, int]]:
        return list(self.app.state.served)

    @property
    def reasoning(self) -> list[Any]:
        """What it returned as reasoning: Responses items as sent, or a local server's text."""
        return list(self.app.state.reasoning)

    def model(
        self, api: str, *, retry: RetryPolicy = FAST, key: str = KEY, name: str = "gpt-4.1"
    ) -> Model:
        """A Chat (``local`` when the fake plays a local server) or Responses model."""
        client = openai.AsyncOpenAI(base_url=self.url, api_key=key)
        self.clients.append(client)  # closed with the fake, on this test's event loop
        if api == "chat":
            return OpenAIChatModel(name, client=client, retry=retry, local=self.local is not None)
        return OpenAIResponsesModel(name, client=client, retry=retry)


@contextlib.asynccontextmanager
async def fake(
    brain: Callable[[ModelRequest], Turn] = brains.expense_audit_brain,
    *,
    api_key: str = KEY,
    local: Local | None = None,
    secret: bytes | None = None,
) -> AsyncIterator[Fake]:
    recorder = Recorder()
    app = openai_app(brain, recorder, api_key=api_key, local=local, secret=secret)
    async with serve(app) as url:
        server = Fake(url + "/v1", recorder, app, local)
        try:
            yield server
        finally:
            for client in server.clients:
                await client.close()
