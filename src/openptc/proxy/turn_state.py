"""The state of one turn while it runs: its request, tools, conversation, container, and tokens.

Shared by the turn runner (the model loop) and the handling of the container's programs, which
both read and extend it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from openptc.models.base import Model, ModelRequest, ModelResponse
from openptc.models.settings import DEFAULT_SETTINGS, ModelSettings
from openptc.models.tokens import (
    count_reasoning_tokens,
    count_request_tokens,
    count_response_tokens,
)
from openptc.proxy.config import ApiKey
from openptc.proxy.containers import LiveContainer
from openptc.proxy.history import Conversation
from openptc.proxy.tooling import RequestTools
from openptc.proxy.wire import MessagesRequest, OutputTokensDetails, Usage


@dataclass
class TokenTally:
    """The backend's tokens over every call of one turn, reported as the response's usage:
    fresh input, cache reads and cache writes apart, as the API reports them; reasoning is part
    of the output, and told apart in ``output_tokens_details``."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0

    def add(self, request: ModelRequest, response: ModelResponse) -> None:
        if response.usage is None:  # the backend reports none: count with the tokenizer
            self.input += count_request_tokens(request)
            self.output += count_response_tokens(response)
            self.reasoning += count_reasoning_tokens(response.content)
        else:
            self.input += response.usage.input_tokens
            self.output += response.usage.output_tokens
            self.cache_read += response.usage.cache_read_tokens
            self.cache_write += response.usage.cache_write_tokens
            self.reasoning += response.usage.reasoning_tokens

    def counts(self) -> dict[str, int]:
        """The tally by kind, as the metrics name the kinds."""
        return {
            "input": self.input,
            "output": self.output,
            "cache_read": self.cache_read,
            "cache_write": self.cache_write,
            "reasoning": self.reasoning,
        }

    def wire(self) -> Usage:
        details = OutputTokensDetails(thinking_tokens=self.reasoning) if self.reasoning else None
        return Usage(
            input_tokens=self.input,
            output_tokens=self.output,
            cache_read_input_tokens=self.cache_read,
            cache_creation_input_tokens=self.cache_write,
            output_tokens_details=details,
        )


@dataclass
class Turn:
    """The state of one request while it runs."""

    request: MessagesRequest
    key: ApiKey
    tools: RequestTools
    conversation: Conversation
    model: Model
    settings: ModelSettings = DEFAULT_SETTINGS
    max_tokens: int = 4096  # the backend's: the client's less its thinking budget
    tokens: TokenTally = field(default_factory=TokenTally)
    container: LiveContainer | None = None
    backend: str = ""  # the configured model string: the metrics' label
