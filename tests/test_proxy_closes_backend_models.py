"""The proxy closes the backend models it made when it shuts down (each holds connections),
every one of them even when one fails to close."""

from __future__ import annotations

import logging

import pytest

from fakes.proxy_setup import MeteredModel, config, running_proxy
from openptc.models.base import ModelResponse, ModelUsage, TextBlock


def _answer(text: str) -> ModelResponse:
    return ModelResponse((TextBlock(text),), "end_turn", ModelUsage(5, 2), "scripted:metered")


async def test_backend_models_are_closed_at_shutdown(caplog: pytest.LogCaptureFixture) -> None:
    failing = MeteredModel(_answer("from a"), fail_close=True)
    fine = MeteredModel(_answer("from b"), _answer("from b again"))
    unused = MeteredModel()
    settings = config(models={"a": "scripted:a", "b": "scripted:b", "c": "scripted:c"})
    backends = {"scripted:a": failing, "scripted:b": fine, "scripted:c": unused}
    with caplog.at_level(logging.ERROR, logger="openptc.proxy"):
        async with running_proxy(settings, backends) as proxy:
            client = proxy.client()
            for name in ("a", "b", "b"):
                answer = await client.messages.create(
                    model=name, max_tokens=16, messages=[{"role": "user", "content": "hi"}]
                )
                assert answer.content[0].text.startswith(f"from {name}")
            assert (failing.closed, fine.closed) == (0, 0)  # open while the proxy serves
    assert failing.closed == 1 and fine.closed == 1  # once each, though "b" served twice
    assert unused.closed == 0  # never made by the proxy, so not its to close
    assert "closing a backend model failed" in caplog.text
