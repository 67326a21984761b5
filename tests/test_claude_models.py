"""One Claude model reads as one version whichever API names it, and takes thinking one way."""

from __future__ import annotations

import pytest

from openptc.models.anthropic_settings import thinking_style
from openptc.models.bedrock_models import bedrock_model, claude_thinking
from openptc.models.claude_models import NEWEST, claude_version


@pytest.mark.parametrize(
    ("anthropic_name", "bedrock_id", "version", "form"),
    [
        (
            "claude-3-7-sonnet-20250219",
            "anthropic.claude-3-7-sonnet-20250219-v1:0",
            (3, 7),
            "budget",
        ),
        (
            "claude-sonnet-4-20250514",
            "us.anthropic.claude-sonnet-4-20250514-v1:0",
            (4, 0),
            "budget",
        ),
        (
            "claude-sonnet-4-5-20250929",
            "anthropic.claude-sonnet-4-5-20250929-v1:0",
            (4, 5),
            "budget",
        ),
        ("claude-sonnet-4-6", "anthropic.claude-sonnet-4-6-v1:0", (4, 6), "both"),
        ("claude-opus-4-7", "global.anthropic.claude-opus-4-7", (4, 7), "adaptive"),
        ("claude-mythos-preview", "anthropic.claude-mythos-preview", NEWEST, "adaptive"),
    ],
)
def test_both_apis_read_one_model_alike(
    anthropic_name: str, bedrock_id: str, version: tuple[int, int], form: str
) -> None:
    model = bedrock_model(bedrock_id)

    assert claude_version(anthropic_name) == version == model.claude_generation
    assert thinking_style(anthropic_name) == form == claude_thinking(model)


def test_what_each_api_assumes_of_a_model_without_thinking_or_a_number() -> None:
    """Bedrock refuses thinking before Claude 3.7 and reads a Claude without a number as the
    newest; Anthropic's API sends a budget and assumes nothing of a name it does not know."""
    assert claude_thinking(bedrock_model("anthropic.claude-3-5-haiku-20241022-v1:0")) == "none"
    assert thinking_style("claude-3-5-haiku-20241022") == "budget"
    assert claude_thinking(bedrock_model("anthropic.claude-next")) == "adaptive"
    assert claude_version("claude-next") is None and thinking_style("claude-next") == "budget"
