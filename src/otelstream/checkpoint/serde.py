"""How checkpoints are turned into bytes, and back.

Checkpointed state holds whatever nodes return: dicts, dataclasses, pydantic models,
LangChain messages, ``Send`` packets, interrupts, the exceptions of failed tasks.

:class:`JsonSerializer`, the default, stores them as typed JSON and rebuilds only types on an
allow-list: primitives, containers, bytes, datetimes, UUIDs, decimals, paths, otelstream's
own types, LangChain messages, the classes a compiled graph's state schemas name (registered
by ``StateGraph.compile``), and what the application registers with :func:`register_type`.
Loading never runs code a checkpoint names: a database file handed over by someone else can
at worst fail to load, with a :class:`~otelstream.errors.CheckpointError`.

:class:`PickleSerializer` round-trips anything picklable, but loading a pickle runs code
named in it, so a store read with it must be trusted like the application's own code. It
is an explicit opt-in (``SqliteSaver(path, serde=PickleSerializer())``), and it reads the
checkpoints otelstream 0.1 wrote by default.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import decimal
import enum
import json
import pathlib
import pickle
import sys
import typing
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from otelstream.errors import CheckpointError

__all__ = [
    "CheckpointedError",
    "JsonSerializer",
    "PickleSerializer",
    "Serializer",
    "allowed_type",
    "register_type",
    "schema_types",
]

_PICKLE_PROTOCOL_MARK = b"\x80"
_TAG = "__otelstream__"


class Serializer(Protocol):
    """Turns checkpointed values into bytes and back."""

    def dumps(self, value: Any) -> bytes:
        """Return ``value`` as bytes."""
        ...

    def loads(self, data: bytes) -> Any:
        """Return the value ``data`` holds."""
        ...


class CheckpointedError(Exception):
    """A failed task's exception as a checkpoint keeps it: its type's name and its ``repr``.

    Exceptions are not rebuilt from a checkpoint (their constructors are code); ``repr()``
    of this stand-in is the original's, which is what ``get_state()`` reports.
    """

    def __init__(self, type_name: str, text: str) -> None:
        """Stand in for an exception of type ``type_name`` whose ``repr`` was ``text``."""
        super().__init__(text)
        self.type_name = type_name
        self.text = text

    def __repr__(self) -> str:
        return self.text


# qualified name -> class: the classes JsonSerializer rebuilds besides the built-in kinds
_REGISTERED: dict[str, type] = {}
# module prefixes whose classes are rebuilt when they are pydantic models (the message types)
_TRUSTED_MODULES = ("langchain_core.messages.",)
# LangGraph's own value types (Interrupt, Send, Command), for the streams of instrumented
# LangGraph: rebuilt when that module is loaded already (nothing is imported for it)
_TRUSTED_VALUE_MODULES = frozenset(("langgraph.types",))


def _qualified(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def register_type(*classes: type) -> None:
    """Let :class:`JsonSerializer` rebuild instances of ``classes`` from checkpoints.

    Dataclasses, pydantic models, enums and plain classes (their ``__dict__`` or
    ``__slots__``) can be registered. Rebuilding sets the saved fields without calling the
    constructor, as ``pickle`` does.
    """
    for cls in classes:
        _REGISTERED[_qualified(cls)] = cls


def schema_types(schema: Any) -> set[type]:
    """Return the classes a state schema's annotations name (dataclasses, pydantic models, enums)."""
    found: set[type] = set()
    _collect(schema, found, set())
    return found


def _collect(annotation: Any, found: set[type], seen: set[int]) -> None:
    if id(annotation) in seen:
        return
    seen.add(id(annotation))
    for arg in typing.get_args(annotation):
        _collect(arg, found, seen)
    origin = typing.get_origin(annotation)
    if origin is not None or not isinstance(annotation, type):
        return
    is_model = hasattr(annotation, "model_fields") and hasattr(annotation, "model_construct")
    if dataclasses.is_dataclass(annotation) or is_model or issubclass(annotation, enum.Enum):
        found.add(annotation)
    if dataclasses.is_dataclass(annotation) or is_model or typing.is_typeddict(annotation):
        try:
            hints = typing.get_type_hints(annotation, include_extras=True)
        except Exception:  # an unresolvable forward reference: what resolved is enough
            hints = {}
        for hint in hints.values():
            _collect(hint, found, seen)


