"""What a container remembers, so that any replica can take it over.

Not the interpreter (it cannot travel) but how to rebuild it: the programs run so far, in order,
each with the tool calls it made and the results the client gave. Re-running them with those
results reproduces the interpreter's state; a program that asks for something else on the way
has diverged, and is reported, never answered with a guess.

A program also keeps the backend's reasoning in the turn that wrote it: the backend needs it
back with the program's result, even from a client that left it out of its history. The
``ReasoningBlock``s are stored as they are (pydantic reads and writes the dataclass field for
field), so a field the block gains is kept without a copy of it here.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from openptc.models.base import ReasoningBlock


class CallRecord(BaseModel):
    """One programmatic tool call; ``result`` is None while the client has not answered."""

    tool_use_id: str
    tool: str
    input: dict[str, Any]
    result: str | None = None
    is_error: bool = False
    announced: bool = False  # shown to the client in a response (only such calls are demanded)
    timed_out: bool = False  # the program got TimeoutError; a later answer is not its result

    @property
    def answered(self) -> bool:
        return self.result is not None or self.timed_out


class ProgramRecord(BaseModel):
    """One program run in the container (a ``server_tool_use`` block), finished or paused."""

    server_tool_use_id: str
    code: str
    tools: dict[str, list[str]] = Field(default_factory=dict)  # name -> parameter order
    calls: list[CallRecord] = Field(default_factory=list)
    finished: bool = False
    reasoning: list[ReasoningBlock] = Field(default_factory=list)  # of the turn that wrote it

    def pending(self) -> list[CallRecord]:
        """Calls shown to the client and still waiting for its answer."""
        return [c for c in self.calls if c.announced and not c.answered]


class ContainerHistory(BaseModel):
    """The payload of a stored container record."""

    created_at: float
    expires_at: float | None = None  # the container's own expiry (the store keeps it longer)
    holder: str | None = None  # the URL of the replica holding the live sandbox, if advertised
    programs: list[ProgramRecord] = Field(default_factory=list)

    @property
    def paused(self) -> ProgramRecord | None:
        last = self.programs[-1] if self.programs else None
        return last if last is not None and not last.finished else None
