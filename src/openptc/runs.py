"""What an agent run returns: the answer, the transcript, and what it cost.

Apart from the agent loop so that reports (the CLI, the demo, the benchmarks) read results
without the machinery that made them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from openptc.models.base import Message, ReasoningBlock
from openptc.prompts import Mode
from openptc.sandbox.base import Execution

StopKind = Literal[
    "answered", "max_turns", "program_errors", "max_tokens", "refusal", "model_error"
]
TokenSource = Literal["provider", "tiktoken"]


@dataclass(frozen=True)
class RunUsage:
    """What a run cost. Input tokens count the whole conversation sent on every model call.

    ``tokens_counted`` is "provider" when every call reported usage, else "tiktoken" (the calls
    without usage were counted with the offline tokenizer). ``input_tokens`` includes cache
    reads and writes (tokens into the model all the same), which are also given apart:
    ``fresh_input_tokens`` is the rest. ``reasoning_tokens`` are part of ``output_tokens``.
    """

    model_calls: int
    input_tokens: int
    output_tokens: int
    tool_calls: int
    executions: int
    program_errors: int
    wall_time_s: float
    tokens_counted: TokenSource
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def fresh_input_tokens(self) -> int:
        """Input tokens read neither from nor into the prompt cache."""
        return self.input_tokens - self.cache_read_tokens - self.cache_write_tokens


@dataclass(frozen=True)
class RunResult:
    """The answer and everything needed to audit how it was reached."""

    answer: str
    transcript: tuple[Message, ...]
    usage: RunUsage
    programs: tuple[str, ...]
    executions: tuple[Execution, ...]
    mode: Mode
    model_label: str
    stop: StopKind = "answered"

    @property
    def reasoning(self) -> tuple[str, ...]:
        """The model's readable reasoning, one entry per reasoning block, in order (empty when
        it did not reason, or the provider returned none of it as text)."""
        return tuple(
            b.text
            for m in self.transcript
            for b in m.content
            if isinstance(b, ReasoningBlock) and b.text
        )


def usage_summary(usage: RunUsage) -> str:
    """One line for people: calls, tokens (cache and reasoning apart when there are any), time."""
    cached = ""
    if usage.cache_read_tokens or usage.cache_write_tokens:
        cached = (
            f" ({usage.cache_read_tokens:,} read from cache, "
            f"{usage.cache_write_tokens:,} written to it)"
        )
    reasoning = f" ({usage.reasoning_tokens:,} reasoning)" if usage.reasoning_tokens else ""
    return (
        f"{usage.model_calls} model calls, {usage.input_tokens:,} input{cached} / "
        f"{usage.output_tokens:,} output{reasoning} tokens ({usage.tokens_counted}), "
        f"{usage.tool_calls} tool calls, {usage.executions} programs, {usage.wall_time_s:.1f} s"
    )
