"""The error tree of DESIGN §7, messages and pickling."""

from __future__ import annotations

import copy
import pickle

import pytest
from kv_core import (
    BackendError,
    BackendUnavailableError,
    InvalidKeyError,
    KeyNotFoundError,
    KVError,
    OutcomeUnknownError,
    PreconditionFailedError,
    SerializationError,
    StoreClosedError,
    UnsupportedOperationError,
    ValueTooLargeError,
)

# child -> (parent in the kv tree, extra builtin base or None)
TREE: dict[type[KVError], tuple[type[Exception], type[Exception] | None]] = {
    KeyNotFoundError: (KVError, KeyError),
    InvalidKeyError: (KVError, ValueError),
    SerializationError: (KVError, None),
    PreconditionFailedError: (KVError, None),
    ValueTooLargeError: (KVError, None),
    StoreClosedError: (KVError, None),
    UnsupportedOperationError: (KVError, None),
    BackendError: (KVError, None),
    BackendUnavailableError: (BackendError, None),
    OutcomeUnknownError: (BackendError, None),
}
ALL = [KVError, *TREE]


def test_kv_error_is_an_exception_and_nothing_more() -> None:
    assert KVError.__bases__ == (Exception,)


@pytest.mark.parametrize("cls", list(TREE), ids=lambda c: c.__name__)
def test_tree_is_exactly_design_section_7(cls: type[KVError]) -> None:
    parent, builtin = TREE[cls]
    assert cls.__bases__ == ((parent, builtin) if builtin else (parent,))
    assert issubclass(cls, KVError)
    others = {KeyError, ValueError} - {builtin}
    assert not any(issubclass(cls, o) for o in others)
    # Siblings are not each other's subclasses (a stale etag is not a backend failure).
    for other, (other_parent, _) in TREE.items():
        if other is not cls and other_parent is parent:
            assert not issubclass(cls, other)


def test_builtin_bases_catch_as_expected() -> None:
    with pytest.raises(KeyError):
        raise KeyNotFoundError("no such key", key="k")
    with pytest.raises(ValueError):
        raise InvalidKeyError("bad", key="k")
    with pytest.raises(BackendError):
        raise OutcomeUnknownError("maybe")


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_str_includes_message_key_and_store(cls: type[KVError]) -> None:
    err = cls("it broke", key="user/1", store="redis://host:6379/0")
    assert str(err) == "it broke (key='user/1', store=redis://host:6379/0)"
    assert (err.message, err.key, err.store) == ("it broke", "user/1", "redis://host:6379/0")


def test_str_without_key_or_store() -> None:
    assert str(KVError("only a message")) == "only a message"
    assert str(BackendError()) == "BackendError"
    assert str(KVError("m", store="memory://")) == "m (store=memory://)"
    assert str(KVError("m", key="k")) == "m (key='k')"


def test_key_not_found_str_is_not_repr_quoted() -> None:
    err = KeyNotFoundError("no such key", key="a")
    assert str(err) == "no such key (key='a')"
    assert not str(err).startswith(("'", '"'))
    assert str(KeyNotFoundError("plain")) == "plain"


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_pickling_keeps_type_message_key_and_store(cls: type[KVError]) -> None:
    err = cls("it broke", key="user/1", store="memory://")
    err.attempts = 3  # type: ignore[attr-defined]  # extra state a driver may attach
    for back in (pickle.loads(pickle.dumps(err)), copy.copy(err), copy.deepcopy(err)):
        assert type(back) is cls
        assert (back.message, back.key, back.store) == ("it broke", "user/1", "memory://")
        assert str(back) == str(err)
        assert back.attempts == 3  # type: ignore[attr-defined]


def test_pickling_without_key_or_store() -> None:
    back = pickle.loads(pickle.dumps(StoreClosedError("closed")))
    assert (back.message, back.key, back.store) == ("closed", None, None)
