"""A dated, replaceable price table, and what a run's tokens cost under it.

Cost follows cache behaviour, not raw token counts: a cache read is billed at a tenth of fresh
input or less, a cache write at more than fresh input. So every price here keeps the four
rates apart, and a cost is always computed from the four counts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

PER_MILLION = 1_000_000


class Price(BaseModel):
    """One model's rates in USD per million tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_write: float = Field(ge=0)
    cache_read: float = Field(ge=0)
    cache_min_tokens: int = Field(default=1024, ge=0)
    """The shortest prompt the provider caches."""
    cache_lookback_blocks: int | None = Field(default=20, ge=1)
    """How far back (content blocks) a breakpoint finds an earlier entry; None: any prefix
    is found (OpenAI's automatic prefix caching)."""


class PriceTable(BaseModel):
    """Prices as of a date, from a named source; ``default`` prices a scripted run."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    as_of: str
    currency: str
    source: str
    models: dict[str, Price]
    default: str

    def price_for(self, model: str) -> tuple[str, Price]:
        """The row for ``model``: its own name, or a dated or versioned id of it
        ("anthropic:claude-sonnet-4-5-20250929", "bedrock:anthropic.claude-sonnet-4-5-2025…"),
        never a sibling ("gpt-5-mini" is not "gpt-5"); else the default row. Returns the row's
        name too: a report says which row priced a run."""
        name = self.row_of(model) or self.default
        return name, self.models[name]

    def row_of(self, model: str) -> str | None:
        """The row that prices ``model`` itself, or None when the table has none for it."""
        bare = model.split("@", 1)[0]
        for name in self.models:
            if re.search(rf"(?:^|[:./]){re.escape(name)}(?:$|-\d|@|:)", bare):
                return name
        return None


@dataclass(frozen=True)
class Tokens:
    """What one run (or one call) put through the model, the four ways it is billed."""

    fresh_input: int
    cache_read: int
    cache_write: int
    output: int

    def cost(self, price: Price) -> float:
        return (
            self.fresh_input * price.input
            + self.cache_read * price.cache_read
            + self.cache_write * price.cache_write
            + self.output * price.output
        ) / PER_MILLION

    def uncached(self) -> Tokens:
        """The same run with no prompt caching: every input token fresh."""
        total = self.fresh_input + self.cache_read + self.cache_write
        return Tokens(total, 0, 0, self.output)


def load_prices(path: Path | None = None) -> PriceTable:
    """The shipped table, or the one at ``path``; a ``ValueError`` naming what is wrong."""
    if path is None:
        text = files("openptc.bench").joinpath("data/prices.json").read_text()
        where = "the shipped price table"
    else:
        try:
            text = path.read_text()
        except OSError as exc:
            raise ValueError(f"cannot read the price table {path}: {exc.strerror}") from None
        where = str(path)
    try:
        data: Any = json.loads(text)
        table = PriceTable.model_validate(data)
    except (json.JSONDecodeError, ValidationError) as exc:
        raise ValueError(f"{where} is not a price table: {exc}") from None
    if table.default not in table.models:
        raise ValueError(f"{where}: default {table.default!r} is not one of its models")
    return table
