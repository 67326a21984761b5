"""``/v1/models`` of a proxy whose mapping is ``*`` (every name) lists the backend's model under
its own name, so a client that picks a model from the list finds one — never an empty list, and
never the backend's URL (it may hold a password)."""

from __future__ import annotations

from fakes.proxy_setup import config, running_proxy


async def test_a_wildcard_alone_lists_its_backend_model() -> None:
    async with running_proxy(config(models={"*": "scripted:expense-audit"})) as proxy:
        client = proxy.client()
        listed = await client.models.list()
        found = await client.models.retrieve("expense-audit")
    assert [m.id for m in listed.data] == ["expense-audit"]
    assert found.display_name == (
        "expense-audit (any model name is served by scripted:expense-audit)"
    )


async def test_the_wildcard_backend_is_listed_once_and_without_its_url() -> None:
    models = {
        "fast": "scripted:expense-audit",
        "*": "ollama:qwen3@http://user:s3cret@127.0.0.1:9/v1",
    }
    async with running_proxy(config(models=models)) as proxy:
        listed = (await proxy.client().models.list()).data
    assert [m.id for m in listed] == ["fast", "qwen3"]
    assert listed[1].display_name == "qwen3 (any model name is served by ollama:qwen3)"
    same = {"fast": "scripted:expense-audit", "*": "scripted:expense-audit"}
    async with running_proxy(config(models=same)) as proxy:
        listed = (await proxy.client().models.list()).data
    assert [m.id for m in listed] == ["fast"]  # a configured name already reaches it
