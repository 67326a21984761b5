"""End-to-end time of a run as a user would wait for it, from a stated model of the provider.

A scripted model answers in microseconds, so its wall time says nothing about a real one.
Each model call is charged a time to first token, a prefill rate for the input it had to read
fresh (cache reads are nearly free) and a decode rate for what it wrote; the run's other time
(tools, sandbox, the agent itself) is measured. The defaults describe a hosted frontier model;
``--ttft``, ``--input-tps`` and ``--output-tps`` set your own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LatencyModel:
    ttft_s: float = 0.5
    """Time to first token of a call with a short prompt."""
    input_tokens_per_s: float = 10_000.0
    """Prefill rate for input read fresh or written to the cache."""
    output_tokens_per_s: float = 60.0
    """Decode rate."""

    def __post_init__(self) -> None:
        if self.ttft_s < 0 or self.input_tokens_per_s <= 0 or self.output_tokens_per_s <= 0:
            raise ValueError(
                "latency model: ttft must be >= 0 and token rates > 0, "
                f"got ttft={self.ttft_s}, input={self.input_tokens_per_s}, "
                f"output={self.output_tokens_per_s}"
            )

    def call_seconds(self, uncached_input: int, output: int) -> float:
        """Modelled duration of one model call."""
        return (
            self.ttft_s
            + uncached_input / self.input_tokens_per_s
            + output / self.output_tokens_per_s
        )

    def describe(self) -> str:
        return (
            f"{self.ttft_s:g} s to first token + input read fresh at "
            f"{self.input_tokens_per_s:,.0f} tokens/s + output at "
            f"{self.output_tokens_per_s:,.0f} tokens/s, per model call"
        )
