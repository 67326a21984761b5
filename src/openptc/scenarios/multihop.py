"""The multi-hop lookup: each call needs the previous call's results.

"Which compatible seal kit in stock can arrive soonest for our P-200 pump, and from whom?" takes
a catalogue search, one long part record per hit, and one supplier record per candidate's
supplier, before arrival days (lead time plus a stated transit rule) can be compared. The data is
synthetic and deterministic (a fixed seed), built so that every common mistake changes the
answer: a faster kit that is out of stock (incoming stock only), a faster one in stock whose
compatibility list has "P-200X" but not "P-200", one whose supplier has the shortest lead time
but ships from overseas, a kit arriving the same day at a higher price, and a runner-up one day
slower.
"""

import asyncio
import datetime as dt
import functools
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from openptc.scenarios import answers
from openptc.scenarios.base import Scenario, Verdict
from openptc.scenarios.multihop_brains import multi_hop_brain

PUMP = "P-200"
QUESTION = (
    f"Our pump model {PUMP} needs a replacement seal kit: among the compatible kits in stock, "
    "which one can arrive soonest at our plant, and from which supplier? If two arrive on the "
    "same day, take the cheaper one."
)
DEFAULT_SEED = 20250611
PLANT_REGION = "north-america"
TRANSIT_DAYS_SAME_REGION = 2
TRANSIT_DAYS_OTHER_REGION = 6

Region = Literal["north-america", "europe", "asia-pacific", "south-america"]
_OVERSEAS: tuple[Region, ...] = ("europe", "asia-pacific", "south-america")
PUMPS = ("P-100", "P-150", "P-200", "P-200X", "P-210", "P-250", "P-300", "P-400")
WAREHOUSES = ("Chicago", "Houston", "Rotterdam", "Singapore")
_ELASTOMERS = ("FKM", "EPDM", "NBR", "FFKM", "HNBR")
_FACES = ("silicon carbide", "tungsten carbide", "carbon graphite", "ceramic")
_KIT_BRANDS = (
    "Aquaseal", "Arctos", "Brixel", "Corvane", "Duraflow", "Exena", "Fendrel", "Gallion",
    "Harwick", "Isoterra", "Jorvik", "Kestrel", "Lumaris", "Mordane", "Nexlon", "Orvex",
    "Pyrlon", "Quartzen", "Ravelle", "Sorrel", "Tevan", "Ulmora",
)  # fmt: skip
_KIT_CONTENTS = (
    "rotating face", "stationary seat", "O-ring set", "spring", "gland gasket", "shaft sleeve",
    "lubricant sachet", "set screws",
)  # fmt: skip
_CERTIFICATIONS = ("ISO 9001", "ATEX", "FDA 21 CFR 177", "WRAS", "NSF/ANSI 61", "API 682")
_OTHER_KINDS = ("impeller", "bearing", "gasket kit", "shaft seal", "coupling", "wear ring")
_PLACES: dict[Region, tuple[tuple[str, ...], tuple[str, ...]]] = {  # supplier names, cities
    "north-america": (
        ("Northline Seals", "Great Lakes Fluid Parts", "Prairie Pump Supply", "Cascade Industrial",
         "Keystone Mechanical", "Lone Star Sealing", "Hudson Pump Parts", "Mesa Fluid Systems",
         "Tidewater Supply"),
        ("Toledo, OH", "Calgary, AB", "Monterrey, NL"),
    ),
    "europe": (("Rhein Dichtungstechnik", "Baltic Pump Parts", "Iberia Seals"),
               ("Hamburg", "Gdansk", "Valencia")),
    "asia-pacific": (("Osaka Seal Works", "Southern Cross Pumps"), ("Osaka", "Brisbane")),
    "south-america": (("Andes Hydraulics", "Pampas Industrial"), ("Santiago", "Rosario")),
}  # fmt: skip
# Supplier role -> (region, lead time days). The fast ones each supply one engineered kit.
_ROLES: dict[str, tuple[Region, int]] = {
    "winner": ("north-america", 3),  # arrives in 5 days
    "tie": ("north-america", 3),  # also 5 days, but its kit costs more
    "runner_up": ("north-america", 4),  # 6 days
    "overseas": ("europe", 1),  # shortest lead time, but 7 days with transit
    "trap": ("north-america", 1),  # 3 days, for kits out of stock or not compatible
}


class Supplier(BaseModel):
    """A supplier of the catalogue."""

    model_config = ConfigDict(frozen=True)
    supplier_id: str = Field(description="Supplier id, e.g. 'SUP-104'.")
    name: str
    shipping_region: Region = Field(description="The region the supplier ships from.")
    lead_time_days: int = Field(description="Days from order to dispatch.")
    ships_from: str
    rating: float = Field(description="Buyer rating, 1 to 5.")
    payment_terms: str
    min_order_usd: float
    contact_email: str


