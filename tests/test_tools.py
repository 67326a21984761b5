"""Tools: schemas, validation, invocation, JSON results and Python stubs."""

import ast
import asyncio
import dataclasses
import datetime
import enum
import threading
from typing import Annotated, Any, Literal, NotRequired, Optional

import pytest
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from openptc.sandbox.base import ToolCallError, ToolHost, ToolSignature
from openptc.tools import Tool, Toolbox, tool

# --- types used by the tools under test --------------------------------------------------------


class Category(enum.Enum):
    TRAVEL = "travel"
    MEALS = "meals"


class Expense(BaseModel):
    id: str
    amount: float = Field(description="amount in USD")
    category: Category
    status: Literal["approved", "pending"]
    date: datetime.date
    note: str | None = None


class Member(TypedDict):
    id: str
    name: str
    manager: NotRequired[str]


class Totals(TypedDict, total=False):
    travel: float
    meals: float


@dataclasses.dataclass
class Budget:
    limit: float
    currency: str = "USD"


class Team(BaseModel):
    name: str
    members: list[Member]
    lead: Member


ExpenseModel = Expense


class Node(BaseModel):
    name: str
    children: list["Node"] = []


def stub_of(fn: Any) -> str:
    """The stub of a single function, checked to be valid Python."""
    source = tool(fn).render_stub()
    ast.parse(source)
    return source


def only_property(t: Tool[..., Any], name: str) -> Any:
    return t.input_schema["properties"][name]


# --- the decorator -----------------------------------------------------------------------------


def test_bare_decorator_keeps_the_function_callable() -> None:
    @tool
    def add(a: int, b: int = 2) -> int:
        """Add two numbers."""
        return a + b

    assert isinstance(add, Tool)
    assert add(1) == 3
    assert add.name == "add"
    assert add.description == "Add two numbers."
    assert add.params == ("a", "b")
    assert add.callers == frozenset({"direct", "code"})
    assert add.signature() == ToolSignature(name="add", params=("a", "b"))


def test_decorator_with_options() -> None:
    @tool(name="sum_up", description="Adds.", callers=("code",))
    async def add(a: int) -> int:
        """Ignored summary."""
        return a

    assert add.name == "sum_up"
    assert add.description == "Adds."
    assert add.callers == frozenset({"code"})
    assert asyncio.run(add(5)) == 5


def test_invalid_callers_and_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="callers"):
        tool(name="x", callers=("model",))(lambda: None)
    with pytest.raises(ValueError, match="callers"):
        tool(name="x", callers=())(lambda: None)
    with pytest.raises(ValueError, match="identifier"):
        tool(lambda: None)
    assert tool(name="noop", callers="direct")(lambda: None).callers == frozenset({"direct"})


def test_var_args_are_rejected_with_the_way_forward() -> None:
    def f(*items: int) -> None: ...

    def g(query: str, **filters: str) -> None: ...

    with pytest.raises(TypeError, match=r"tool f: \*items is not supported.*list parameter"):
        tool(f)
    with pytest.raises(TypeError) as info:
        tool(g)
    assert str(info.value).startswith("tool g: **filters is not supported: ")
    assert "use Tool.from_schema(name, description, input_schema, call)" in str(info.value)


def test_string_annotations_are_resolved() -> None:
    def f(x: "int", when: "datetime.date") -> "list[str]":
        return []

    t = tool(f)
    assert only_property(t, "x") == {"type": "integer"}
    assert t.output_schema == {"type": "array", "items": {"type": "string"}}
    assert "def f(x: int, when: str) -> list[str]:" in t.render_stub()


# --- docstrings --------------------------------------------------------------------------------


def test_google_docstring_args_become_descriptions() -> None:
    def get_expenses(employee_id: str, quarter: str, limit: int = 10) -> None:
        """Expense line items of one employee for one quarter.

        Only approved items are listed.

        Args:
            employee_id (str): The employee's id,
                for example "E17".
            quarter: Fiscal quarter.
            limit: At most this many.

        Returns:
            Nothing useful.
        """

    t = tool(get_expenses)
    assert t.description == (
        "Expense line items of one employee for one quarter.\n\n"
        "Only approved items are listed.\n\nReturns:\n    Nothing useful."
    )
    assert (
        only_property(t, "employee_id")["description"] == 'The employee\'s id, for example "E17".'
    )
    assert only_property(t, "quarter")["description"] == "Fiscal quarter."
    assert only_property(t, "limit") == {
        "description": "At most this many.",
        "default": 10,
        "type": "integer",
    }
    stub = stub_of(get_expenses)
    # Args are rendered before the Returns section, as in a Google docstring.
    assert stub.index("Args:") < stub.index("Returns:")
    assert '        employee_id: The employee\'s id, for example "E17".' in stub


