"""A model that never contacts a provider: it runs the demo and the tests offline.

It always says what it is (``label``, and a ``name`` starting with "scripted"), so no figure it
produces can be mistaken for a real model's. It reports ``usage=None``: the agent then counts
tokens with the tiktoken tokenizer (``openptc.models.tokens``), exactly as for any model whose
provider reports no usage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from importlib.metadata import entry_points

from openptc.models.base import (
    Block,
    ModelError,
    ModelRequest,
    ModelResponse,
    StopReason,
    TextBlock,
    TextSink,
    ToolUseBlock,
)

Turn = ModelResponse | Sequence[Block] | str
"""One scripted turn: a full response, its content blocks, or just the final text."""

Policy = Callable[[ModelRequest], Turn]
"""A "brain": reads the request (tool results included) and decides the next turn."""

SCRIPTED_LABEL = "scripted (offline, no real model)"


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
        response = _to_response(self._policy(request), self._name)
        if on_text is not None and response.text:
            on_text(response.text)  # a script has no stream: the whole text at once
        return response

    def __repr__(self) -> str:
        return f"ScriptedModel(name={self._name!r})"


SCRIPTED_ENTRY_POINTS = "openptc.scripted"
"""The entry-point group that names scripted brains: ``name = "package.module:policy"``."""


def scripted_model(name: str) -> ScriptedModel:
    """The scripted model ``scripted:<name>``, whose brain a package registered as an entry point.

    openptc registers its scenarios' brains (``pyproject.toml``); a user's package may add its
    own for offline tests of their tools in the same way.
    """
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
    return ScriptedModel(policy, name=f"scripted:{name}")
