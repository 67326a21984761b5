"""The state of one turn while it runs: its request, tools, conversation, container, and tokens.

Shared by the turn runner (the model loop) and the handling of the container's programs, which
both read and extend it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from openptc.models.base import Model, ModelRequest, ModelResponse
from openptc.models.tokens import count_request_tokens, count_response_tokens
from openptc.proxy.config import ApiKey
from openptc.proxy.containers import LiveContainer
from openptc.proxy.history import Conversation
from openptc.proxy.tooling import RequestTools
from openptc.proxy.wire import MessagesRequest, Usage


@dataclass
class TokenTally:
    """The backend's tokens over every call of one turn, reported as the response's usage."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0

    def add(self, request: ModelRequest, response: ModelResponse) -> None:
        if response.usage is None:  # the backend reports none: count with the tokenizer
            self.input += count_request_tokens(request)
            self.output += count_response_tokens(response)
        else:
            self.input += response.usage.input_tokens
            self.output += response.usage.output_tokens
            self.cache_read += response.usage.cache_read_tokens
            self.cache_write += response.usage.cache_write_tokens

    def wire(self) -> Usage:
        return Usage(
            input_tokens=self.input,
            output_tokens=self.output,
            cache_read_input_tokens=self.cache_read,
            cache_creation_input_tokens=self.cache_write,
        )


@dataclass
class Turn:
    """The state of one request while it runs."""

    request: MessagesRequest
    key: ApiKey
    tools: RequestTools
    conversation: Conversation
    model: Model
    tokens: TokenTally = field(default_factory=TokenTally)
    container: LiveContainer | None = None