def test_sphinx_and_numpy_docstrings_describe_parameters_too() -> None:
    def sphinx(employee_id: str, quarter: str) -> None:
        """Expenses of one employee.

        :param employee_id: The employee's id.
        :param quarter: Fiscal quarter,
            e.g. "Q3".
        :returns: The items.
        """

    def numpy(employee_id: str, quarter: str) -> None:
        """Expenses of one employee.

        Parameters
        ----------
        employee_id : str
            The employee's id.
        quarter : str
            Fiscal quarter,
            e.g. "Q3".

        Returns
        -------
        list
            The items.
        """

    for fn in (sphinx, numpy):
        t = tool(fn)
        assert t.description == "Expenses of one employee.\n\nReturns:\n    The items.", fn
        assert only_property(t, "employee_id")["description"] == "The employee's id."
        assert only_property(t, "quarter")["description"] == 'Fiscal quarter, e.g. "Q3".'


def test_a_docstring_without_sections_is_the_description_as_written() -> None:
    def f(q: str) -> None:
        """Look one thing up.

        Note: the lookup is slow: call it once.
        """

    assert tool(f).description == "Look one thing up.\n\nNote: the lookup is slow: call it once."


def test_annotated_field_description_is_used_without_docstring() -> None:
    def f(q: Annotated[str, Field(description="the quarter")]) -> None: ...

    assert only_property(tool(f), "q") == {"description": "the quarter", "type": "string"}
    assert "q: the quarter" in stub_of(f)


def test_docstring_quotes_and_backslashes_still_parse() -> None:
    def f() -> None:
        r"""Matches \d+ and says \"\"\" then "quoted\""""

    stub = stub_of(f)  # stub_of asserts ast.parse accepts it
    parsed = ast.parse(stub).body[-1]
    assert isinstance(parsed, ast.AsyncFunctionDef)
    assert ast.get_docstring(parsed) == tool(f).description


def test_tool_without_docstring_has_an_ellipsis_body() -> None:
    def ping() -> None: ...

    assert stub_of(ping).endswith("async def ping() -> None:\n    ...\n")


# --- schemas and stubs per type ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotation", "schema", "stub"),
    [
        (str, {"type": "string"}, "str"),
        (int, {"type": "integer"}, "int"),
        (float, {"type": "number"}, "float"),
        (bool, {"type": "boolean"}, "bool"),
        (list[int], {"type": "array", "items": {"type": "integer"}}, "list[int]"),
        (
            dict[str, float],
            {"type": "object", "additionalProperties": {"type": "number"}},
            "dict[str, float]",
        ),
        (Optional[int], {"anyOf": [{"type": "integer"}, {"type": "null"}]}, "int | None"),  # noqa: UP045
        (int | None, {"anyOf": [{"type": "integer"}, {"type": "null"}]}, "int | None"),
        (Literal["Q1", "Q2"], {"type": "string", "enum": ["Q1", "Q2"]}, 'Literal["Q1", "Q2"]'),
        (datetime.date, {"type": "string", "format": "date"}, "str"),
        (datetime.datetime, {"type": "string", "format": "date-time"}, "str"),
        (Any, {}, "Any"),
    ],
)
def test_scalar_and_container_types(annotation: Any, schema: dict[str, Any], stub: str) -> None:
    def f(x): ...  # type: ignore[no-untyped-def]

    f.__annotations__ = {"x": annotation, "return": annotation}
    t = tool(f)
    assert only_property(t, "x") == schema
    assert t.output_schema == schema
    assert f"async def f(x: {stub}) -> {stub}:" in stub_of(f)


def test_none_return() -> None:
    def f() -> None: ...

    assert tool(f).output_schema == {"type": "null"}
    assert "-> None:" in stub_of(f)


def test_missing_return_annotation_is_any() -> None:
    def f(x: int):  # type: ignore[no-untyped-def]
        return x

    t = tool(f)
    assert t.output_schema is None
    assert "async def f(x: int) -> Any:" in t.render_stub()
    assert t.render_stub().startswith("from typing import Any\n")