class SearchHit(BaseModel):
    """One catalogue search hit: enough to fetch the part."""

    model_config = ConfigDict(frozen=True)
    part_id: str = Field(description="Part id, e.g. 'PT-4821'; pass to get_part.")
    title: str
    category: str


class Specs(BaseModel):
    """Technical specifications of a part."""

    model_config = ConfigDict(frozen=True)
    inner_diameter_mm: int
    outer_diameter_mm: int
    elastomer: str
    face_material: str
    max_pressure_bar: int
    temperature_min_c: int
    temperature_max_c: int
    max_shaft_speed_rpm: int


class WarehouseStock(BaseModel):
    """Stock of a part in one warehouse."""

    model_config = ConfigDict(frozen=True)
    warehouse: str
    on_hand: int = Field(description="Units available to ship now.")
    on_order: int = Field(description="Units incoming, not yet available.")


class Part(BaseModel):
    """A full catalogue record."""

    model_config = ConfigDict(frozen=True)
    part_id: str
    title: str
    category: str
    description: str
    specs: Specs
    contents: list[str] = Field(description="What is in the box, e.g. '2 x spring'.")
    certifications: list[str]
    compatible_models: list[str] = Field(description="Pump models the part fits, exactly.")
    stock: list[WarehouseStock] = Field(description="In stock: on_hand > 0 in any warehouse.")
    supplier_id: str = Field(description="Who sells the part; see get_supplier.")
    unit_price_usd: float
    weight_kg: float
    datasheet_url: str
    revision: str
    last_updated: dt.date


@dataclass(frozen=True)
class Tables:
    """The catalogue for one seed: every part, the seal kits among them, the suppliers."""

    parts: dict[str, Part]
    kits: tuple[Part, ...]
    suppliers: dict[str, Supplier]


def _suppliers(rng: random.Random) -> tuple[dict[str, Supplier], dict[str, str]]:
    """Ten suppliers, and the supplier id of each engineered role (and "slow0".."slow4")."""
    roles = [*_ROLES, *(f"slow{i}" for i in range(5))]
    ids = [f"SUP-{n}" for n in rng.sample(range(101, 140), len(roles))]
    names = {r: rng.sample(n, len(n)) for r, (n, _) in _PLACES.items()}
    suppliers, by_role = {}, {}
    for role, sid in zip(roles, ids, strict=True):
        region: Region
        if role in _ROLES:
            region, lead = _ROLES[role]
        elif rng.random() < 0.5:  # slow: at least 7 days at home, 8 from overseas
            region, lead = "north-america", rng.randint(5, 9)
        else:
            region, lead = rng.choice([r for r in _OVERSEAS if names[r]]), rng.randint(2, 6)
        name = names[region].pop()
        suppliers[sid] = Supplier(
            supplier_id=sid, name=name, shipping_region=region, lead_time_days=lead,
            ships_from=rng.choice(_PLACES[region][1]),
            rating=round(rng.uniform(3.2, 4.9), 1), payment_terms=rng.choice(["net 30", "net 45"]),
            min_order_usd=float(rng.choice([0, 50, 100, 250])),
            contact_email=f"orders@{name.replace(' ', '').lower()}.example.com",
        )  # fmt: skip
        by_role[role] = sid
    return suppliers, by_role


def _part(
    rng: random.Random, part_id: str, brand: str, category: str, supplier_id: str, *,
    compatible: list[str], in_stock: bool, price: float,
) -> Part:  # fmt: skip
    """One long catalogue record; `in_stock` False leaves stock only on order."""
    inner, elastomer = rng.choice(range(18, 66, 2)), rng.choice(_ELASTOMERS)
    title = f"{brand} {category}, {inner} mm, {elastomer}"
    kit = _KIT_CONTENTS if category == "seal kit" else (category, "mounting hardware")
    contents = [
        f"{rng.choice([1, 1, 2, 4])} x {item}"
        for item in rng.sample(kit, min(len(kit), rng.randint(4, 6)))
    ]
    stock = [
        WarehouseStock(warehouse=w, on_hand=0, on_order=rng.choice([0, 0, 10, 25]))
        for w in WAREHOUSES
    ]
    if in_stock:
        for i in rng.sample(range(len(WAREHOUSES)), rng.randint(1, 3)):
            stock[i] = WarehouseStock(
                warehouse=WAREHOUSES[i], on_hand=rng.randint(1, 40), on_order=stock[i].on_order
            )
    elif not any(s.on_order for s in stock):
        stock[0] = WarehouseStock(warehouse=WAREHOUSES[0], on_hand=0, on_order=20)
    fits = ", ".join(compatible)
    return Part(
        part_id=part_id, title=title, category=category,
        description=(
            f"{title}. Replacement {category} for end-suction centrifugal pumps ({fits}). "
            "Supplied with installation instructions; torque values per the pump manual."
        ),
        specs=Specs(
            inner_diameter_mm=inner, outer_diameter_mm=inner + rng.choice([12, 16, 20]),
            elastomer=elastomer, face_material=rng.choice(_FACES),
            max_pressure_bar=rng.choice([10, 16, 25, 40]), temperature_min_c=rng.choice([-40, -20]),
            temperature_max_c=rng.choice([120, 150, 200]),
            max_shaft_speed_rpm=rng.choice([3000, 3600, 4500]),
        ),
        contents=contents, certifications=sorted(rng.sample(_CERTIFICATIONS, rng.randint(1, 3))),
        compatible_models=compatible, stock=stock, supplier_id=supplier_id,
        unit_price_usd=price, weight_kg=round(rng.uniform(0.2, 3.5), 2),
        datasheet_url=f"https://catalogue.example.com/datasheets/{part_id}.pdf",
        revision=rng.choice("ABCDE"),
        last_updated=dt.date(2025, rng.randint(1, 5), rng.randint(1, 28)),
    )  # fmt: skip


