"""FastMCP running on kv: ResponseCachingMiddleware storing in Redis and in a folder.

fastmcp is a test dependency (4.2 on Python 3.11+, 4.1 on 3.10, the last release for it).
The server runs in process; the client talks to it through FastMCP's in-memory transport.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client, FastMCP
from fastmcp.server.middleware.caching import ResponseCachingMiddleware
from kv_core import Store, open_store
from kv_keyvalue import KeyValueAdapter


@pytest.fixture(params=["redis", "file"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        opened: Store[Any] = open_store(url, prefix=f"kvkv-mcp-{id(tmp_path)}:")
    else:
        opened = open_store(f"file:{tmp_path / 'mcp-cache'}")
    async with opened:
        yield opened


def server(calls: list[tuple[int, int]], storage: KeyValueAdapter) -> FastMCP:
    mcp = FastMCP("kv-cached")

    @mcp.tool
    def add(a: int, b: int) -> int:
        """Add two numbers (counts its calls)."""
        calls.append((a, b))
        return a + b

    mcp.add_middleware(ResponseCachingMiddleware(cache_storage=storage))
    return mcp


async def test_a_tool_called_twice_runs_once(store: Store[Any]) -> None:
    calls: list[tuple[int, int]] = []
    storage = KeyValueAdapter(store.namespace("mcp-cache"))
    async with Client(server(calls, storage)) as client:
        first = await client.call_tool("add", {"a": 1, "b": 2})
        second = await client.call_tool("add", {"a": 1, "b": 2})
        other = await client.call_tool("add", {"a": 2, "b": 2})
        tools = await client.list_tools()
        assert [t.name for t in await client.list_tools()] == [t.name for t in tools]
    assert first.data == second.data == 3
    assert other.data == 4
    assert calls == [(1, 2), (2, 2)]
    collections = await storage.collections()
    assert "tools/call" in collections
    assert "tools/list" in collections
    assert len(await storage.keys("tools/call")) == 2
    # The cache lives in kv: a new server over the same storage answers from it.
    later: list[tuple[int, int]] = []
    async with Client(server(later, KeyValueAdapter(store.namespace("mcp-cache")))) as client:
        again = await client.call_tool("add", {"a": 1, "b": 2})
    assert again.data == 3
    assert later == []
