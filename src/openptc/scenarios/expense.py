"""The expense audit: openptc's reference scenario.

"Which engineering team members exceeded their Q3 travel budget?" takes one call for the team,
then one expense list and one budget per member: dozens of calls and ~2,000 line items, of which
the answer needs a few lines. The data is synthetic and deterministic (a fixed seed); all amounts
are in USD. Q3 for engineering is engineered so that every common mistake changes the answer:
a custom budget below the standard one, a custom budget above it, and totals that exceed the
budget only when pending or rejected items are (wrongly) counted.
"""

import asyncio
import datetime as dt
import functools
import itertools
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from openptc.scenarios import answers

QUESTION = "Which engineering team members exceeded their Q3 travel budget?"
DEFAULT_SEED = 20250930
YEAR = 2025
STANDARD_TRAVEL_BUDGET_USD = 5000.0

Department = Literal["engineering", "sales", "marketing", "finance"]
Quarter = Literal["Q1", "Q2", "Q3", "Q4"]
Category = Literal["travel", "meals", "lodging", "software", "equipment", "training", "office"]
Status = Literal["approved", "pending", "rejected"]
QUARTERS: tuple[Quarter, ...] = ("Q1", "Q2", "Q3", "Q4")
TEAM_SIZES: dict[Department, int] = {"engineering": 24, "sales": 9, "marketing": 6, "finance": 5}


class TeamMember(BaseModel):
    """One employee."""

    model_config = ConfigDict(frozen=True)
    id: str = Field(description="Employee id, e.g. 'E1007'; used as employee_id and user_id.")
    name: str
    email: str
    department: Department
    title: str
    level: str = Field(description="Career level, L3 (junior) to L7 (principal).")


class Expense(BaseModel):
    """One expense line item."""

    model_config = ConfigDict(frozen=True)
    expense_id: str
    employee_id: str
    date: dt.date = Field(description="Date of the expense (ISO).")
    amount: float = Field(description="Amount in USD, two decimals.")
    currency: Literal["USD"] = "USD"
    category: Category
    merchant: str
    status: Status = Field(description="Only approved expenses count against a budget.")
    description: str


class CustomBudget(BaseModel):
    """An employee's quarterly travel budget."""

    model_config = ConfigDict(frozen=True)
    user_id: str
    has_custom_budget: bool = Field(description="False: the standard budget applies.")
    travel_budget_usd: float = Field(
        description="Quarterly budget in USD for the sum of approved 'travel' expenses."
    )
    currency: Literal["USD"] = "USD"
    note: str | None = None


@dataclass(frozen=True)
class Overspend:
    """One member whose approved travel spend exceeded the budget."""

    name: str
    employee_id: str
    spent_usd: float
    budget_usd: float


# Engineering index -> (custom quarterly budget or None, Q3 plan). Each plan defeats one mistake.
_ENGINEERED: dict[int, tuple[float | None, str]] = {
    1: (None, "over"),
    4: (3000.0, "over"),  # over only because the custom budget is below 5,000
    8: (8000.0, "under_high"),  # above 5,000, within a higher custom budget
    11: (None, "pending_trap"),  # over only if pending items are counted
    15: (None, "over"),
    17: (3500.0, "under"),
    19: (6500.0, "over"),
    21: (None, "rejected_trap"),  # over only if rejected items are counted
    22: (8000.0, "under"),
}
_OTHER_CUSTOM: dict[Department, list[tuple[int, float]]] = {
    "sales": [(0, 10000.0), (3, 9000.0)],
    "marketing": [(2, 6000.0)],
}
_NOTES = {True: "Approved exception: frequent customer travel", False: "Reduced: remote role"}