def allowed_type(name: str) -> type | None:
    """Return the class ``module:qualname`` names if it is allow-listed (see the module docstring), else None."""
    cls = _REGISTERED.get(name)
    if cls is not None:
        return cls
    module, _, qualname = name.partition(":")
    value_type = module in _TRUSTED_VALUE_MODULES
    if not value_type and not module.startswith(_TRUSTED_MODULES):
        return None
    # a message class of LangChain's (imported already: the state held one when it was saved)
    owner = sys.modules.get(module)
    cls = getattr(owner, qualname, None) if owner is not None and "." not in qualname else None
    if isinstance(cls, type) and (value_type or hasattr(cls, "model_construct")):
        return cls
    return None


class JsonSerializer:
    """Stores values as typed JSON; rebuilds only allow-listed types (see the module docstring)."""

    def dumps(self, value: Any) -> bytes:
        """Return ``value`` as typed JSON bytes.

        Raises:
            CheckpointError: the value holds a type that cannot be checkpointed safely (named,
                with how to register it).
        """
        return json.dumps(_encode(value), ensure_ascii=False, separators=(",", ":")).encode()

    def loads(self, data: bytes) -> Any:
        """Return the value ``data`` holds.

        Raises:
            CheckpointError: the bytes are not a checkpoint this serializer wrote (truncated,
                tampered, written with pickle), or name a type that is not allow-listed.
        """
        if data[:1] == _PICKLE_PROTOCOL_MARK:
            raise CheckpointError(
                "This checkpoint was written with pickle (otelstream 0.1's default). Pickle runs code on "
                "load: if you trust the store, open it with serde=PickleSerializer(), or rewrite it as "
                "JSON with SqliteSaver(path).migrate_from_pickle()."
            )
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"Cannot read a checkpointed value: not JSON ({exc})") from exc
        return _decode(raw)


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int) and not isinstance(value, enum.Enum):
        return value if type(value) is int else _tagged("int", int(value))
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return _tagged("float", repr(value))
        return value
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        if all(type(k) is str for k in value) and _TAG not in value:
            return {k: _encode(v) for k, v in value.items()}
        return _tagged("dict", [[_encode(k), _encode(v)] for k, v in value.items()])
    if isinstance(value, tuple):
        if hasattr(value, "_fields"):  # a NamedTuple: rebuilt from its items, if allow-listed
            _requireallowed_type(type(value))
            return _tagged("namedtuple", {"cls": _qualified(type(value)), "items": [_encode(v) for v in value]})
        return _tagged("tuple", [_encode(v) for v in value])
    if isinstance(value, (set, frozenset)):
        return _tagged(type(value).__name__, [_encode(v) for v in value])
    if isinstance(value, bytes):
        return _tagged("bytes", base64.b64encode(value).decode())
    simple = _encode_simple(value)
    if simple is not None:
        return simple
    if isinstance(value, BaseException):
        return _tagged("error", {"type": type(value).__qualname__, "repr": repr(value)})
    return _encode_object(value)


def _encode_simple(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return _tagged("datetime", value.isoformat())
    if isinstance(value, datetime.date):
        return _tagged("date", value.isoformat())
    if isinstance(value, datetime.time):
        return _tagged("time", value.isoformat())
    if isinstance(value, datetime.timedelta):
        return _tagged("timedelta", [value.days, value.seconds, value.microseconds])
    if isinstance(value, uuid.UUID):
        return _tagged("uuid", str(value))
    if isinstance(value, decimal.Decimal):
        return _tagged("decimal", str(value))
    if isinstance(value, pathlib.Path):
        return _tagged("path", str(value))
    return None


def _requireallowed_type(cls: type) -> str:
    name = _qualified(cls)
    if allowed_type(name) is None:
        raise CheckpointError(
            f"Cannot checkpoint a value of type {cls.__module__}.{cls.__qualname__}: it is not among the types "
            "JsonSerializer rebuilds. Name it in the graph's state schema, call "
            "otelstream.checkpoint.register_type() with it, or use serde=PickleSerializer() for a trusted store."
        )
    return name


def _encode_object(value: Any) -> Any:
    name = _requireallowed_type(type(value))
    if isinstance(value, enum.Enum):
        return _tagged("enum", {"cls": name, "value": _encode(value.value)})
    return _tagged("object", {"cls": name, "fields": {k: _encode(v) for k, v in _fields_of(value).items()}})


def _fields_of(value: Any) -> dict[str, Any]:
    if hasattr(value, "model_construct"):  # pydantic: the field values, extras included
        fields = dict(value.__dict__)
        extra = getattr(value, "__pydantic_extra__", None)
        if extra:
            fields.update(extra)
        return fields
    if dataclasses.is_dataclass(value):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if hasattr(value, f.name)}
    slots = [s for c in type(value).__mro__ for s in getattr(c, "__slots__", ())]
    fields = {s: getattr(value, s) for s in slots if hasattr(value, s)}
    fields.update(getattr(value, "__dict__", {}))
    return fields