def test_dates_are_commented_in_stubs() -> None:
    def f(since: datetime.date) -> datetime.datetime: ...

    stub = stub_of(f)
    assert "since: (ISO 8601 date)" in stub
    assert "Returns:\n        ISO 8601 datetime" in stub


def test_enum() -> None:
    def f(c: Category) -> Category: ...

    t = tool(f)
    assert t.input_schema["$defs"]["Category"] == {"type": "string", "enum": ["travel", "meals"]}
    assert 'async def f(c: Literal["travel", "meals"]) -> Literal["travel", "meals"]:' in stub_of(f)


def test_pydantic_model() -> None:
    def f(e: Expense) -> Expense: ...

    t = tool(f)
    expense = t.input_schema["$defs"]["Expense"]
    assert expense["required"] == ["id", "amount", "category", "status", "date"]
    assert expense["properties"]["amount"] == {"description": "amount in USD", "type": "number"}
    assert "title" not in expense
    assert t.output_schema is not None
    assert t.output_schema["properties"]["date"] == {"type": "string", "format": "date"}
    assert t.output_schema["$defs"]["Category"] == {"type": "string", "enum": ["travel", "meals"]}
    stub = stub_of(f)
    assert (
        "class Expense(TypedDict):\n"
        "    id: str\n"
        "    amount: float  # amount in USD\n"
        '    category: Literal["travel", "meals"]\n'
        '    status: Literal["approved", "pending"]\n'
        "    date: str  # ISO 8601 date\n"
        "    note: NotRequired[str | None]\n"
    ) in stub
    assert "async def f(e: Expense) -> Expense:" in stub


def test_typeddict_total_and_not_required() -> None:
    def f(m: Member) -> Totals: ...

    t = tool(f)
    assert t.input_schema["$defs"]["Member"]["required"] == ["id", "name"]
    assert t.output_schema is not None and "required" not in t.output_schema
    stub = stub_of(f)
    assert (
        "class Member(TypedDict):\n    id: str\n    name: str\n    manager: NotRequired[str]\n"
        in stub
    )
    assert (
        "class Totals(TypedDict):\n    travel: NotRequired[float]\n    meals: NotRequired[float]\n"
        in stub
    )
    assert "async def f(m: Member) -> Totals:" in stub


def test_dataclass() -> None:
    def f(b: Budget) -> Budget: ...

    t = tool(f)
    assert t.input_schema["$defs"]["Budget"]["required"] == ["limit"]
    stub = stub_of(f)
    assert "class Budget(TypedDict):\n    limit: float\n    currency: NotRequired[str]\n" in stub


def test_nested_types_are_defined_once_and_before_use() -> None:
    def teams() -> list[Team]: ...
    def lead(team: Team) -> Member: ...
    def expenses(ids: list[str]) -> dict[str, list[Expense]]: ...

    stub = Toolbox([teams, lead, expenses]).render_stubs()
    ast.parse(stub)
    for name in ("Member", "Team", "Expense"):
        assert stub.count(f"class {name}(TypedDict):") == 1
    assert stub.index("class Member(") < stub.index("class Team(") < stub.index("async def teams(")
    assert "    members: list[Member]\n    lead: Member\n" in stub
    assert "async def expenses(ids: list[str]) -> dict[str, list[Expense]]:" in stub
    assert stub.splitlines()[0] == "from typing import Literal, NotRequired, TypedDict"


def test_recursive_model_renders() -> None:
    def tree() -> Node: ...

    stub = stub_of(tree)
    assert "class Node(TypedDict):\n    name: str\n    children: NotRequired[list[Node]]\n" in stub


def test_same_class_name_from_two_places_gets_distinct_names() -> None:
    class Expense(TypedDict):  # shadows the model of the same name
        total: float

    def a() -> Expense: ...
    def b() -> list[ExpenseModel]: ...

    stub = Toolbox([a, b]).render_stubs()
    ast.parse(stub)
    assert "class Expense(TypedDict):\n    total: float\n" in stub
    assert "class Expense2(TypedDict):\n    id: str\n" in stub
    assert "async def b() -> list[Expense2]:" in stub


def test_defaults_keyword_only_and_long_signatures() -> None:
    def search(
        query: str,
        category: Category = Category.MEALS,
        tags: list[str] | None = None,
        *,
        limit: int = 10,
        include_archived_items_from_previous_fiscal_years: bool = False,
    ) -> list[str]: ...

    stub = stub_of(search)
    assert '    category: Literal["travel", "meals"] = "meals",\n' in stub
    assert "    tags: list[str] | None = None,\n    *,\n    limit: int = 10,\n" in stub
    assert stub.count("\n") > 6  # wrapped: one parameter per line
    assert only_property(tool(search), "category")["default"] == "meals"