_FIRST = (
    "Alice Bruno Carmen Dmitri Elena Farid Grace Hiroshi Ingrid Jamal Keiko Liam Mariana Nikhil "
    "Olga Pablo Quinn Rosa Samuel Tanvi Umar Valeria Wei Ximena Yusuf Zoe Amara Benedikt Chloe "
    "Diego Esther Felix Gabriela Henrik Isabel Jonas Kavya Lucas Maya Noah Oren Priya Rafael "
    "Sofia Tobias Uma Victor Wanjiru Yara Zane"
)
_LAST = (
    "Smith Okafor Nakamura Fischer Alvarez Kowalski Haddad Lindqvist Mensah Petrov Rossi Tanaka "
    "Walsh Oliveira Novak Schmidt Moreau Kim Singh Dubois Jensen Costa Murphy Ibrahim Larsen "
    "Reyes Chen Bauer Ward Ivanova Garcia Patel Nguyen Kaplan Silva Brennan Yilmaz Romero Holm "
    "Adeyemi Varga Sato Keller Duarte Byrne Morales Hansen Quispe Abbott Young"
)
_TITLES: dict[Department, list[str]] = {
    "engineering": ["Software Engineer", "Senior Software Engineer", "Staff Engineer", "SRE"],
    "sales": ["Account Executive", "Sales Engineer", "Regional Sales Manager"],
    "marketing": ["Product Marketing Manager", "Content Strategist", "Growth Marketer"],
    "finance": ["Financial Analyst", "Controller", "Accountant"],
}
_CITIES = ["New York", "Seattle", "Austin", "Chicago", "Boston", "Denver", "London", "Toronto"]
_PURPOSES = ["customer onsite", "team offsite", "conference", "design review", "hiring event"]
_TRAVEL_LONG = {"Delta Air Lines": "Flight", "United Airlines": "Flight", "Amtrak": "Train"}
_TRAVEL_SHORT = {"Uber": "Ride", "Lyft": "Ride", "Hertz": "Car rental", "Amtrak": "Train"}
_OTHER: dict[Category, tuple[int, float, float, list[str], list[str]]] = {
    # category: (weight, min USD, max USD, merchants, descriptions)
    "meals": (40, 6, 140, ["Starbucks", "Chipotle", "Sweetgreen", "Panera Bread"],
              ["Team lunch", "Coffee with candidate", "Working dinner", "Breakfast meeting"]),
    "lodging": (10, 120, 480, ["Marriott", "Hilton", "Hyatt", "Airbnb"],
                ["Hotel, 1 night", "Hotel, 2 nights", "Conference hotel"]),
    "software": (14, 8, 320, ["GitHub", "JetBrains", "Atlassian", "Figma", "Notion"],
                 ["Annual license", "Monthly subscription", "Seat upgrade"]),
    "equipment": (8, 25, 900, ["Apple Store", "Best Buy", "Dell", "Logitech"],
                  ["Monitor", "Keyboard and mouse", "Laptop dock", "Headset", "Desk chair"]),
    "training": (6, 40, 900, ["O'Reilly Media", "Coursera", "Pluralsight", "PyCon US"],
                 ["Online course", "Conference ticket", "Book bundle"]),
    "office": (22, 4, 150, ["Staples", "Office Depot", "Amazon Business"],
               ["Office supplies", "Printer paper", "Whiteboard markers", "Desk lamp"]),
}  # fmt: skip


def quarter_bounds(quarter: Quarter) -> tuple[dt.date, dt.date]:
    """First and last day of a quarter of YEAR."""
    i = QUARTERS.index(quarter)
    start = dt.date(YEAR, 3 * i + 1, 1)
    end = dt.date(YEAR + 1, 1, 1) if i == 3 else dt.date(YEAR, 3 * i + 4, 1)
    return start, end - dt.timedelta(days=1)


@dataclass(frozen=True)
class _Tables:
    members: tuple[TeamMember, ...]
    budgets: dict[str, CustomBudget]  # custom budgets only
    expenses: dict[tuple[str, Quarter], tuple[Expense, ...]]


def _make_members(rng: random.Random) -> tuple[TeamMember, ...]:
    """Unique first and last names (so no name is part of another), ids in shuffled order."""
    depts: list[Department] = [d for d, n in TEAM_SIZES.items() for _ in range(n)]
    rng.shuffle(depts)
    names = zip(
        rng.sample(_FIRST.split(), len(depts)), rng.sample(_LAST.split(), len(depts)), strict=True
    )
    members = []
    for i, (dept, (first, last)) in enumerate(zip(depts, names, strict=True)):
        members.append(
            TeamMember(
                id=f"E{1001 + i}",
                name=f"{first} {last}",
                email=f"{first.lower()}.{last.lower()}@example.com",
                department=dept,
                title=rng.choice(_TITLES[dept]),
                level=f"L{rng.randint(3, 7)}",
            )
        )
    return tuple(members)


