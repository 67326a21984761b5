"""A reasoning run through the OpenAI adapters, recorded with ``RecordingModel`` against the fake,
replays offline with ``replay_model`` to the same answer, the same reasoning, and reasoning blocks
intact (ids and encrypted content included), so the transcript could continue on the real API.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fakes.openai_client import REASONING_ROUTES, fake
from openptc.agent import Agent
from openptc.models import ModelSettings, Reasoning, ReasoningBlock
from openptc.recording import RecordingModel, load_transcript, replay_model
from openptc.sandbox.local import LocalSandbox
from openptc.scenarios import expense

LOW = ModelSettings(reasoning=Reasoning(effort="low"))


@pytest.mark.parametrize("route", REASONING_ROUTES)
async def test_a_recorded_reasoning_run_replays_offline(
    route: str, tmp_path: Path, sandbox: LocalSandbox
) -> None:
    api, local = REASONING_ROUTES[route]
    path = tmp_path / f"{route}.jsonl"
    async with fake(local=local) as server:
        recorder = RecordingModel(server.model(api), path, mode="ptc", prompt=expense.QUESTION)
        original = await Agent(recorder, expense.make_tools(), sandbox, settings=LOW).run(
            expense.QUESTION
        )
    # The fake is gone: what follows runs from the file alone.
    header, responses = load_transcript(path)
    replayed = await Agent(replay_model(path), expense.make_tools(), sandbox, settings=LOW).run(
        expense.QUESTION
    )

    assert expense.is_correct(original.answer) and replayed.answer == original.answer
    assert replayed.reasoning == original.reasoning and len(original.reasoning) >= 2
    assert replayed.transcript == original.transcript  # every block, reasoning included
    assert "replaying a transcript" in replayed.model_label
    assert header["model"] == recorder.name and len(responses) == original.usage.model_calls
    recorded = sum(r.usage.reasoning_tokens for r in responses if r.usage is not None)
    assert recorded == original.usage.reasoning_tokens > 0  # the provider's figures, kept
    kept = [b for r in responses for b in r.content if isinstance(b, ReasoningBlock)]
    wire = "openai-responses" if api == "responses" else "openai-chat"
    assert kept and all(b.wire == wire for b in kept)
    if api == "responses":  # what the API needs to take the reasoning back survives the file
        sealed = [b for b in kept if b.encrypted is not None]
        assert [b.encrypted for b in sealed] == [i["encrypted_content"] for i in server.reasoning]
        assert all(b.id and b.id.startswith("rs_") for b in kept)
