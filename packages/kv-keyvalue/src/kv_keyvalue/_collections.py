"""How a py-key-value collection becomes one key segment of the adapter's store.

A collection is escaped into a single segment (``%`` -> ``%25``, ``/`` -> ``%2F``), so
collection ``tools/list`` is the segment ``tools%2Flist``: it neither nests under
``tools`` nor meets collection ``tools`` with key ``list/...``. Data lives at
``<segment>/<key>``; the key is stored as it is (kv maps every key reversibly).

An escaped name longer than :data:`MAX_SEGMENT` is replaced by ``%h`` + its SHA-256, and
the real name is written to a marker entry at the bare segment (``%h<hex>``, no ``/``),
so ``collections()`` still lists it exactly. No escaped name starts with ``%h`` (every
``%`` of one is followed by ``25`` or ``2F``), and no data key lacks a ``/``, so neither
can meet a marker.
"""

from __future__ import annotations

import hashlib

from kv_core import InvalidKeyError

__all__ = ["HASHED", "MAX_SEGMENT", "segment", "unsegment"]

#: Escaped collection names up to this length are stored as they are. Longer ones are
#: hashed, which keeps the full key short enough for every backend to store natively.
MAX_SEGMENT = 200
#: The start of a hashed segment (and of its marker key).
HASHED = "%h"


def segment(collection: str) -> tuple[str, bool]:
    """The key segment of ``collection`` and whether it is hashed (needs a marker)."""
    escaped = collection.replace("%", "%25").replace("/", "%2F")
    if len(escaped) <= MAX_SEGMENT:
        return escaped, False
    try:
        data = collection.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidKeyError(
            "a collection name must not contain lone surrogates", key=escaped[:64] + "..."
        ) from None
    return HASHED + hashlib.sha256(data).hexdigest(), True


def unsegment(seg: str) -> str:
    """The collection name of an unhashed segment (the inverse of :func:`segment`)."""
    # Every "%" of an escaped name starts "%25" or "%2F"; replacing "%2F" first cannot
    # match inside a "%25" token, so this inverts the escaping exactly.
    return seg.replace("%2F", "/").replace("%25", "%")