def test_property_named_title_survives_title_stripping() -> None:
    def f(title: str) -> None: ...

    t = tool(f)
    assert t.input_schema["properties"] == {"title": {"type": "string"}}
    assert "title" not in t.input_schema
    assert t.input_schema["additionalProperties"] is False


def test_stubs_are_deterministic() -> None:
    def teams() -> list[Team]: ...
    def spend(e: Expense, b: Budget) -> Totals: ...

    assert Toolbox([teams, spend]).render_stubs() == Toolbox([teams, spend]).render_stubs()


# --- invocation and validation -----------------------------------------------------------------


@tool
async def get_expenses(employee_id: str, quarter: Literal["Q1", "Q2", "Q3", "Q4"]) -> list[Expense]:
    """Expense line items of one employee for one quarter."""
    return [
        Expense(
            id=f"{employee_id}-1",
            amount=12.5,
            category=Category.TRAVEL,
            status="approved",
            date=datetime.date(2024, 7, 1),
        )
    ]


async def test_async_tool_result_is_plain_json() -> None:
    result = await get_expenses.invoke({"employee_id": "E1", "quarter": "Q3"})
    assert result == [
        {
            "id": "E1-1",
            "amount": 12.5,
            "category": "travel",
            "status": "approved",
            "date": "2024-07-01",
            "note": None,
        }
    ]


async def test_sync_tool_runs_in_a_thread() -> None:
    @tool
    def where() -> int:
        return threading.get_ident()

    assert await where.invoke({}) != threading.get_ident()


async def test_arguments_are_converted_to_the_annotated_types() -> None:
    seen: list[Any] = []

    @tool
    def record(e: Expense, b: Budget, when: datetime.date, c: Category) -> None:
        seen.extend([e, b, when, c])

    expense = {
        "id": "x",
        "amount": 1,
        "category": "meals",
        "status": "pending",
        "date": "2024-01-02",
    }
    assert (
        await record.invoke({"e": expense, "b": {"limit": 5}, "when": "2024-02-03", "c": "travel"})
        is None
    )
    assert isinstance(seen[0], Expense) and seen[0].category is Category.MEALS
    assert seen[1] == Budget(limit=5.0)
    assert seen[2] == datetime.date(2024, 2, 3)
    assert seen[3] is Category.TRAVEL


async def test_omitted_arguments_keep_the_function_defaults() -> None:
    @tool
    def f(a: int, b: list[int] | None = None, /) -> Any:
        return [a, b]

    assert await f.invoke({"a": 1}) == [1, None]
    assert await f.invoke({"a": 1, "b": [2]}) == [1, [2]]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {"employee_id": "E1", "quarter": "Q5"},
            "get_expenses(): argument 'quarter': "
            "Input should be 'Q1', 'Q2', 'Q3' or 'Q4' (got 'Q5')",
        ),
        (
            {"employee_id": 17, "quarter": "Q1"},
            "get_expenses(): argument 'employee_id': Input should be a valid string (got 17)",
        ),
        ({"quarter": "Q1"}, "get_expenses(): missing required argument 'employee_id'"),
        ({}, "get_expenses(): missing required arguments 'employee_id', 'quarter'"),
        (
            {"employee_id": "E1", "quarter": "Q1", "foo": 1},
            "get_expenses(): unexpected argument 'foo'; parameters are employee_id, quarter",
        ),
        (["E1", "Q1"], "get_expenses(): arguments must be an object, got list"),
    ],
)
async def test_invalid_arguments(arguments: Any, message: str) -> None:
    with pytest.raises(ToolCallError) as info:
        await get_expenses.invoke(arguments)
    assert str(info.value) == message
    assert info.value.kind == "ToolArgumentError"


async def test_nested_argument_error_names_the_path() -> None:
    @tool
    def f(items: list[Budget]) -> None: ...

    with pytest.raises(
        ToolCallError, match=r"argument 'items\[1\]\.limit': Input should be a valid number"
    ):
        await f.invoke({"items": [{"limit": 1}, {"limit": "lots"}]})
    with pytest.raises(ToolCallError, match=r"argument 'items\[0\]\.limit': Field required$"):
        await f.invoke({"items": [{}]})


