"""openptc.stubs on its own; most stub behaviour is exercised per type in test_tools.py."""

import ast
import dataclasses
from typing import Annotated, Any, NewType, NotRequired

from pydantic import BaseModel, Field, computed_field
from typing_extensions import TypedDict

from openptc.stubs import FunctionStub, StubParam, annotated_description, render_stubs
from openptc.tools import Tool, Toolbox, tool

UserId = NewType("UserId", int)


class Report(BaseModel):
    total: int
    secret: str = Field("", exclude=True)

    @computed_field(description="total times two")  # type: ignore[prop-decorator]
    @property
    def double(self) -> int:
        return self.total * 2


Headers = TypedDict("Headers", {"content-type": str, "class": NotRequired[int]})


@dataclasses.dataclass
class Page:
    size: Annotated[int, Field(description="items  per\n page")]
    tags: list[str] = dataclasses.field(default_factory=list, metadata={"description": "labels"})


def test_render_stubs_is_what_tools_and_toolboxes_delegate_to() -> None:
    def a(x: int) -> Report: ...
    def b(h: Headers) -> Page: ...

    tools: list[Tool[..., Any]] = [tool(a), tool(b)]
    assert render_stubs([t.stub for t in tools]) == Toolbox(tools).render_stubs()
    assert render_stubs([tools[0].stub], imports=False) == tools[0].render_stub(imports=False)
    assert render_stubs([]) == "\n"


def test_stubs_render_from_a_plain_description_without_any_tool() -> None:
    stub = FunctionStub(
        name="lookup",
        description="Find one order.",
        params=(
            StubParam("order_id", str, "the order's id"),
            StubParam("fields", list[str], default=["total"], keyword_only=True),
        ),
        returns=Page,
    )
    source = render_stubs([stub])
    assert 'async def lookup(order_id: str, *, fields: list[str] = ["total"]) -> Page:' in source
    assert "order_id: the order's id" in source
    assert "class Page(TypedDict):" in source
    ast.parse(source)


def test_excluded_fields_are_left_out_and_computed_fields_included() -> None:
    def f() -> Report: ...

    stub = render_stubs([tool(f).stub])
    assert "class Report(TypedDict):\n    total: int\n    double: int  # total times two\n" in stub
    assert "secret" not in stub


def test_keys_that_are_not_identifiers_use_the_functional_syntax() -> None:
    def f(h: Headers) -> None: ...

    stub = render_stubs([tool(f).stub])
    ast.parse(stub)
    assert (
        'Headers = TypedDict("Headers", {\n    "content-type": str,\n'
        '    "class": NotRequired[int],\n})\n'
    ) in stub


def test_dataclass_field_descriptions_and_newtype_and_tuple() -> None:
    def f(p: Page, u: UserId, pair: tuple[int, str]) -> None: ...

    stub = render_stubs([tool(f).stub])
    ast.parse(stub)
    assert "    size: int  # items per page\n    tags: NotRequired[list[str]]  # labels\n" in stub
    assert "async def f(p: Page, u: int, pair: list[int | str]) -> None:" in stub


def test_annotated_description() -> None:
    assert annotated_description(Annotated[str, Field(description="why")]) == "why"
    assert annotated_description(Annotated[str, "just metadata"]) is None
    assert annotated_description(str) is None
    assert annotated_description(Any) is None
