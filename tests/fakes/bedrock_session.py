"""The fake Bedrock served on loopback and a real boto3 client pointed at it, for the tests,
with what they ask of it: a Claude model, a fast retry policy, a tool and a brain calling it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import boto3
from botocore.config import Config
from mypy_boto3_bedrock_runtime.client import BedrockRuntimeClient

from openptc.models import ModelRequest, ToolSpec, ToolUseBlock, Turn
from openptc.models.retry import RetryPolicy
from openptc.scenarios import brains

from .bedrock_server import bedrock_app
from .harness import Recorder, serve

SONNET = "anthropic.claude-sonnet-4-6-v1:0"
FAST = RetryPolicy(attempts=3, base_delay_s=0.01)
LOOKUP = ToolSpec("lookup", "Look a number up.", {"type": "object", "properties": {}})


def lookup_then_answer(request: ModelRequest) -> Turn:
    """Call ``lookup`` once, then answer with what it returned."""
    results = request.messages[-1].results
    if results:
        return f"The number is {results[0].content}."
    return [ToolUseBlock("toolu_001", "lookup", {})]


@contextlib.asynccontextmanager
async def bedrock(
    brain: Any = brains.expense_audit_brain, **options: Any
) -> AsyncIterator[tuple[str, Recorder]]:
    """The fake answering with ``brain`` (``options`` as ``bedrock_app`` takes them)."""
    recorder = Recorder()
    async with serve(bedrock_app(brain, recorder, **options)) as url:
        yield url, recorder


def client(url: str, key_id: str = "AKIDTEST") -> BedrockRuntimeClient:
    """A boto3 client for the fake: signed with test keys, botocore's retries off."""
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key="secret",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=30),
    )


def bodies(recorder: Recorder) -> list[Any]:
    """The JSON bodies the fake received, in order."""
    return [body for _, _, body in recorder.requests]