async def test_exception_in_tool_becomes_tool_error() -> None:
    @tool
    def boom(x: int) -> int:
        raise KeyError(f"no record {x}")

    with pytest.raises(ToolCallError) as info:
        await boom.invoke({"x": 3})
    assert str(info.value) == "KeyError: 'no record 3'"
    assert info.value.kind == "ToolError"
    assert isinstance(info.value.__cause__, KeyError)


async def test_tool_call_error_raised_by_a_tool_passes_through() -> None:
    @tool
    async def deny() -> None:
        raise ToolCallError("not allowed", kind="PermissionDenied")

    with pytest.raises(ToolCallError) as info:
        await deny.invoke({})
    assert (str(info.value), info.value.kind) == ("not allowed", "PermissionDenied")


async def test_unconvertible_result_names_the_tool() -> None:
    @tool
    def handle():  # type: ignore[no-untyped-def]
        return threading.Lock()

    with pytest.raises(
        ToolCallError, match=r"^handle\(\) returned a lock value that cannot be converted"
    ):
        await handle.invoke({})


async def test_unannotated_result_is_still_made_json() -> None:
    @tool
    def when():  # type: ignore[no-untyped-def]
        return {"at": datetime.date(2024, 1, 2), "c": Category.MEALS, "b": Budget(limit=1)}

    assert await when.invoke({}) == {
        "at": "2024-01-02",
        "c": "meals",
        "b": {"limit": 1.0, "currency": "USD"},
    }


# --- Toolbox -----------------------------------------------------------------------------------


def team_members(team: str) -> list[Member]:
    """Members of a team."""
    return [{"id": "m1", "name": "Ada"}]


@tool(callers=("direct",))
def approve(expense_id: str) -> bool:
    """Approve one expense."""
    return True


def test_toolbox_basics() -> None:
    box = Toolbox([get_expenses, team_members, approve])
    assert len(box) == 3
    assert box.names == ("get_expenses", "team_members", "approve")
    assert [t.name for t in box] == list(box.names)
    assert isinstance(box["team_members"], Tool)  # plain functions are wrapped
    assert "approve" in box and "nope" not in box
    assert box.signatures()[0] == ToolSignature("get_expenses", ("employee_id", "quarter"))
    assert isinstance(box, ToolHost)
    with pytest.raises(KeyError, match="available tools: get_expenses, team_members, approve"):
        box["nope"]


def test_duplicate_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate tool name 'approve'"):
        Toolbox([approve, tool(name="approve")(team_members)])


def test_for_caller_filters() -> None:
    box = Toolbox([get_expenses, approve, tool(callers="code")(team_members)])
    assert box.for_caller("direct").names == ("get_expenses", "approve")
    assert box.for_caller("code").names == ("get_expenses", "team_members")
    with pytest.raises(ValueError):
        box.for_caller("robot")  # type: ignore[arg-type]


def test_specs() -> None:
    specs = Toolbox([approve]).specs()
    assert specs == [
        {
            "name": "approve",
            "description": "Approve one expense.",
            "input_schema": {
                "type": "object",
                "properties": {"expense_id": {"type": "string"}},
                "required": ["expense_id"],
                "additionalProperties": False,
            },
        }
    ]


async def test_toolbox_call() -> None:
    box = Toolbox([team_members, get_expenses])
    assert await box.call("team_members", {"team": "eng"}) == [{"id": "m1", "name": "Ada"}]
    with pytest.raises(
        ToolCallError, match="unknown tool 'nope'; available tools: team_members, get_expenses"
    ):
        await box.call("nope", {})


async def test_parallel_calls() -> None:
    @tool
    async def slow(i: int) -> int:
        await asyncio.sleep(0.05)
        return i

    box = Toolbox([slow])
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await asyncio.gather(*(box.call("slow", {"i": i}) for i in range(20))) == list(range(20))
    assert loop.time() - start < 0.5


def test_toolbox_stub_matches_the_documented_shape() -> None:
    stub = Toolbox([get_expenses]).render_stubs(imports=False)
    ast.parse(stub)
    assert not stub.startswith("from typing")
    assert stub.endswith(
        'async def get_expenses(employee_id: str, quarter: Literal["Q1", "Q2", "Q3", "Q4"]) '
        '-> list[Expense]:\n    """Expense line items of one employee for one quarter."""\n'
    )
