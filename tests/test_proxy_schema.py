"""Schemathesis against the proxy's own OpenAPI document, served by a real proxy on 127.0.0.1.

Every operation in ``/openapi.json`` is fuzzed with schema-valid and schema-breaking requests
(body, headers, path) sent with a real key. Whatever is sent, the proxy must not answer 5xx,
and every answer must be what the document says: a documented status, JSON, the success schema
for 2xx and Anthropic's error envelope ``{"type": "error", "error": {"type", "message"}}`` for
4xx. Requests without a key (or with a wrong one) must get that envelope with a 401.

Generation is seeded and derandomized, so a run is the same run everywhere.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from schemathesis import Case, Config
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    response_schema_conformance,
    status_code_conformance,
)

from fakes.proxy_setup import KEY_A, config, running_proxy
from openptc.proxy.openapi import openapi_document

VERSIONS = ("2023-06-01", "2026-10-21")
MAX_EXAMPLES = 50
SEED = 20261021
REQUEST_TIMEOUT_S = 20.0

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    missing_required_header,
    ignored_auth,
]


class _Collect(logging.Handler):
    """Keeps what the proxy (and uvicorn) log at ERROR: the tracebacks behind any 5xx."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def report(self) -> str:
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        return "\n".join(formatter.format(r) for r in self.records)


@pytest.fixture(scope="module")
def proxy_url() -> Iterator[str]:
    """A proxy on its own event loop in a thread: schemathesis' client is synchronous."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    found: dict[str, Any] = {}

    async def serve() -> None:
        stop = asyncio.Event()
        found["stop"] = stop
        try:
            async with running_proxy(config(container_idle_s=2.0)) as proxy:
                found["url"] = proxy.url
                ready.set()
                await stop.wait()
        finally:
            ready.set()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    ready.wait(30)
    if "url" not in found:
        raise RuntimeError("the proxy did not start")
    try:
        yield found["url"]
    finally:
        loop.call_soon_threadsafe(found["stop"].set)
        thread.join(30)
        loop.close()


@pytest.fixture(scope="module")
def server_log() -> Iterator[_Collect]:
    handler = _Collect()
    loggers = [logging.getLogger("openptc.proxy"), logging.getLogger("uvicorn.error")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


SETTINGS = Config.from_dict(
    {
        "seed": SEED,
        "generation": {"deterministic": True, "database": "none", "max-examples": MAX_EXAMPLES},
        "auth": {"openapi": {"apiKey": {"api_key": KEY_A}}},
    }
)
schema = schemathesis.openapi.from_dict(openapi_document(), config=SETTINGS)


def _assert_error_envelope(response: Any) -> None:
    body = response.json()
    assert body["type"] == "error", body
    assert isinstance(body["error"]["type"], str) and isinstance(body["error"]["message"], str)


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_no_request_gets_a_server_error_and_every_answer_matches_the_schema(
    case: Case, proxy_url: str, server_log: _Collect
) -> None:
    before = len(server_log.records)
    response = case.call(base_url=proxy_url, timeout=REQUEST_TIMEOUT_S)
    try:
        case.validate_response(response, checks=CHECKS)
    except BaseException:
        if len(server_log.records) > before:
            print("proxy log:\n" + server_log.report())
        raise
    if 400 <= response.status_code < 500:
        _assert_error_envelope(response)
    assert len(server_log.records) == before, server_log.report()


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/messages", {"model": "m", "max_tokens": 1, "messages": []}),
        ("POST", "/v1/messages/count_tokens", {"model": "m", "messages": []}),
        ("GET", "/v1/models", None),
        ("GET", "/v1/models/claude-expense", None),
    ],
)
@pytest.mark.parametrize(
    "auth", [{}, {"x-api-key": ""}, {"x-api-key": "sk-wrong"}, {"authorization": "Bearer nope"}]
)
def test_without_a_valid_key_every_route_answers_401_json(
    proxy_url: str,
    version: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    auth: dict[str, str],
) -> None:
    response = requests.request(
        method,
        proxy_url + path,
        json=body,
        headers={"anthropic-version": version, **auth},
        timeout=REQUEST_TIMEOUT_S,
    )
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/json")
    _assert_error_envelope(response)
    assert response.json()["error"]["type"] == "authentication_error"
