"""A model that never contacts a provider: it runs the demo and the tests offline.

It always says what it is (``label``, and a ``name`` starting with "scripted"), so no figure it
produces can be mistaken for a real model's. It reports ``usage=None``: the agent then counts
tokens with the tiktoken tokenizer (``openptc.models.tokens``), exactly as for any model whose
provider reports no usage.

A brain written for particular tools (the expense audit's) says so (``Brain``): offered other
tools, the model refuses at once with a ``ModelBadRequest`` naming the tools it knows, rather than
call tools that do not exist and report a made-up story as an answer; offered none, it answers
in words what it is.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points

from openptc.models.base import (
    Block,
    ModelError,
    ModelRequest,
    ModelResponse,
    StopReason,
    TextBlock,
    TextSink,
    ToolSpec,
    ToolUseBlock,
)
from openptc.models.errors import ModelBadRequest

Turn = ModelResponse | Sequence[Block] | str
"""One scripted turn: a full response, its content blocks, or just the final text."""

Policy = Callable[[ModelRequest], Turn]
"""A "brain": reads the request (tool results included) and decides the next turn."""

SCRIPTED_LABEL = "scripted (offline, no real model)"

# A code tool describes the tools callable inside its programs as Python stubs.
_STUB = re.compile(r"^\s*(?:async\s+)?def\s+([A-Za-z_]\w*)\s*\(", re.MULTILINE)


def offered_tools(specs: Sequence[ToolSpec]) -> set[str]:
    """The tools a request lets the model use: direct tools by name, and the tools a code
    tool's description shows as stubs (the code tool itself is only the way to reach them)."""
    offered: set[str] = set()
    for spec in specs:
        in_code = _STUB.findall(spec.description)
        offered.update(in_code or [spec.name])
    return offered


@dataclass(frozen=True)
class Brain:
    """A policy written for one scenario's tools. Offered other tools it refuses (``check``);
    offered none (a "hi" to a proxy) it says in words what it is, and calls nothing."""

    policy: Policy
    scenario: str
    """Whose tools, in words: "the expense audit"."""
    tools: tuple[str, ...]

    def __call__(self, request: ModelRequest) -> Turn:
        if not request.tools:
            return (
                f"I am an offline scripted model written for {self.scenario}: offer me its "
                f"tools ({', '.join(self.tools)}) and I run it. For anything else, use a real "
                "model."
            )
        return self.policy(request)

    def check(self, request: ModelRequest, name: str) -> None:
        """Raise ``ModelBadRequest`` if the request offers tools, but not every one this brain
        calls: it would call tools that do not exist."""
        offered = offered_tools(request.tools)
        if not offered or all(tool in offered for tool in self.tools):
            return
        others = ", ".join(sorted(offered - set(self.tools)))
        given = f"not these ({others})" if others else f"not only {', '.join(sorted(offered))}"
        raise ModelBadRequest(
            f"{name} is written for {self.scenario}'s tools ({', '.join(self.tools)}), "
            f"{given}; pass --model for your own tools",
            provider="scripted",
        )


def _to_response(turn: Turn, name: str) -> ModelResponse:
    if isinstance(turn, ModelResponse):
        # Usage stays None even for a recorded turn: a scripted run bills nothing real.
        return dataclasses.replace(turn, usage=None, model=name)
    blocks: tuple[Block, ...] = (TextBlock(turn),) if isinstance(turn, str) else tuple(turn)
    stop: StopReason = (
        "tool_use" if any(isinstance(b, ToolUseBlock) for b in blocks) else "end_turn"
    )
    return ModelResponse(content=blocks, stop_reason=stop, usage=None, model=name)


class ScriptedModel:
    """A ``Model`` driven by a policy callable instead of a provider."""

    def __init__(self, policy: Policy, name: str = "scripted", *, about: str | None = None) -> None:
        self._policy = policy
        self._label = f"scripted (offline, {about})" if about else SCRIPTED_LABEL
        self._name = name if name.startswith("scripted") else f"scripted:{name}"
        self._requests: list[ModelRequest] = []

    @classmethod
    def from_turns(
        cls, turns: Iterable[Turn], name: str = "scripted", *, about: str | None = None
    ) -> ScriptedModel:
        """Replay fixed turns in order, whatever the requests say; running out is an error."""
        recorded = tuple(turns)
        position = iter(range(len(recorded)))

        def replay(_request: ModelRequest) -> Turn:
            index = next(position, None)
            if index is None:
                raise ModelError(
                    f"scripted model has no turn left: it had {len(recorded)} recorded turn(s) "
                    "and all were used"
                )
            return recorded[index]

        return cls(replay, name=name, about=about)

    @property
    def name(self) -> str:
        return self._name

    @property
    def label(self) -> str:
        return self._label

    async def aclose(self) -> None:
        """Nothing to close: a scripted model opens no connection."""

    @property
    def requests(self) -> tuple[ModelRequest, ...]:
        """Every request this model received, for tests that check what the agent sent."""
        return tuple(self._requests)

    async def generate(
        self, request: ModelRequest, *, on_text: TextSink | None = None
    ) -> ModelResponse:
        self._requests.append(request)
        if isinstance(self._policy, Brain):
            self._policy.check(request, self._name)
        response = _to_response(self._policy(request), self._name)
        if on_text is not None and response.text:
            on_text(response.text)  # a script has no stream: the whole text at once
        return response

    def __repr__(self) -> str:
        return f"ScriptedModel(name={self._name!r})"


SCRIPTED_ENTRY_POINTS = "openptc.scripted"
"""The entry-point group that names scripted brains: ``name = "package.module:policy"``."""


def scripted_brain(name: str) -> Policy:
    """The policy a package registered as the entry point ``name``; a ``ValueError`` listing
    the known names if there is none."""
    registered = {ep.name: ep for ep in entry_points(group=SCRIPTED_ENTRY_POINTS)}
    if name not in registered:
        known = ", ".join(f"scripted:{k}" for k in sorted(registered)) or (
            "none (is openptc installed? pip install -e . registers its entry points)"
        )
        raise ValueError(f"unknown scripted model {name!r}; known: {known}")
    policy = registered[name].load()
    if not callable(policy):
        raise ValueError(
            f"the entry point for scripted:{name} ({registered[name].value}) is not a policy: "
            "it must be a function of a ModelRequest returning the next turn"
        )
    return policy  # type: ignore[no-any-return]


def scripted_model(name: str) -> ScriptedModel:
    """The scripted model ``scripted:<name>``, whose brain a package registered as an entry point.

    openptc registers its scenarios' brains (``pyproject.toml``); a user's package may add its
    own for offline tests of their tools in the same way.
    """
    return ScriptedModel(scripted_brain(name), name=f"scripted:{name}")
