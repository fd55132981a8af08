"""Opening stores by URL: schemes map to driver factories through entry points.

A backend package declares, in its ``pyproject.toml``::

    [project.entry-points."kv_core.backends"]
    redis = "kv_redis:RedisDriver.from_url"

The factory is called as ``factory(url, **options)`` and returns a Driver. Entry points
are read lazily on first use and each factory is loaded once. A scheme of the form
``wrapper+inner`` that is not registered as a whole (``cache+redis://...``) goes to the
factory of ``wrapper`` with the full URL, which opens the inner URL itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar, overload

from ._codecs import JSON, Codec
from ._driver import Driver
from ._errors import UnsupportedOperationError
from ._store import Store

__all__ = ["INSTALL_HINTS", "Registry", "default_registry", "open_driver", "open_store"]

T = TypeVar("T")
Factory = Callable[..., Driver]

ENTRY_POINT_GROUP = "kv_core.backends"

#: First-party schemes and the distribution that provides each.
INSTALL_HINTS: dict[str, str] = {
    "memory": "kv-core",
    "file": "kv-local",
    "sqlite": "kv-local",
    "redis": "kv-redis",
    "rediss": "kv-redis",
    "unix": "kv-redis",
    "redis+cluster": "kv-redis",
    "azure": "kv-azure",
    "cache": "kv-cache",
}

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")


def scheme_of(url: str) -> str:
    """Return the lower-cased scheme of ``url`` (``"redis+cluster"``, ``"file"``)."""
    match = _SCHEME.match(url) if isinstance(url, str) else None
    if match is None:
        raise ValueError(f"not a store URL (expected 'scheme:...'): {_redact(url)!r}")
    return match.group(1).lower()


# The user info of a URL, up to its last "@": an unencoded "/" or "@" in a password must
# not cut the match short and leak the rest.
_USERINFO = re.compile(r"//[^\s]*@")
# Secrets given as name=value in a query string or a connection string.
_SECRET_FIELD = re.compile(
    r"(?i)((?:account)?key|sharedaccesssignature|sig|password|passwd|pwd|secret|token"
    r"|[a-z_]*(?:_key|_secret|_token))=[^;&\s]*"
)


def _redact(url: object) -> str:
    """Return ``url`` as text with passwords, account keys and tokens replaced by ``***``."""
    text = _USERINFO.sub("//***@", str(url))
    return _SECRET_FIELD.sub(r"\1=***", text)


class Registry:
    """Maps URL schemes to driver factories.

    Args:
        use_entry_points: Also look schemes up in the ``kv_core.backends`` entry points
            (tests build a registry without them and register schemes by hand).
    """

    def __init__(self, *, use_entry_points: bool = True) -> None:
        self._factories: dict[str, Factory] = {}
        self._entry_points: dict[str, EntryPoint] | None = None if use_entry_points else {}

    def register(self, scheme: str, factory: Factory) -> None:
        """Register ``factory(url, **options) -> Driver`` for ``scheme`` (overrides any other)."""
        self._factories[scheme.lower()] = factory

    def schemes(self) -> list[str]:
        """Every scheme that can be opened now."""
        return sorted({*self._factories, *self._discovered()})

    def _discovered(self) -> dict[str, EntryPoint]:
        if self._entry_points is None:
            self._entry_points = {
                ep.name.lower(): ep for ep in entry_points(group=ENTRY_POINT_GROUP)
            }
        return self._entry_points

    def _lookup(self, scheme: str) -> Factory | None:
        factory = self._factories.get(scheme)
        if factory is None:
            ep = self._discovered().get(scheme)
            if ep is not None:
                try:
                    factory = ep.load()
                except (
                    Exception
                ) as exc:  # any import-time failure of a plugin, not only ImportError
                    raise UnsupportedOperationError(
                        f"the {scheme}:// backend (entry point {ep.name!r} = {ep.value!r} in "
                        f"group {ENTRY_POINT_GROUP!r}) failed to load: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                self._factories[scheme] = factory
        return factory

    def factory(self, scheme: str) -> Factory:
        """Return the factory of ``scheme``.

        Raises:
            UnsupportedOperationError: No installed package provides the scheme; the
                message names the package to install.
        """
        scheme = scheme.lower()
        factory = self._lookup(scheme)
        if factory is None and "+" in scheme:
            factory = self._lookup(scheme.split("+", 1)[0])
        if factory is not None:
            return factory
        hint = INSTALL_HINTS.get(scheme) or INSTALL_HINTS.get(scheme.split("+", 1)[0])
        if hint is not None:
            raise UnsupportedOperationError(f"{scheme}:// needs: pip install {hint}")
        known = ", ".join(self.schemes()) or "none"
        raise UnsupportedOperationError(
            f"no kv backend handles {scheme}:// (installed schemes: {known})"
        )

    def open_driver(self, url: str, **options: Any) -> Driver:
        """Open the driver for ``url``; ``options`` go to its factory."""
        return self.factory(scheme_of(url))(url, **options)

    # Overloads so that a call without ``codec`` is a Store[Any], not an uninferable Store[T].
    @overload
    def open_store(self, url: str, *, codec: Codec[T], **options: Any) -> Store[T]: ...
    @overload
    def open_store(self, url: str, **options: Any) -> Store[Any]: ...

    def open_store(self, url: str, *, codec: Codec[Any] = JSON, **options: Any) -> Store[Any]:
        """Open a :class:`Store` for ``url``; ``options`` go to the driver."""
        return Store(self.open_driver(url, **options), codec)


#: The registry :func:`open_store` uses.
default_registry = Registry()


def open_driver(url: str, **options: Any) -> Driver:
    """Open the driver for ``url`` with the default registry."""
    return default_registry.open_driver(url, **options)


@overload
def open_store(url: str, *, codec: Codec[T], **options: Any) -> Store[T]: ...
@overload
def open_store(url: str, **options: Any) -> Store[Any]: ...


def open_store(url: str, *, codec: Codec[Any] = JSON, **options: Any) -> Store[Any]:
    """Open a store by URL: ``open_store("file:./data")``, ``open_store("redis://localhost")``.

    The scheme picks the backend through the ``kv_core.backends`` entry points; keyword
    options go to the driver. A scheme whose package is missing fails with the exact
    install hint (``redis:// needs: pip install kv-redis``).
    """
    return default_registry.open_store(url, codec=codec, **options)
