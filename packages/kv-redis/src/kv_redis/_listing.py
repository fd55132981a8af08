"""List every key exactly once from SCAN, in bounded memory.

``SCAN`` returns every key that exists for the whole iteration at least once, but may
return a key more than once (when Redis shrinks or rehashes its table meanwhile), and the
repeats can come from anywhere earlier in the iteration. Remembering every name listed
is exact but grows with the store (~105 B a key). Instead, with a bound of ``limit`` names:

1. Stream: yield names as SCAN returns them, remembering each (``seen``). A store that
   fits (at most ``limit // 2`` names under the prefix) is listed in this one pass,
   exactly as before.
2. If it does not fit, stop streaming and finish in sorted windows: each further full
   SCAN pass keeps only the smallest names above the last window that phase 1 did not
   yield (as many as ``limit`` minus the phase 1 names still needed; pruned to the
   smallest half when full), then yields them in order. Each name comes out once: phase 1
   names are skipped by ``seen``, window names are strictly increasing. Phase 1 names at
   or below a finished window are dropped. Memory: at most ``limit`` names.

A big store costs one SCAN pass per window: memory is traded for passes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

__all__ = ["list_once"]


async def list_once(
    scan: Callable[[], AsyncIterator[list[bytes]]], limit: int
) -> AsyncIterator[bytes]:
    """Yield every name ``scan()`` returns exactly once, holding at most ``limit`` names.

    Args:
        scan: Starts a full SCAN iteration and yields its pages (duplicates allowed).
        limit: Most names held in memory at once (at least 4).
    """
    if limit < 4:
        raise ValueError(f"the listing limit must be at least 4 names, got {limit}")
    half = limit // 2
    seen: set[bytes] = set()
    async for page in scan():
        for name in page:
            if name in seen:
                continue
            if len(seen) >= half:
                break
            seen.add(name)
            yield name
        else:
            continue
        break  # too many names to remember: finish in sorted windows
    else:
        return
    after: bytes | None = None
    while True:
        window: set[bytes] = set()
        cut: bytes | None = None  # names above it wait for a later pass
        room = max(2, limit - len(seen))
        async for page in scan():
            for name in page:
                if (
                    name in seen
                    or (after is not None and name <= after)
                    or (cut is not None and name > cut)
                ):
                    continue
                window.add(name)
                if len(window) >= room:
                    keep = sorted(window)[: room // 2]
                    window, cut = set(keep), keep[-1]
        for name in sorted(window):
            yield name
        if cut is None:
            return
        after = cut
        # Names at or below the window are skipped by ``after`` from now on.
        seen = {name for name in seen if name > after}
