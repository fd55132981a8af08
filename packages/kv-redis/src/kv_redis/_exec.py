"""Where commands go: one node, or the right primary of a Redis Cluster.

Both executors speak through :class:`~kv_redis._mux.Multiplexer` (one pipelined
connection per node), so a cluster keeps automatic pipelining and bounded concurrency:
any number of concurrent operations become at most one connection and one in-flight
pipeline per primary.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)

from ._errors import NotSentError, TransportError
from ._mux import Command, Multiplexer

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from redis.asyncio.connection import AbstractConnection

__all__ = ["ClusterExecutor", "Executor", "NodeExecutor"]

# MOVED / ASK / TRYAGAIN / CLUSTERDOWN all mean "not executed", so resending is safe.
_REDIRECTS = (AskError, TryAgainError, ClusterDownError)
_ATTEMPTS = 6


class Executor(Protocol):
    """Sends commands to the node that owns their key."""

    async def call(self, key: bytes, command: Command) -> Any:
        """Reply to ``command`` about ``key``; an error reply is raised."""
        ...

    async def call_many(self, items: Sequence[tuple[bytes, Command]]) -> list[Any]:
        """Replies to several commands (error replies as values), pipelined per node."""
        ...

    async def scan_targets(self) -> list[Multiplexer]:
        """One multiplexer per node holding data (every primary of a cluster)."""
        ...

    def stats(self) -> tuple[int, int]:
        """(round trips, commands) sent so far over every connection."""
        ...

    async def aclose(self) -> None:
        """Close the connections."""
        ...


class NodeExecutor:
    """Every command to one server over one multiplexed connection."""

    def __init__(
        self, factory: Callable[[], AbstractConnection], on_connect: Sequence[Command] = ()
    ) -> None:
        self._mux = Multiplexer(factory, on_connect=on_connect)

    async def call(self, key: bytes, command: Command) -> Any:
        return await self._mux.execute(command)

    async def call_many(self, items: Sequence[tuple[bytes, Command]]) -> list[Any]:
        return await self._mux.execute_many([command for _, command in items])

    async def scan_targets(self) -> list[Multiplexer]:
        return [self._mux]

    def stats(self) -> tuple[int, int]:
        return self._mux.round_trips, self._mux.commands

    async def aclose(self) -> None:
        await self._mux.aclose()


class ClusterExecutor:
    """Route each command by key slot to its primary, following redirects.

    redis-py's :class:`RedisCluster` is used only for topology (CLUSTER SLOTS, node
    discovery); data goes through our own connections, built from each node's
    connection settings with ``overrides`` applied.
    """

    def __init__(
        self,
        cluster: RedisCluster,
        overrides: dict[str, Any],
        on_connect: Sequence[Command] = (),
    ) -> None:
        self._cluster = cluster
        self._on_connect = on_connect
        self._overrides = overrides
        self._muxes: dict[str, Multiplexer] = {}
        self._stale = True
        self._initialized = False
        self._refreshing: asyncio.Future[None] | None = None

    async def _refresh(self) -> None:
        # Every task that finds the topology stale waits for the same refresh and all wake
        # together (a lock would release them one per loop turn and defeat pipelining).
        if self._refreshing is None:
            self._refreshing = asyncio.ensure_future(self._do_refresh())
        await asyncio.shield(self._refreshing)

    async def _do_refresh(self) -> None:
        try:
            if not self._initialized:
                await self._cluster.initialize()  # no-op if the user's client already did
                self._initialized = True
            else:
                await self._cluster.nodes_manager.initialize()
            self._stale = False
        except (RedisError, RedisClusterException, OSError) as exc:
            raise NotSentError(exc) from exc
        finally:
            self._refreshing = None

    def _mux(self, node: ClusterNode) -> Multiplexer:
        mux = self._muxes.get(node.name)
        if mux is None:
            kwargs = {**node.connection_kwargs, **self._overrides}
            cls = node.connection_class
            mux = self._muxes[node.name] = Multiplexer(
                lambda: cls(**kwargs), on_connect=self._on_connect
            )
        return mux

    async def _node_for(self, key: bytes) -> ClusterNode:
        if self._stale:
            await self._refresh()
        nodes = self._cluster.nodes_manager.slots_cache.get(key_slot(key))
        if not nodes:
            self._stale = True
            raise NotSentError(RedisClusterException("slot not covered by the cluster"))
        return nodes[0]

    async def call(self, key: bytes, command: Command) -> Any:
        asking: ClusterNode | None = None
        for attempt in range(_ATTEMPTS):
            node = asking or await self._node_for(key)
            try:
                if asking is not None:
                    reply = (await self._mux(node).execute_many([("ASKING",), command]))[1]
                    if isinstance(reply, ResponseError):
                        raise reply
                    return reply
                return await self._mux(node).execute(command)
            except MovedError:
                self._stale = True
                asking = None
            except AskError as exc:
                asking = self._cluster.nodes_manager.get_node(exc.host, exc.port) or ClusterNode(
                    exc.host, exc.port, **self._cluster.nodes_manager.connection_kwargs
                )
            except (TryAgainError, ClusterDownError) as exc:
                # Not executed (e.g. a failover in progress): wait a little and resend.
                self._stale = True
                asking = None
                if attempt < _ATTEMPTS - 1:
                    await asyncio.sleep(0.025 * 2**attempt)
                    continue
                raise NotSentError(exc) from exc
            except TransportError:
                # The node may have failed over: look the topology up again next time.
                self._stale = True
                raise
        raise NotSentError(RedisClusterException("too many cluster redirects"))

    async def call_many(self, items: Sequence[tuple[bytes, Command]]) -> list[Any]:
        by_node: dict[str, tuple[ClusterNode, list[int]]] = {}
        for i, (key, _) in enumerate(items):
            node = await self._node_for(key)
            by_node.setdefault(node.name, (node, []))[1].append(i)
        replies: list[Any] = [None] * len(items)

        async def run(node: ClusterNode, indexes: list[int]) -> None:
            try:
                out = await self._mux(node).execute_many([items[i][1] for i in indexes])
            except TransportError:
                self._stale = True
                raise
            for i, reply in zip(indexes, out, strict=False):
                replies[i] = reply

        results = await asyncio.gather(
            *(run(node, indexes) for node, indexes in by_node.values()), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        # Anything redirected was not executed: send it again through the routing loop.
        for i, reply in enumerate(replies):
            if isinstance(reply, _REDIRECTS):
                try:
                    replies[i] = await self.call(*items[i])
                except ResponseError as exc:
                    replies[i] = exc
        return replies

    async def scan_targets(self) -> list[Multiplexer]:
        if self._stale:
            await self._refresh()
        return [self._mux(node) for node in self._cluster.get_primaries()]

    def stats(self) -> tuple[int, int]:
        muxes = list(self._muxes.values())
        return sum(m.round_trips for m in muxes), sum(m.commands for m in muxes)

    async def aclose(self) -> None:
        for mux in list(self._muxes.values()):
            await mux.aclose()
        self._muxes.clear()
