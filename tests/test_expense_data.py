"""The expense-audit scenario: its data, tools, expected answer and reference programs."""

import asyncio
import contextlib
import inspect
import io
import textwrap
import time
import typing
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pydantic_core import to_jsonable_python

from openptc.scenarios.brains import EXPENSE_AUDIT
from openptc.scenarios.expense import (
    MAIN_STYLE_PROGRAM,
    QUARTERS,
    REFERENCE_PROGRAM,
    STANDARD_TRAVEL_BUDGET_USD,
    ExpenseData,
    Overspend,
    default_data,
    expected_overspenders,
    format_answer,
    is_correct,
    make_tools,
    parse_names,
    quarter_bounds,
    travel_spend,
)

Tool = Callable[..., Awaitable[Any]]


@pytest.fixture(scope="module")
def data() -> ExpenseData:
    return default_data()


def _engineers_q3(data: ExpenseData) -> list[tuple[str, float, float, float, float]]:
    """(name, approved, approved+pending, approved+rejected, budget) per engineer in Q3."""
    rows = []
    for m in data.team("engineering"):
        rows.append(
            (
                m.name,
                travel_spend(data, m.id, "Q3"),
                travel_spend(data, m.id, "Q3", ("approved", "pending")),
                travel_spend(data, m.id, "Q3", ("approved", "rejected")),
                data.budget(m.id).travel_budget_usd,
            )
        )
    return rows


def _bind(tools: list[Tool], *, allow_dict: bool, calls: list[str]) -> dict[str, Any]:
    """A namespace where each tool returns plain JSON, as inside the sandbox."""
    namespace: dict[str, Any] = {}
    for fn in tools:

        async def call(*args: Any, _fn: Tool = fn, **kwargs: Any) -> Any:
            if args:
                assert allow_dict, f"{_fn.__name__} called with a positional argument"
                assert len(args) == 1 and isinstance(args[0], dict) and not kwargs
                kwargs = args[0]
            calls.append(_fn.__name__)
            return to_jsonable_python(await _fn(**kwargs))

        namespace[fn.__name__] = call
    return namespace


def _run_top_level_await(source: str, namespace: dict[str, Any]) -> str:
    """Run a program with top-level await by wrapping it in an async def; return its stdout."""
    exec("async def __program__():\n" + textwrap.indent(source, "    "), namespace)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        asyncio.run(namespace["__program__"]())
    return out.getvalue()


