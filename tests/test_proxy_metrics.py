"""``GET /metrics`` on a real proxy driven by the official ``anthropic`` SDK: what was counted
matches what the client saw, and nothing a client sent becomes a label."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fakes.harness import serve
from fakes.proxy_setup import (
    CODE_TOOL,
    KEY_A,
    MeteredModel,
    answer_calls,
    config,
    expense_tools,
    running_proxy,
)
from openptc.models.base import ModelResponse, ModelUsage, TextBlock, ToolUseBlock
from openptc.proxy.app import create_app
from openptc.proxy.metrics import backend_label
from openptc.proxy.store import MemoryStore
from openptc.scenarios import expense
from openptc.tools import Toolbox

AUDIT = "scripted:expense-audit"


async def exposition(url: str) -> str:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{url}/metrics")  # no API key: scrapers hold none
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample, by name and labels; a missing sample reads as 0 through ``value``."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def scrape(url: str) -> Samples:
    return parse(await exposition(url))


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_an_audit_through_the_sdk_is_counted_as_the_client_saw_it() -> None:
    async with running_proxy(config()) as proxy:
        client = proxy.client()
        tools = [CODE_TOOL, *expense_tools()]
        request: dict[str, Any] = {"model": "claude-expense", "max_tokens": 2048, "tools": tools}
        messages: list[dict[str, Any]] = [{"role": "user", "content": expense.QUESTION}]
        responses = [await client.messages.create(messages=messages, **request)]
        paused = await scrape(proxy.url)
        assert value(paused, "ptc_proxy_programs_paused") == 1
        assert value(paused, "ptc_proxy_containers_live") == 1
        assert value(paused, "ptc_proxy_sandbox_sessions") == 1
        container = responses[0].container
        assert container is not None
        while responses[-1].stop_reason == "tool_use":
            messages += [
                {"role": "assistant", "content": responses[-1].content},
                {"role": "user", "content": await answer_calls(responses[-1].content)},
            ]
            responses.append(
                await client.messages.create(messages=messages, container=container.id, **request)
            )
        assert expense.is_correct(responses[-1].content[-1].text)  # type: ignore[union-attr]
        samples = await scrape(proxy.url)

    asked = sum(1 for r in responses for b in r.content if b.type == "tool_use")
    pauses = sum(1 for r in responses if r.stop_reason == "tool_use")
    assert asked > pauses > 1
    assert value(samples, "ptc_proxy_requests_total", route="/v1/messages", status="200") == len(
        responses
    )
    assert value(samples, "ptc_proxy_request_seconds_count", route="/v1/messages") == len(responses)
    assert value(samples, "ptc_proxy_requests_total", route="/metrics", status="200") == 1
    assert value(samples, "ptc_proxy_model_calls_total", backend=AUDIT, outcome="ok") == 2
    assert value(samples, "ptc_proxy_model_calls_total", backend=AUDIT, outcome="error") == 0
    assert value(samples, "ptc_proxy_model_call_seconds_count", backend=AUDIT) == 2
    billed_in = sum(r.usage.input_tokens for r in responses)
    billed_out = sum(r.usage.output_tokens for r in responses)
    assert billed_in > 0 and billed_out > 0
    assert value(samples, "ptc_proxy_tokens_total", backend=AUDIT, kind="input") == billed_in
    assert value(samples, "ptc_proxy_tokens_total", backend=AUDIT, kind="output") == billed_out
    assert value(samples, "ptc_proxy_programs_started_total") == 1
    assert value(samples, "ptc_proxy_programs_finished_total", outcome="ok") == 1
    assert value(samples, "ptc_proxy_program_pauses_total") == pauses
    assert value(samples, "ptc_proxy_tool_calls_total", caller="program") == asked
    assert value(samples, "ptc_proxy_tool_calls_total", caller="direct") == 0
    assert value(samples, "ptc_proxy_containers_created_total") == 1
    assert value(samples, "ptc_proxy_programs_paused") == 0
    assert value(samples, "ptc_proxy_requests_in_flight") == 1  # the scrape itself


async def test_cache_and_reasoning_tokens_and_failures_by_configured_backend() -> None:
    """The backend is named by its configured string, without its address (which may hold a
    password); a failed backend call counts as an error."""
    spec = "openai-compatible:qwen3@http://ops:hunter2@127.0.0.1:9/v1"
    model = MeteredModel(
        ModelResponse(
            (TextBlock("hello"),),
            "end_turn",
            ModelUsage(10, 4, cache_read_tokens=900, cache_write_tokens=60, reasoning_tokens=3),
            "qwen3",
        )
    )  # one turn: the second request finds none left and fails
    settings = config(models={"team-model": spec})
    async with running_proxy(settings, models={spec: model}) as proxy:
        client = proxy.client()
        ask: dict[str, Any] = {
            "model": "team-model",
            "max_tokens": 256,
            "messages": [{"role": "user", "content": "hi"}],
        }
        answered = await client.messages.create(**ask)
        with pytest.raises(anthropic.APIStatusError) as failed:
            await client.messages.create(**ask)
        samples = await scrape(proxy.url)
    label = "openai-compatible:qwen3"
    assert backend_label(spec) == label
    assert failed.value.status_code == 502
    assert answered.usage.cache_read_input_tokens == 900
    tokens = {
        kind: value(samples, "ptc_proxy_tokens_total", backend=label, kind=kind)
        for kind in ("input", "output", "cache_read", "cache_write", "reasoning")
    }
    assert tokens == {
        "input": 10,
        "output": 4,
        "cache_read": 900,
        "cache_write": 60,
        "reasoning": 3,
    }
    assert value(samples, "ptc_proxy_model_calls_total", backend=label, outcome="ok") == 1
    assert value(samples, "ptc_proxy_model_calls_total", backend=label, outcome="error") == 1
    assert value(samples, "ptc_proxy_requests_total", route="/v1/messages", status="502") == 1
    assert not [key for key in samples if "hunter2" in str(key)]


async def test_labels_are_route_templates_and_never_what_a_client_sent() -> None:
    settings = config(models={"claude-expense": AUDIT})  # no "*": other names are a 404
    async with running_proxy(settings) as proxy:
        client = proxy.client()
        with pytest.raises(anthropic.NotFoundError):
            await client.messages.create(
                model="client-made-up-model",
                max_tokens=16,
                messages=[{"role": "user", "content": "x"}],
            )
        with pytest.raises(anthropic.AuthenticationError):
            await proxy.client("sk-not-a-key").models.list()
        await client.models.retrieve("claude-expense")
        with pytest.raises(anthropic.NotFoundError):
            await client.models.retrieve("client-probe-1")
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{proxy.url}/v1/containers/secret-path-1")).status_code == 404
            assert (await http.get(f"{proxy.url}/secret-path-2")).status_code == 404
        text = await exposition(proxy.url)
    samples = parse(text)
    assert value(samples, "ptc_proxy_requests_total", route="/v1/messages", status="404") == 1
    assert value(samples, "ptc_proxy_requests_total", route="/v1/models", status="401") == 1
    model_route = "/v1/models/{model_id}"
    assert value(samples, "ptc_proxy_requests_total", route=model_route, status="200") == 1
    assert value(samples, "ptc_proxy_requests_total", route=model_route, status="404") == 1
    assert value(samples, "ptc_proxy_requests_total", route="unmatched", status="404") == 2
    for sent in ("client-made-up-model", "client-probe-1", "secret-path", "sk-not-a-key", KEY_A):
        assert sent not in text
    routes = {dict(labels).get("route") for name, labels in samples if "route" in dict(labels)}
    assert routes <= {
        "/v1/messages",
        "/v1/models",
        model_route,
        "/metrics",
        "unmatched",
    }
    # Configured backends show from the start, at zero: a rate() has a point to start from.
    assert (
        "ptc_proxy_model_calls_total",
        frozenset({("backend", AUDIT), ("outcome", "ok")}),
    ) in samples


async def test_requests_refused_while_draining_are_counted_and_metrics_still_answer() -> None:
    app = create_app(config())
    async with serve(app, lifespan=True) as url:
        app.state.drain.draining = True  # what ``serve.DrainingServer`` does on SIGTERM
        client = anthropic.AsyncAnthropic(api_key=KEY_A, base_url=url, max_retries=0)
        with pytest.raises(anthropic.InternalServerError) as refused:
            await client.models.list()
        samples = await scrape(url)
    assert refused.value.status_code == 503
    assert value(samples, "ptc_proxy_requests_total", route="/v1/models", status="503") == 1


async def test_a_replica_that_rebuilds_a_container_counts_it() -> None:
    """Two replicas share a store; the paused program's answers reach the other one."""
    store = MemoryStore()
    tools = [CODE_TOOL, *expense_tools()]
    request: dict[str, Any] = {"model": "claude-expense", "max_tokens": 2048, "tools": tools}
    messages: list[dict[str, Any]] = [{"role": "user", "content": expense.QUESTION}]
    async with running_proxy(config(), store=store) as first:
        paused = await first.client().messages.create(messages=messages, **request)
        assert paused.container is not None and paused.stop_reason == "tool_use"
    async with running_proxy(config(), store=store) as second:
        messages += [
            {"role": "assistant", "content": paused.content},
            {"role": "user", "content": await answer_calls(paused.content)},
        ]
        await second.client().messages.create(
            messages=messages, container=paused.container.id, **request
        )
        samples = await scrape(second.url)
    assert value(samples, "ptc_proxy_containers_restored_total") == 1
    assert value(samples, "ptc_proxy_containers_created_total") == 0
    assert value(samples, "ptc_proxy_programs_started_total") == 0  # re-run, not a new one


async def test_a_tool_call_the_backend_makes_directly_is_counted_as_direct() -> None:
    spec = "scripted:metered"
    model = MeteredModel(
        ModelResponse(
            (ToolUseBlock("toolu_1", "get_team_members", {"department": "engineering"}),),
            "tool_use",
            ModelUsage(50, 9),
            "metered",
        )
    )
    async with running_proxy(config(models={"m": spec}), models={spec: model}) as proxy:
        response = await proxy.client().messages.create(
            model="m",
            max_tokens=256,
            messages=[{"role": "user", "content": expense.QUESTION}],
            tools=Toolbox(expense.make_tools()).specs(),  # no allowed_callers: direct calls
        )
        samples = await scrape(proxy.url)
    assert [b.type for b in response.content] == ["tool_use"]
    assert value(samples, "ptc_proxy_tool_calls_total", caller="direct") == 1
    assert value(samples, "ptc_proxy_tool_calls_total", caller="program") == 0
    assert value(samples, "ptc_proxy_programs_started_total") == 0