def _custom_budgets(members: Sequence[TeamMember]) -> dict[str, CustomBudget]:
    """Custom budgets: the engineered engineering ones plus a few in other departments."""
    by_dept = {d: [m for m in members if m.department == d] for d in TEAM_SIZES}
    engineering = [(i, b) for i, (b, _) in _ENGINEERED.items() if b is not None]
    wanted: dict[Department, list[tuple[int, float]]] = {"engineering": engineering}
    budgets: dict[str, CustomBudget] = {}
    for dept, pairs in {**wanted, **_OTHER_CUSTOM}.items():
        for i, amount in pairs:
            uid = by_dept[dept][i].id
            note = _NOTES[amount > STANDARD_TRAVEL_BUDGET_USD]
            budgets[uid] = CustomBudget(
                user_id=uid, has_custom_budget=True, travel_budget_usd=amount, note=note
            )
    return budgets


def _split(rng: random.Random, total_cents: int) -> list[int]:
    """Split a total into a few realistic line items that sum to it exactly."""
    k = max(1, round(total_cents / (rng.uniform(350, 800) * 100)))
    weights = [rng.uniform(0.5, 1.5) for _ in range(k)]
    parts = [int(total_cents * w / sum(weights)) for w in weights]
    parts[-1] += total_cents - sum(parts)
    return parts