def _pumps(rng: random.Random, with_pump: bool) -> list[str]:
    """One to four other pump models, and PUMP too when `with_pump`."""
    others = [p for p in PUMPS if p != PUMP]
    picked = rng.sample(others, rng.randint(1, 4)) + ([PUMP] if with_pump else [])
    return sorted(picked)


def _build(seed: int) -> Tables:
    rng = random.Random(seed)
    suppliers, role = _suppliers(rng)
    ids = iter(f"PT-{n}" for n in rng.sample(range(1000, 10000), 22 + 60))
    brands = rng.sample(_KIT_BRANDS, len(_KIT_BRANDS))
    win = round(rng.uniform(150, 260), 2)
    # (supplier role, compatible with PUMP, in stock, price) for each engineered kit.
    plans: list[tuple[str, bool, bool, float]] = [
        ("winner", True, True, win),
        ("tie", True, True, round(win + rng.uniform(20, 60), 2)),
        ("runner_up", True, True, round(win - rng.uniform(15, 40), 2)),
        ("overseas", True, True, round(win - rng.uniform(50, 80), 2)),
        ("trap", True, False, round(win - rng.uniform(5, 30), 2)),  # out of stock
        ("trap", False, True, round(win - rng.uniform(5, 30), 2)),  # fits P-200X, not P-200
    ]
    for _ in range(16):
        fits = rng.random() < 0.35  # a compatible kit comes from a slow supplier
        who = f"slow{rng.randrange(5)}" if fits else rng.choice([*_ROLES, "slow0", "slow1"])
        plans.append((who, fits, rng.random() < 0.7, round(rng.uniform(90, 420), 2)))
    rng.shuffle(plans)
    kits = []
    for (who, fits, in_stock, price), brand in zip(plans, brands, strict=True):
        compatible = _pumps(rng, fits)
        if not fits and who == "trap":
            compatible = sorted({*compatible, "P-200X"})
        kits.append(_part(rng, next(ids), brand, "seal kit", role[who],
                          compatible=compatible, in_stock=in_stock, price=price))  # fmt: skip
    parts = {k.part_id: k for k in kits}
    for i in range(60):
        kind = _OTHER_KINDS[i % len(_OTHER_KINDS)]
        part = _part(rng, next(ids), rng.choice(_KIT_BRANDS), kind, rng.choice(sorted(suppliers)),
                     compatible=_pumps(rng, rng.random() < 0.4), in_stock=rng.random() < 0.8,
                     price=round(rng.uniform(12, 600), 2))  # fmt: skip
        parts[part.part_id] = part
    return Tables(parts, tuple(sorted(kits, key=lambda k: k.part_id)), suppliers)


@functools.cache
def tables(seed: int = DEFAULT_SEED) -> Tables:
    """The catalogue for one seed (built once per process)."""
    return _build(seed)


def search(t: Tables, query: str) -> list[SearchHit]:
    """Parts whose title has every word of the query, by part id."""
    words = set(re.findall(r"[a-z0-9]+", query.lower()))
    hits = [p for p in t.parts.values() if words <= set(re.findall(r"[a-z0-9]+", p.title.lower()))]
    return [
        SearchHit(part_id=p.part_id, title=p.title, category=p.category)
        for p in sorted(hits, key=lambda p: p.part_id)
    ][:25]


