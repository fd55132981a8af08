"""``cache+<inner-url>``: opening a cached driver from a URL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

if TYPE_CHECKING:
    from ._driver import CachedDriver

__all__ = ["CACHE_OPTIONS", "open_cached", "split_cache_url"]

#: Keyword options of :class:`~kv_cache.CachedDriver` that ``from_url`` takes for itself;
#: every other option goes to the inner driver.
CACHE_OPTIONS = {
    "mode": str,
    "max_items": int,
    "max_bytes": int,
    "on_conflict": str,
    "max_staleness": float,
    "negative_caching": bool,
    "flush_interval": float,
    "flush_concurrency": int,
}
_ALIASES = {"ttl": "max_staleness", "cache_ttl": "max_staleness"}
_QUERY_PREFIX = "cache_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(name: str, text: str) -> object:
    kind = CACHE_OPTIONS[name]
    if text.lower() in ("none", "") and name in ("max_staleness", "flush_interval"):
        return None
    if kind is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(f"cache option {name}={text!r} is not a boolean")
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"cache option {name}={text!r} is not a valid {kind.__name__}") from None


def split_cache_url(url: str) -> tuple[str, dict[str, object]]:
    """Split ``cache+<inner>`` into the inner URL and the cache options in its query.

    Query parameters named ``cache_<option>`` (``cache_mode=write_through``,
    ``cache_max_items=1000``, ``cache_ttl=5``) are taken out of the inner URL; everything
    else is left exactly as written (the URL is never parsed and rebuilt, which would
    turn ``file:./data`` into ``file:///./data``, a folder at the root).

    Raises:
        ValueError: ``url`` does not start with ``cache+``, or an option is malformed.
    """
    if not url.lower().startswith("cache+"):
        raise ValueError("a cache URL looks like 'cache+<inner-url>', e.g. 'cache+redis://host'")
    inner = url[len("cache+") :]
    base, question, rest = inner.partition("?")
    if not question:
        return inner, {}
    query, hash_sign, fragment = rest.partition("#")
    kept: list[str] = []
    options: dict[str, object] = {}
    for part in query.split("&"):
        raw_name, _, raw_value = part.partition("=")
        name = unquote_plus(raw_name)
        if not name.startswith(_QUERY_PREFIX):
            kept.append(part)
            continue
        option = name[len(_QUERY_PREFIX) :]
        option = _ALIASES.get(option, option)
        if option not in CACHE_OPTIONS:
            raise ValueError(f"unknown cache option in URL: {name}")
        options[option] = _convert(option, unquote_plus(raw_value))
    if not options:
        return inner, options  # leave the inner URL exactly as written
    kept = [part for part in kept if part]
    rebuilt = base + ("?" + "&".join(kept) if kept else "") + hash_sign + fragment
    return rebuilt, options


def open_cached(cls: type[CachedDriver], url: str, options: dict[str, Any]) -> CachedDriver:
    """Open the inner driver through the kv-core registry and wrap it in ``cls``."""
    from kv_core import open_driver

    inner_url, cache_options = split_cache_url(url)
    inner_options = dict(options)
    for name in list(inner_options):
        target = _ALIASES.get(name, name)
        if target in CACHE_OPTIONS:
            cache_options[target] = inner_options.pop(name)
    inner = open_driver(inner_url, **inner_options)
    return cls(inner, **cache_options)  # type: ignore[arg-type]