def _travel_plan(
    rng: random.Random, plan: str | None, budget: float
) -> tuple[int, list[tuple[int, Status]]]:
    """Approved travel total and unapproved travel items (cents) for one member-quarter."""
    b = round(budget * 100)
    unapproved: list[tuple[int, Status]] = [
        (rng.randint(8_000, 60_000), rng.choice(["pending", "rejected"]))
        for _ in range(rng.randint(0, 2))
    ]
    if plan == "over":
        return b + rng.randint(25_000, 150_000), unapproved
    if plan == "under_high":
        return rng.randint(560_000, b - 40_000), unapproved
    if plan in ("pending_trap", "rejected_trap"):
        approved = b - rng.randint(15_000, 50_000)
        gap = b - approved + rng.randint(40_000, 120_000)
        status: Status = "pending" if plan == "pending_trap" else "rejected"
        return approved, [(c, status) for c in _split(rng, gap)]
    if plan == "under" or plan == "default_q3":
        return rng.randint(b // 10, b * 85 // 100), unapproved
    return rng.randint(b // 10, b * 125 // 100), unapproved


def _travel_item(rng: random.Random, cents: int) -> tuple[str, str]:
    """Merchant and description matching the size of a travel item."""
    merchants = _TRAVEL_LONG if cents >= 25_000 else _TRAVEL_SHORT
    merchant = rng.choice(sorted(merchants))
    kind, city = merchants[merchant], rng.choice(_CITIES)
    if kind == "Ride":
        return merchant, f"Ride to {rng.choice(['airport', 'client office', 'hotel'])}"
    return merchant, f"{kind}, {city}: {rng.choice(_PURPOSES)}"


def _member_quarter(
    rng: random.Random, uid: str, quarter: Quarter, plan: str | None, budget: float
) -> list[dict[str, Any]]:
    """50-100 raw line items for one member and quarter, unsorted and without ids."""
    approved, unapproved = _travel_plan(rng, plan, budget)
    travel = [(c, "approved") for c in _split(rng, approved)] + unapproved
    rows: list[dict[str, Any]] = []
    for cents, status in travel:
        merchant, description = _travel_item(rng, cents)
        rows.append(dict(category="travel", amount=cents / 100, status=status,
                         merchant=merchant, description=description))  # fmt: skip
    cats = list(_OTHER)
    weights = [_OTHER[c][0] for c in cats]
    for _ in range(rng.randint(50, 100) - len(travel)):
        cat = rng.choices(cats, weights)[0]
        _, low, high, merchants, descriptions = _OTHER[cat]
        rows.append(dict(category=cat, amount=round(rng.uniform(low, high), 2),
                         status=rng.choices(["approved", "pending", "rejected"], [85, 10, 5])[0],
                         merchant=rng.choice(merchants),
                         description=rng.choice(descriptions)))  # fmt: skip
    start, end = quarter_bounds(quarter)
    for row in rows:
        row["employee_id"] = uid
        row["date"] = start + dt.timedelta(days=rng.randint(0, (end - start).days))
    return rows


def _build(seed: int) -> _Tables:
    rng = random.Random(seed)
    members = _make_members(rng)
    budgets = _custom_budgets(members)
    engineers = [m.id for m in members if m.department == "engineering"]
    q3_plans = {engineers[i]: plan for i, (_, plan) in _ENGINEERED.items()}
    ids = itertools.count(1)
    expenses: dict[tuple[str, Quarter], tuple[Expense, ...]] = {}
    for m in members:
        budget = budgets[m.id].travel_budget_usd if m.id in budgets else STANDARD_TRAVEL_BUDGET_USD
        for q in QUARTERS:
            plan = None
            if q == "Q3" and m.department == "engineering":
                plan = q3_plans.get(m.id, "default_q3")
            rows = sorted(_member_quarter(rng, m.id, q, plan, budget), key=lambda r: r["date"])
            expenses[(m.id, q)] = tuple(
                Expense(expense_id=f"EXP-{next(ids):06d}", **row) for row in rows
            )
    return _Tables(members, budgets, expenses)


@dataclass(frozen=True)
class ExpenseData:
    """The scenario's tables for one seed, generated on first use."""

    seed: int = DEFAULT_SEED

    @cached_property
    def _tables(self) -> _Tables:
        return _build(self.seed)

    @property
    def members(self) -> tuple[TeamMember, ...]:
        return self._tables.members

    def team(self, department: Department) -> list[TeamMember]:
        return [m for m in self.members if m.department == department]

    def expenses(self, employee_id: str, quarter: Quarter) -> tuple[Expense, ...]:
        if (employee_id, quarter) not in self._tables.expenses:
            if quarter not in QUARTERS:
                raise ValueError(f"unknown quarter {quarter!r}; expected one of {QUARTERS}")
            raise ValueError(f"unknown employee_id {employee_id!r}")
        return self._tables.expenses[(employee_id, quarter)]

    def budget(self, user_id: str) -> CustomBudget:
        if user_id in self._tables.budgets:
            return self._tables.budgets[user_id]
        if all(m.id != user_id for m in self.members):
            raise ValueError(f"unknown user_id {user_id!r}")
        return CustomBudget(
            user_id=user_id, has_custom_budget=False, travel_budget_usd=STANDARD_TRAVEL_BUDGET_USD
        )


@functools.cache
def default_data() -> ExpenseData:
    """The shared default-seed data set (built once per process)."""
    return ExpenseData()


def make_tools(
    data: ExpenseData | None = None, *, latency: float = 0.0
) -> list[Callable[..., Awaitable[Any]]]:
    """The scenario's three async tools bound to `data`; `latency` simulates a remote API."""
    d = data if data is not None else default_data()

    async def get_team_members(department: Department) -> list[TeamMember]:
        """List the members of one department.

        Args:
            department: The department, e.g. "engineering".
        """
        await asyncio.sleep(latency)
        return d.team(department)

    async def get_expenses(employee_id: str, quarter: Quarter) -> list[Expense]:
        """List all expense line items of one employee in one quarter of 2025 (USD).

        Budgets apply to approved travel expenses: only items with category "travel" and
        status "approved" count against the employee's quarterly travel budget; pending and
        rejected items do not count.

        Args:
            employee_id: The employee's id (TeamMember.id), e.g. "E1007".
            quarter: The quarter of 2025: "Q1", "Q2", "Q3" or "Q4".
        """
        await asyncio.sleep(latency)
        return list(d.expenses(employee_id, quarter))

    async def get_custom_budget(user_id: str) -> CustomBudget:
        """Get an employee's quarterly travel budget in USD.

        Without a custom budget, has_custom_budget is false and the standard budget of
        5,000 USD per quarter applies. The budget is compared with the sum of the employee's
        approved expenses of category "travel" in the quarter.

        Args:
            user_id: The employee's id (TeamMember.id), e.g. "E1007".
        """
        await asyncio.sleep(latency)
        return d.budget(user_id)

    return [get_team_members, get_expenses, get_custom_budget]


def travel_spend(
    data: ExpenseData,
    employee_id: str,
    quarter: Quarter,
    statuses: Sequence[Status] = ("approved",),
) -> float:
    """Sum of travel expenses with the given statuses (approved only by the budget rule)."""
    items = data.expenses(employee_id, quarter)
    total = sum(e.amount for e in items if e.category == "travel" and e.status in statuses)
    return round(total, 2)


def expected_overspenders(data: ExpenseData | None = None) -> list[Overspend]:
    """The right answer, straight from the tables, in member-id order."""
    d = data if data is not None else default_data()
    result = []
    for m in d.team("engineering"):
        spent, budget = travel_spend(d, m.id, "Q3"), d.budget(m.id).travel_budget_usd
        if spent > budget:
            result.append(Overspend(m.name, m.id, spent, budget))
    return result


def format_answer(overspenders: Sequence[Overspend]) -> str:
    """The final natural-language answer, as a model would give it."""
    if not overspenders:
        return "No engineering team members exceeded their Q3 travel budget."
    who = "member" if len(overspenders) == 1 else "members"
    parts = [f"{o.name} (${o.spent_usd:,.2f} of ${o.budget_usd:,.2f})" for o in overspenders]
    budget = "exceeded their Q3 travel budget"
    return f"{len(overspenders)} engineering team {who} {budget}: {', '.join(parts)}."


_NOT_OVER = answers.cues(  # "none of them exceeded", "within budget", "would be over only if ..."
    answers.RULED_OUT,
    answers.negated(r"exceed\w*|over(?:spen\w*)?|above|go(?:ne)? over"),
    r"\b(?:within|below|under)\s+(?!(?:the\s+)?(?:standard|default))(?:[\w$.,']+\s+){0,3}?budget",
)


def parse_names(answer_text: str, data: ExpenseData | None = None) -> tuple[set[str], set[str]]:
    """Engineers an answer says exceeded (whole names, any case), and those it names only to
    rule out ("none of them exceeded", "X would be over only if pending items counted")."""
    d = data if data is not None else default_data()
    find = answers.finder({m.name: (m.name,) for m in d.team("engineering")})
    return answers.claims(answer_text, find, _NOT_OVER)


def is_correct(answer_text: str, data: ExpenseData | None = None) -> bool:
    """True when exactly the expected overspenders, and no other engineer, are named."""
    return parse_names(answer_text, data)[0] == {o.name for o in expected_overspenders(data)}


REFERENCE_PROGRAM = """\
import asyncio

members = await get_team_members(department="engineering")
expense_lists, budgets = await asyncio.gather(
    asyncio.gather(*[get_expenses(employee_id=m["id"], quarter="Q3") for m in members]),
    asyncio.gather(*[get_custom_budget(user_id=m["id"]) for m in members]),
)
over = []
for member, expenses, budget in zip(members, expense_lists, budgets):
    spent = sum(
        e["amount"] for e in expenses if e["category"] == "travel" and e["status"] == "approved"
    )
    limit = budget["travel_budget_usd"]
    if spent > limit:
        over.append((member["name"], spent, limit))
for name, spent, limit in over:
    print(f"{name}: ${spent:,.2f} spent of ${limit:,.2f} budget")
print(f"{len(over)} of {len(members)} engineering members exceeded their Q3 travel budget")
"""

SERVICE_STYLE_PROGRAM = """\
import asyncio
import json

members = json.loads(await get_team_members({"department": "engineering"}))
expense_texts, budget_texts = await asyncio.gather(
    asyncio.gather(*[get_expenses({"employee_id": m["id"], "quarter": "Q3"}) for m in members]),
    asyncio.gather(*[get_custom_budget({"user_id": m["id"]}) for m in members]),
)
over = []
for member, expenses_text, budget_text in zip(members, expense_texts, budget_texts):
    expenses = json.loads(expenses_text)
    limit = json.loads(budget_text)["travel_budget_usd"]
    spent = sum(
        e["amount"] for e in expenses if e["category"] == "travel" and e["status"] == "approved"
    )
    if spent > limit:
        over.append((member["name"], spent, limit))
for name, spent, limit in over:
    print(f"{name}: ${spent:,.2f} spent of ${limit:,.2f} budget")
print(f"{len(over)} of {len(members)} engineering members exceeded their Q3 travel budget")
"""
"""The audit as code written for Anthropic's hosted code execution: each tool takes one dict and
returns its result as text (JSON here), as the hosted service hands it over."""

MAIN_STYLE_PROGRAM = """\
import asyncio
import json


async def main():
    members = await get_team_members({"department": "engineering"})
    if isinstance(members, str):
        members = json.loads(members)
    expense_lists = await asyncio.gather(
        *[get_expenses({"employee_id": m["id"], "quarter": "Q3"}) for m in members]
    )
    budgets = await asyncio.gather(*[get_custom_budget({"user_id": m["id"]}) for m in members])
    results = []
    for member, expenses, budget in zip(members, expense_lists, budgets):
        travel = [e for e in expenses if e["category"] == "travel" and e["status"] == "approved"]
        total = round(sum(e["amount"] for e in travel), 2)
        if total > budget["travel_budget_usd"]:
            results.append(
                {"name": member["name"], "spent": total, "budget": budget["travel_budget_usd"]}
            )
    print(json.dumps(results, indent=2))
    print(f"Over budget: {len(results)}")


asyncio.run(main())
"""