def make_tools(
    t: Tables | None = None, *, latency: float = 0.0
) -> list[Callable[..., Awaitable[Any]]]:
    """The scenario's three async tools over the catalogue; `latency` simulates a remote API."""
    d = t if t is not None else tables()

    async def search_parts(query: str) -> list[SearchHit]:
        """Search the parts catalogue by keywords in part titles (at most 25 hits).

        A part matches when its title contains every word of the query. Titles do not say
        which pump models a part fits: check compatible_models with get_part.

        Args:
            query: Keywords, e.g. "seal kit" or "impeller".
        """
        await asyncio.sleep(latency)
        return search(d, query)

    async def get_part(part_id: str) -> Part:
        """Get a part's full record: specs, compatible pump models, stock, supplier and price.

        A part is in stock when on_hand > 0 in at least one warehouse; on_order is incoming
        stock, not yet available to ship.

        Args:
            part_id: The part id from search_parts, e.g. "PT-4821".
        """
        await asyncio.sleep(latency)
        if part_id not in d.parts:
            raise ValueError(f"unknown part_id {part_id!r}")
        return d.parts[part_id]

    async def get_supplier(supplier_id: str) -> Supplier:
        """Get a supplier: shipping region and lead time (days from order to dispatch).

        Our plant is in north-america. Days until a part arrives at the plant = lead_time_days
        + transit: 2 days when the supplier's shipping_region is "north-america", 6 days from
        any other region.

        Args:
            supplier_id: The supplier id from a part record, e.g. "SUP-104".
        """
        await asyncio.sleep(latency)
        if supplier_id not in d.suppliers:
            raise ValueError(f"unknown supplier_id {supplier_id!r}")
        return d.suppliers[supplier_id]

    return [search_parts, get_part, get_supplier]


def in_stock(part: Part) -> bool:
    return any(s.on_hand > 0 for s in part.stock)


def arrival_days(t: Tables, part: Part) -> int:
    """Lead time plus transit, by the rule get_supplier states."""
    s = t.suppliers[part.supplier_id]
    same = s.shipping_region == PLANT_REGION
    return s.lead_time_days + (TRANSIT_DAYS_SAME_REGION if same else TRANSIT_DAYS_OTHER_REGION)


def ranked(t: Tables | None = None) -> list[Part]:
    """Compatible kits in stock, soonest first, cheaper first on the same day: [0] is the answer."""
    d = t if t is not None else tables()
    candidates = [k for k in d.kits if PUMP in k.compatible_models and in_stock(k)]
    return sorted(candidates, key=lambda k: (arrival_days(d, k), k.unit_price_usd))


_PICK = answers.cues(
    r"\b(?:best|soonest|fastest|earliest|quickest|recommend\w*|pick|choose|go with|buy|winner)\b",
    r"(?<!on )\border\b",
)
_NOT_THE_PICK = answers.cues(
    answers.RULED_OUT,
    r"\bnot\b|n't\b|\bno\b|\b(?:would|could|might)(?: have)? be(?:en)?\b|\bsecond\b|\bnext\b",
    r"runner|alternative|backup|fallback|out of stock|only fits|slower",
)


def check(answer: str, t: Tables | None = None) -> Verdict:
    """Right when the kit the answer picks ("Order X", "Best: X"; with no such cue, the first kit
    it names and does not rule out) is the winner, and the supplier named with it is its own: a
    runner-up or a faster kit that does not fit, named as such, is not taken as the answer."""
    d = t if t is not None else tables()
    best = ranked(d)[0]
    want = d.suppliers[best.supplier_id]
    kits = answers.finder({k.part_id: (k.part_id, k.title) for k in d.kits})
    picks = answers.picks(answer, kits, _PICK, _NOT_THE_PICK, every=False)
    picks = picks or answers.first_claims(answer, kits, _NOT_THE_PICK)
    named = sorted({p.key for p in picks})
    if not named:
        return Verdict.wrong("no seal kit of the catalogue is named")
    if len(named) > 1:
        return Verdict.wrong(f"names more than one kit as the answer: {', '.join(named)}")
    if named[0] != best.part_id:
        return Verdict.wrong(f"named {named[0]} ({d.parts[named[0]].title}), not {best.part_id}")
    sellers = answers.finder({s.supplier_id: (s.supplier_id, s.name) for s in d.suppliers.values()})
    supplier = answers.named_with(answer, picks[0], sellers, kits)
    if supplier != want.supplier_id:
        got = d.suppliers[supplier].name if supplier else "no supplier"
        return Verdict.wrong(f"named {got}, not {want.name} ({want.supplier_id})")
    return Verdict.right()


SCENARIO = Scenario(
    name="multi-hop",
    title="Multi-hop lookup",
    stresses="dependent calls: search, then 22 long part records, then the candidates' suppliers",
    question=QUESTION,
    make_tools=lambda latency: make_tools(latency=latency),
    check=check,
    brain=multi_hop_brain,
)
