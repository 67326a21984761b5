"""A running Anthropic fake for tests: its URL, what it received, faults, and a swappable brain.

Shared by the test modules of the Anthropic adapter; each serves one fake for the module (uvicorn
takes ~0.2 s to stop) and clears it between tests: a module on one event loop
(``pytest.mark.asyncio(loop_scope="module")``) binds the fixtures ``server`` and ``fake`` where
pytest looks for them, ``server, fake = anthropic_fixture.server, anthropic_fixture.fake``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from openptc.models.anthropic import AnthropicModel
from openptc.models.base import ModelRequest
from openptc.models.retry import RetryPolicy
from openptc.models.scripted import Policy, Turn
from openptc.scenarios import brains, expense

from . import harness
from .anthropic_server import FAKE_API_KEY, anthropic_app

FAST = RetryPolicy(attempts=3, base_delay_s=0.01)


def audit_or_echo(request: ModelRequest) -> Turn:
    """The expense audit when asked its question; otherwise the last thing the user said."""
    if request.messages[0].text == expense.QUESTION:
        return brains.expense_audit_brain(request)
    return f"You said: {request.messages[-1].text}"


class _Brain:
    """The server's brain, swappable between tests."""

    def __init__(self) -> None:
        self.policy: Policy = audit_or_echo

    def __call__(self, request: ModelRequest) -> Turn:
        return self.policy(request)


class Fake:
    """A running fake: its URL, what it received, faults to serve, and who answers."""

    def __init__(self, url: str, recorder: harness.Recorder, brain: _Brain) -> None:
        self.url = url
        self.recorder = recorder
        self._brain = brain

    def model(self, name: str = "claude-x", **options: Any) -> AnthropicModel:
        """An adapter for the model ``name`` (the fake answers for any), pointed at the fake."""
        options.setdefault("api_key", FAKE_API_KEY)
        options.setdefault("retry", FAST)
        return AnthropicModel(name, base_url=self.url, **options)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [body for _, _, body in self.recorder.requests]

    @property
    def headers(self) -> list[dict[str, str]]:
        return [headers for _, headers, _ in self.recorder.requests]

    def fail_next(self, *faults: harness.Fault) -> None:
        self.recorder.faults.extend(faults)

    def answer_with(self, policy: Policy) -> None:
        self._brain.policy = policy

    def reset(self) -> None:
        self.recorder.requests.clear()
        self.recorder.faults.clear()
        self.answer_with(audit_or_echo)


@contextlib.asynccontextmanager
async def running(**options: Any) -> AsyncIterator[Fake]:
    """Serve a fake (``options`` go to ``anthropic_app``) until the block ends."""
    recorder, brain = harness.Recorder(), _Brain()
    async with harness.serve(anthropic_app(brain, recorder, **options)) as url:
        yield Fake(url, recorder, brain)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[Fake]:
    """One fake for the whole test module."""
    async with running() as started:
        yield started


@pytest.fixture
def fake(server: Fake) -> Fake:
    """The module's fake, cleared for this test."""
    server.reset()
    return server