def _run_script(source: str, namespace: dict[str, Any]) -> str:
    """Run a program that starts its own loop (asyncio.run(main())); return its stdout."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(source, namespace)
    return out.getvalue()


# --- data ---------------------------------------------------------------------------------


def test_same_seed_builds_identical_data_and_other_seed_differs() -> None:
    a, b, c = ExpenseData(seed=11), ExpenseData(seed=11), ExpenseData(seed=12)

    def dump(d: ExpenseData) -> list[Any]:
        return [d.members, [d.expenses(m.id, q) for m in d.members for q in QUARTERS]]

    assert dump(a) == dump(b)
    assert dump(a) != dump(c)
    assert default_data() is default_data()


def test_sizes_dates_and_fields(data: ExpenseData) -> None:
    engineers = data.team("engineering")
    assert len(engineers) >= 20
    assert {m.department for m in data.members} >= {"engineering", "sales", "marketing"}
    assert len({m.name for m in data.members}) == len(data.members)
    ids: set[str] = set()
    for m in data.members:
        for q in QUARTERS:
            items = data.expenses(m.id, q)
            start, end = quarter_bounds(q)
            assert 50 <= len(items) <= 100
            assert all(start <= e.date <= end for e in items)
            assert all(e.amount > 0 and round(e.amount, 2) == e.amount for e in items)
            assert all(e.employee_id == m.id and e.currency == "USD" for e in items)
            ids.update(e.expense_id for e in items)
    assert len(ids) == sum(len(data.expenses(m.id, q)) for m in data.members for q in QUARTERS)


def test_q3_engineering_has_the_engineered_edge_cases(data: ExpenseData) -> None:
    rows = _engineers_q3(data)
    std = STANDARD_TRAVEL_BUDGET_USD
    # Over only because a custom budget is below the standard one.
    assert any(b < std and b < spent <= std for _, spent, _, _, b in rows)
    # Above the standard budget, but within a higher custom one.
    assert any(b > std and std < spent <= b for _, spent, _, _, b in rows)
    # Over only if pending (or rejected) items are wrongly counted.
    assert any(spent <= b < pend for _, spent, pend, _, b in rows)
    assert any(spent <= b < rej and pend <= b for _, spent, pend, rej, b in rows)
    assert sum(data.budget(m.id).has_custom_budget for m in data.team("engineering")) >= 4


def test_expected_overspenders_matches_the_rule(data: ExpenseData) -> None:
    expected = expected_overspenders(data)
    assert 3 <= len(expected) <= 6
    over = {name for name, spent, _, _, budget in _engineers_q3(data) if spent > budget}
    assert {o.name for o in expected} == over
    assert all(o.spent_usd > o.budget_usd for o in expected)


def test_common_mistakes_give_a_different_answer(data: ExpenseData) -> None:
    right = {o.name for o in expected_overspenders(data)}
    rows = _engineers_q3(data)
    standard_only = {n for n, spent, _, _, _ in rows if spent > STANDARD_TRAVEL_BUDGET_USD}
    all_statuses = {n for n, spent, pend, rej, b in rows if pend + rej - spent > b}  # all three
    assert standard_only != right
    assert all_statuses != right


# --- tools --------------------------------------------------------------------------------


async def test_tools_return_models_and_standard_budget(data: ExpenseData) -> None:
    get_team_members, get_expenses, get_custom_budget = make_tools(data)
    members = await get_team_members(department="engineering")
    assert [m.id for m in members] == [m.id for m in data.team("engineering")]
    items = await get_expenses(employee_id=members[0].id, quarter="Q3")
    assert list(items) == list(data.expenses(members[0].id, "Q3"))
    plain = next(m for m in members if not data.budget(m.id).has_custom_budget)
    budget = await get_custom_budget(user_id=plain.id)
    assert (budget.has_custom_budget, budget.travel_budget_usd) == (False, 5000.0)


async def test_unknown_ids_raise(data: ExpenseData) -> None:
    _, get_expenses, get_custom_budget = make_tools(data)
    with pytest.raises(ValueError, match="unknown employee_id 'E9999'"):
        await get_expenses(employee_id="E9999", quarter="Q3")
    with pytest.raises(ValueError, match="unknown user_id 'nobody'"):
        await get_custom_budget(user_id="nobody")


def test_tools_are_documented_and_fully_typed(data: ExpenseData) -> None:
    tools = make_tools(data)
    assert [t.__name__ for t in tools] == ["get_team_members", "get_expenses", "get_custom_budget"]
    for t in tools:
        assert inspect.iscoroutinefunction(t)
        assert "Args:" in (t.__doc__ or "")
        hints = typing.get_type_hints(t)
        assert "return" in hints and len(hints) >= 2
    assert "approved travel expenses" in (tools[1].__doc__ or "")
    assert "5,000 USD" in (tools[2].__doc__ or "")


async def test_latency_is_simulated_and_calls_overlap(data: ExpenseData) -> None:
    get_custom_budget = make_tools(data, latency=0.05)[2]
    ids = [m.id for m in data.team("engineering")][:10]
    start = time.perf_counter()
    await asyncio.gather(*(get_custom_budget(user_id=i) for i in ids))
    elapsed = time.perf_counter() - start
    assert 0.05 <= elapsed < 0.4  # ten calls in parallel, not 0.5 s in sequence


# --- reference programs -------------------------------------------------------------------


@pytest.mark.parametrize("seed", [None, 7])
def test_reference_program_prints_exactly_the_overspenders(seed: int | None) -> None:
    data = default_data() if seed is None else ExpenseData(seed=seed)
    calls: list[str] = []
    namespace = _bind(make_tools(data), allow_dict=False, calls=calls)
    output = _run_top_level_await(REFERENCE_PROGRAM, namespace)
    expected = expected_overspenders(data)
    assert parse_names(output, data)[0] == {o.name for o in expected}
    assert is_correct(output, data)
    assert len(output.splitlines()) == len(expected) + 1
    n = len(data.team("engineering"))
    assert calls.count("get_expenses") == calls.count("get_custom_budget") == n
    assert f"{len(expected)} of {n} engineering members" in output


def test_main_style_program_prints_exactly_the_overspenders(data: ExpenseData) -> None:
    calls: list[str] = []
    namespace = _bind(make_tools(data), allow_dict=True, calls=calls)
    output = _run_script(MAIN_STYLE_PROGRAM, namespace)
    expected = expected_overspenders(data)
    assert parse_names(output, data)[0] == {o.name for o in expected}
    assert f"Over budget: {len(expected)}" in output
    assert len(calls) == 1 + 2 * len(data.team("engineering"))


def test_reference_program_needs_keyword_calls(data: ExpenseData) -> None:
    """The test harness itself must be able to fail: dict-style calls are refused here."""
    namespace = _bind(make_tools(data), allow_dict=False, calls=[])
    with pytest.raises(AssertionError, match="positional"):
        _run_script(MAIN_STYLE_PROGRAM, namespace)


# --- answers ------------------------------------------------------------------------------


def test_format_answer() -> None:
    text = format_answer([Overspend("Alice Smith", "E1", 6210.5, 5000.0)])
    assert text == (
        "1 engineering team member exceeded their Q3 travel budget: "
        "Alice Smith ($6,210.50 of $5,000.00)."
    )
    assert format_answer([]).startswith("No engineering team members")


def test_is_correct_accepts_right_answer_and_rejects_wrong_ones(data: ExpenseData) -> None:
    expected = expected_overspenders(data)
    assert is_correct(format_answer(expected), data)
    assert not is_correct(format_answer(expected[1:]), data)
    outsider = next(m for m in data.team("engineering") if m.name not in {o.name for o in expected})
    extra = [*expected, Overspend(outsider.name, outsider.id, 1.0, 0.0)]
    assert not is_correct(format_answer(extra), data)
    assert not is_correct("I could not determine the answer.", data)


def _trap(data: ExpenseData) -> str:
    """An engineer over budget only if pending items were (wrongly) counted."""
    return next(name for name, spent, pend, _, b in _engineers_q3(data) if spent <= b < pend)


def test_is_correct_reads_names_in_any_case_and_phrasing(data: ExpenseData) -> None:
    names = [o.name for o in expected_overspenders(data)]
    *head, last = names
    trap = _trap(data)
    right = [
        format_answer(expected_overspenders(data)).upper(),
        f"{', '.join(head)} and {last} exceeded their budgets, while {trap} did not.",
        f"{format_answer(expected_overspenders(data))} {trap} would be over only if pending "
        "items counted.",
        "Over budget:\n" + "".join(f"- {n}\n" for n in names) + f"\nWithin budget:\n- {trap}",
    ]
    for text in right:
        assert is_correct(text, data), text
    assert parse_names(right[2], data) == (set(names), {trap})


def test_names_mentioned_only_as_not_over_budget_are_not_claimed(data: ExpenseData) -> None:
    names = [o.name for o in expected_overspenders(data)]
    for text in (
        f"I checked {', '.join(names)}, and none of them exceeded their budget.",
        f"{', '.join(names)}: all within budget.",
        f"If pending items were counted, {', '.join(names)} would be over.",
    ):
        assert not is_correct(text, data), text
        assert parse_names(text, data) == (set(), set(names))


def test_the_scenario_check_says_who_was_named_only_as_not_over(data: ExpenseData) -> None:
    names = [o.name for o in expected_overspenders(data)]
    assert EXPENSE_AUDIT.check(format_answer(expected_overspenders(data)).upper()).correct
    verdict = EXPENSE_AUDIT.check(f"I checked {', '.join(names)}; none of them exceeded.")
    assert not verdict.correct
    assert verdict.reason.startswith(f"missing {sorted(names)}")
    assert "named only as not over budget" in verdict.reason
