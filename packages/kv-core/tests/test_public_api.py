"""The public surface of kv_core is exactly ``__all__``, and holds the pinned names."""

from __future__ import annotations

import importlib
import types

import kv_core
import pytest

# DESIGN §3 and §7: names users and acceptance checks import from kv_core.
PINNED = [
    "Store",
    "open_store",
    "Entry",
    "JSON",
    "BYTES",
    "TEXT",
    "PICKLE",
    "MemoryDriver",
    "Driver",
    "RawEntry",
    "Capability",
    "KVError",
    "KeyNotFoundError",
    "InvalidKeyError",
    "SerializationError",
    "PreconditionFailedError",
    "ValueTooLargeError",
    "StoreClosedError",
    "UnsupportedOperationError",
    "BackendError",
    "BackendUnavailableError",
    "OutcomeUnknownError",
]


def test_all_has_no_duplicates() -> None:
    assert len(kv_core.__all__) == len(set(kv_core.__all__))


@pytest.mark.parametrize("name", kv_core.__all__)
def test_every_name_in_all_is_importable(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from kv_core import {name}", namespace)  # the import statement a user writes
    assert namespace[name] is getattr(kv_core, name)


def test_every_public_attribute_is_in_all() -> None:
    importlib.import_module("kv_core.testing")  # loaded by some tests; a module, so exempt
    public = {
        name
        for name, value in vars(kv_core).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(kv_core.__all__) - {"__version__"}


@pytest.mark.parametrize("name", PINNED)
def test_pinned_names_are_public(name: str) -> None:
    assert name in kv_core.__all__
    assert getattr(kv_core, name) is not None


def test_public_classes_say_they_come_from_kv_core_modules() -> None:
    for name in kv_core.__all__:
        value = getattr(kv_core, name)
        if isinstance(value, type):
            assert value.__module__.startswith("kv_core"), name
            assert value.__doc__, f"{name} has no docstring"


def test_version() -> None:
    assert isinstance(kv_core.__version__, str)
    assert kv_core.__version__.count(".") == 2
