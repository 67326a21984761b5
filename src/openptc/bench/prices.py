"""A dated, replaceable price table, and what a run's tokens cost under it.

Cost follows cache behaviour, not raw token counts: a cache read is billed at a tenth of fresh
input or less, a cache write at more than fresh input. So every price here keeps the four
rates apart, and a cost is always computed from the four counts.
"""

from __future__ import annotations

import json
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


class PriceTable(BaseModel):
    """Prices as of a date, from a named source; ``default`` prices a scripted run."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    as_of: str
    currency: str
    source: str
    models: dict[str, Price]
    default: str

    def price_for(self, model: str) -> tuple[str, Price]:
        """The row for ``model`` ("anthropic:claude-sonnet-4-5" finds "claude-sonnet-4-5";
        a dated id finds its family), else the default row; returns the row's name too."""
        bare = model.split(":", 1)[-1]
        for name in sorted(self.models, key=len, reverse=True):
            if bare.startswith(name) or name in bare:
                return name, self.models[name]
        return self.default, self.models[self.default]


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
