"""Channels: where a graph's state lives between supersteps, one reducer rule per class.

Contract shared by every channel (the shape of LangGraph's ``BaseChannel``):

- ``update(values)`` receives every write of one superstep at once, in the deterministic
  order the loop applies them, and returns whether the channel changed. An empty sequence
  tells the channel a superstep passed without writes to it (ephemeral channels clear then).
- ``get()`` returns the value or raises :class:`EmptyChannelError`; ``is_available()`` says
  which without raising.
- ``consume()`` is called after a node that the channel triggered has run.
- Channels are used from the loop's thread only; they need no locking.
"""

from __future__ import annotations

import collections.abc
import typing
from collections.abc import Callable, Sequence
from typing import Any

from otelstream.errors import ErrorCode, InvalidUpdateError

__all__ = [
    "MISSING",
    "TROUBLESHOOTING_URL",
    "BaseChannel",
    "BinaryOperatorAggregate",
    "EmptyChannelError",
    "EphemeralValue",
    "LastValue",
    "NamedBarrierValue",
    "Topic",
    "strip_required",
    "troubleshooting",
]

TROUBLESHOOTING_URL = "https://docs.langchain.com/oss/python/langgraph/errors/"


def troubleshooting(message: str, code: ErrorCode) -> str:
    """Return ``message`` with LangGraph's troubleshooting link, so messages match it verbatim."""
    return f"{message}\nFor troubleshooting, visit: {TROUBLESHOOTING_URL}{code.value}"


class EmptyChannelError(Exception):
    """The channel holds no value yet."""


_MISSING: Any = object()
MISSING: Any = _MISSING
"""What :meth:`BaseChannel.checkpoint` returns for an empty channel."""


class BaseChannel:
    """A named slot of graph state; subclasses define how writes combine."""

    __slots__ = ("key", "value")

    def __init__(self, key: str) -> None:
        """Create an empty channel named ``key``."""
        self.key = key
        self.value: Any = _MISSING

    def copy(self) -> BaseChannel:
        """Return an independent channel with the same value."""
        new = object.__new__(type(self))
        for cls in type(self).__mro__:
            for slot in getattr(cls, "__slots__", ()):
                setattr(new, slot, getattr(self, slot))
        return new

    def get(self) -> Any:
        """Return the current value, or raise :class:`EmptyChannelError`."""
        if self.value is _MISSING:
            raise EmptyChannelError(self.key)
        return self.value

    def is_available(self) -> bool:
        """Return whether :meth:`get` would return a value."""
        return self.value is not _MISSING

    def update(self, values: Sequence[Any]) -> bool:
        """Apply one superstep's writes; return whether the channel changed."""
        raise NotImplementedError

    def consume(self) -> bool:
        """Mark the value as consumed by a triggered node; return whether it changed."""
        return False

    def checkpoint(self) -> Any:
        """Return what a checkpoint keeps of the channel (:data:`MISSING` when empty)."""
        return self.value

    def restore(self, saved: Any) -> None:
        """Set the channel to what :meth:`checkpoint` returned."""
        self.value = saved


class LastValue(BaseChannel):
    """Holds the last value written; two writes in one superstep are an error."""

    __slots__ = ()

    def update(self, values: Sequence[Any]) -> bool:
        """Store the single write of this superstep."""
        if not values:
            return False
        if len(values) != 1:
            code = ErrorCode.INVALID_CONCURRENT_GRAPH_UPDATE
            raise InvalidUpdateError(
                troubleshooting(
                    f"At key '{self.key}': Can receive only one value per step. "
                    "Use an Annotated key to handle multiple values.",
                    code,
                ),
                code=code,
            )
        self.value = values[-1]
        return True


class BinaryOperatorAggregate(BaseChannel):
    """Folds every write into the value with a reducer ``operator(current, write)``.

    The channel starts from ``typ()`` when the type can be built without arguments
    (``list`` gives ``[]``), so "values" chunks show ``'log': []`` before any write, as in
    LangGraph.
    """

    __slots__ = ("operator",)

    def __init__(self, key: str, typ: Any, operator: Callable[[Any, Any], Any]) -> None:
        """Create the channel with the reducer ``operator``."""
        super().__init__(key)
        self.operator = operator
        try:
            self.value = _default_of(typ)()
        except Exception:
            self.value = _MISSING

    def update(self, values: Sequence[Any]) -> bool:
        """Fold the writes, in order, into the value."""
        if not values:
            return False
        start = 0
        if self.value is _MISSING:
            self.value = values[0]
            start = 1
        for value in values[start:]:
            self.value = self.operator(self.value, value)
        return True


def strip_required(hint: Any) -> Any:
    """Return ``hint`` without a ``Required[...]``/``NotRequired[...]`` wrapper."""
    origin = typing.get_origin(hint)
    if getattr(origin, "_name", None) in ("Required", "NotRequired"):
        return typing.get_args(hint)[0]
    return hint


def _default_of(typ: Any) -> Any:
    # LangGraph's rule: strip generic arguments and wrappers, build abstract collections
    # (Sequence, Set, Mapping) from their concrete counterparts
    while hasattr(typ, "__origin__"):
        stripped = strip_required(typ)
        typ = stripped if stripped is not typ else typ.__origin__
    if typ in (collections.abc.Sequence, collections.abc.MutableSequence):
        return list
    if typ in (collections.abc.Set, collections.abc.MutableSet):
        return set
    if typ in (collections.abc.Mapping, collections.abc.MutableMapping):
        return dict
    return typ


class EphemeralValue(BaseChannel):
    """Holds a value for the one superstep after it was written (branch triggers, input)."""

    __slots__ = ()

    def update(self, values: Sequence[Any]) -> bool:
        """Keep this superstep's write; clear when a superstep passes without one."""
        if not values:
            if self.value is _MISSING:
                return False
            self.value = _MISSING
            return True
        self.value = values[-1]
        return True


class NamedBarrierValue(BaseChannel):
    """Available once every name in ``names`` has written: the join of ``add_edge([a, b], c)``."""

    __slots__ = ("names", "seen")

    def __init__(self, key: str, names: set[str]) -> None:
        """Create a barrier waiting for each of ``names``."""
        super().__init__(key)
        self.names = frozenset(names)
        self.seen: frozenset[str] = frozenset()

    def get(self) -> Any:
        """Return ``None`` once all names have written."""
        if self.seen != self.names:
            raise EmptyChannelError(self.key)
        return None

    def is_available(self) -> bool:
        """Return whether all names have written."""
        return self.seen == self.names

    def update(self, values: Sequence[Any]) -> bool:
        """Record which names wrote in this superstep."""
        before = self.seen
        self.seen = before | frozenset(v for v in values if v in self.names)
        return self.seen != before

    def checkpoint(self) -> Any:
        """Return the names seen so far."""
        return sorted(self.seen) if self.seen else _MISSING

    def restore(self, saved: Any) -> None:
        """Set the names seen so far."""
        self.seen = frozenset(saved) if saved is not _MISSING else frozenset()

    def consume(self) -> bool:
        """Reset the barrier after the joined node ran."""
        if self.seen == self.names:
            self.seen = frozenset()
            return True
        return False


class Topic(BaseChannel):
    """Collects the writes of one superstep as a list (the ``Send`` packets to run next)."""

    __slots__ = ()

    def update(self, values: Sequence[Any]) -> bool:
        """Replace the list with this superstep's writes."""
        had = self.value is not _MISSING and bool(self.value)
        self.value = list(values) if values else _MISSING
        return had or bool(values)