def _tagged(kind: str, value: Any) -> dict[str, Any]:
    return {_TAG: kind, "v": value}


_SIMPLE: dict[str, Callable[[Any], Any]] = {
    "int": int,
    "float": float,
    "bytes": lambda v: base64.b64decode(v, validate=True),
    "datetime": datetime.datetime.fromisoformat,
    "date": datetime.date.fromisoformat,
    "time": datetime.time.fromisoformat,
    "timedelta": lambda v: datetime.timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
    "uuid": uuid.UUID,
    "decimal": decimal.Decimal,
    "path": pathlib.Path,
}


def _decode(raw: Any) -> Any:
    if isinstance(raw, list):
        return [_decode(v) for v in raw]
    if not isinstance(raw, dict):
        return raw
    kind = raw.get(_TAG)
    if kind is None:
        return {k: _decode(v) for k, v in raw.items()}
    value: Any = raw.get("v")
    try:
        if kind in _SIMPLE:
            return _SIMPLE[kind](value)
        if kind in ("tuple", "set", "frozenset"):
            items: Iterable[Any] = (_decode(v) for v in value)
            return tuple(items) if kind == "tuple" else set(items) if kind == "set" else frozenset(items)
        if kind == "dict":
            return {_decode(k): _decode(v) for k, v in value}
        if kind == "error":
            return CheckpointedError(str(value["type"]), str(value["repr"]))
        if kind == "namedtuple":
            return _rebuild_class(value["cls"])(*(_decode(v) for v in value["items"]))
        if kind == "enum":
            return _rebuild_class(value["cls"])(_decode(value["value"]))
        if kind == "object":
            return _rebuild_object(_rebuild_class(value["cls"]), value["fields"])
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"Cannot read a checkpointed {kind} value: {exc}") from exc
    raise CheckpointError(f"Cannot read a checkpointed value of unknown kind {kind!r}")


def _rebuild_class(name: Any) -> Any:
    cls = allowed_type(name) if isinstance(name, str) else None
    if cls is None:
        raise CheckpointError(
            f"The checkpoint holds a value of type {name!r}, which is not allow-listed: register it with "
            "otelstream.checkpoint.register_type() if the application defines it"
        )
    return cls


def _rebuild_object(cls: Any, fields: Any) -> Any:
    if not isinstance(fields, dict):
        raise CheckpointError(f"Cannot read a checkpointed {cls.__qualname__}: malformed fields")
    values = {str(k): _decode(v) for k, v in fields.items()}
    if hasattr(cls, "model_construct"):
        return cls.model_construct(**values)
    obj = cls.__new__(cls)
    for key, value in values.items():
        object.__setattr__(obj, key, value)
    return obj


class PickleSerializer:
    """Stores values with ``pickle`` (protocol 5): exact round trips, for stores trusted like code."""

    def dumps(self, value: Any) -> bytes:
        """Return ``value`` pickled.

        Raises:
            CheckpointError: the value cannot be pickled (names its type).
        """
        try:
            return pickle.dumps(value, protocol=5)
        except Exception as exc:
            raise CheckpointError(
                f"Cannot checkpoint a value of type {type(value).__name__}: {exc}. "
                "State kept by a checkpointer must be picklable."
            ) from exc

    def loads(self, data: bytes) -> Any:
        """Return the value pickled in ``data``.

        Raises:
            CheckpointError: the bytes are not a readable pickle (a damaged store).
        """
        try:
            # an explicit opt-in: the store is trusted like code (see the module docstring)
            return pickle.loads(data)
        except Exception as exc:
            raise CheckpointError(f"Cannot read a checkpointed value: {exc}") from exc
