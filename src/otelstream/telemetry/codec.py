"""The payload encoding: JSON that decodes back to the same Python shape.

Plain JSON values stay plain (``{"x": 1, "log": ["a"]}``), so payloads read naturally in
Jaeger, Tempo or Loki. Anything JSON cannot tell apart is wrapped in a tagged object
``{"$t": <tag>, ...}``:

============  =================================================  ===========================
tag           written for                                        decodes to
============  =================================================  ===========================
``tuple``     tuples (namespaces, triggers, interrupt tuples)    tuple
``set``       set / frozenset                                    set / frozenset (``"frozen"``)
``dict``      dicts with non-string keys, or a ``"$t"`` key      dict
``bytes``     bytes (base64)                                     bytes
``float``     NaN and infinities                                 float
``datetime``  datetime / date / time / UUID / Decimal            the same type
``exc``       exceptions (type, args, notes)                     the exception class if loaded
``model``     pydantic models (LangChain messages included)      the model if its class is loaded
``dataclass`` dataclass instances                                the dataclass if loaded
``enum``      Enum members                                       the member if its class is loaded
``send``      ``Send`` packets                                   ``Send``
``repr``      anything else, cycles, nesting deeper than 100     :class:`Unencodable`
============  =================================================  ===========================

Decoding never imports a module: a class is looked up among modules the process has
already loaded, and falls back to plain data (a dict of fields) otherwise, so an
untrusted file cannot make ``replay`` run code.
"""

from __future__ import annotations

import base64
import builtins
import dataclasses
import datetime
import decimal
import enum
import json
import math
import typing
import uuid
from typing import Any

from otelstream.checkpoint.serde import allowed_type
from otelstream.engine.types import Send
from otelstream.telemetry.redact import MARKER, Redactor

__all__ = ["MAX_DEPTH", "DecodeError", "ReplayedException", "Unencodable", "decode", "encode", "encode_tuple"]

MAX_DEPTH = 100
_TAG = "$t"


class DecodeError(ValueError):
    """A payload is not valid otelstream JSON; the message says where."""


@dataclasses.dataclass(frozen=True, slots=True)
class Unencodable:
    """Stands for a value JSON could not carry: its type name and ``repr``."""

    type: str
    repr: str


class ReplayedException(Exception):
    """An exception decoded in a process where its class is not loaded."""

    def __init__(self, type_name: str, *args: Any) -> None:
        """Keep the original type's name and arguments."""
        super().__init__(*args)
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"{self.type_name}{self.args!r}"


def _qualname(obj: type) -> str:
    return f"{obj.__module__}:{obj.__qualname__}"


def _lookup(path: Any) -> Any:
    # only allow-listed classes are rebuilt (the state schemas' classes, LangChain's messages,
    # otelstream's own, what the application registers): never whatever class is loaded
    if not isinstance(path, str) or ":" not in path:
        return None
    return allowed_type(path)


def _exception_class(path: str) -> type[BaseException] | None:
    # built-in exceptions are rebuilt (their constructors run no application code); any other
    # exception, and the BaseExceptions that control a process (SystemExit, KeyboardInterrupt,
    # GeneratorExit), come back as ReplayedException
    module_name, _, qualname = path.partition(":")
    if module_name == "builtins":
        cls = getattr(builtins, qualname, None)
        if isinstance(cls, type) and issubclass(cls, Exception):
            return cls
        return None
    cls = allowed_type(path)
    return cls if isinstance(cls, type) and issubclass(cls, Exception) else None


_NO_DEFAULT: Any = object()
_SIMPLE_DEFAULTS = (type(None), str, int, bool, float, dict, list, tuple)
_MODEL_DEFAULTS: dict[type, list[tuple[str, Any]]] = {}


def _model_defaults(cls: type) -> list[tuple[str, Any]]:
    """Return a pydantic model's fields with their simple default values (or ``_NO_DEFAULT``)."""
    cached = _MODEL_DEFAULTS.get(cls)
    if cached is not None:
        return cached
    out = []
    for name, field in getattr(cls, "model_fields", {}).items():
        default = _NO_DEFAULT
        try:
            if not field.is_required():
                factory = field.default_factory
                if factory is None:
                    default = field.default
                elif not getattr(field, "default_factory_takes_data", False):
                    default = factory()
        except Exception:
            default = _NO_DEFAULT
        # only defaults that compare cheaply and reliably; empty containers included
        if type(default) not in _SIMPLE_DEFAULTS or (isinstance(default, (dict, list, tuple)) and default):
            default = _NO_DEFAULT
        out.append((name, default))
    if len(_MODEL_DEFAULTS) < 1024:
        _MODEL_DEFAULTS[cls] = out
    return out


class _Encoder:
    __slots__ = ("redactor", "stack")

    def __init__(self, redactor: Redactor | None = None) -> None:
        self.stack: set[int] = set()
        self.redactor = redactor

    def value(self, obj: Any, depth: int) -> Any:
        kind = type(obj)
        if kind is str:
            return obj if self.redactor is None else self.redactor.scrub(obj)
        if kind is int or kind is bool or obj is None:
            return obj
        if kind is float:
            return obj if math.isfinite(obj) else {_TAG: "float", "v": repr(obj)}
        if depth > MAX_DEPTH:
            return self.unencodable(obj, f"nested deeper than {MAX_DEPTH} levels")
        if kind in (dict, list, tuple, set, frozenset) or isinstance(obj, (dict, list, tuple)):
            key = id(obj)
            if key in self.stack:
                return self.unencodable(obj, "recursive reference")
            self.stack.add(key)
            try:
                return self.container(obj, depth + 1)
            finally:
                self.stack.discard(key)
        return self.other(obj, depth + 1)

    def container(self, obj: Any, depth: int) -> Any:
        if isinstance(obj, dict):
            redactor = self.redactor
            if all(type(k) is str for k in obj) and _TAG not in obj:
                if redactor is None:
                    return {k: self.value(v, depth) for k, v in obj.items()}
                return {k: MARKER if redactor.secret_key(k) else self.value(v, depth) for k, v in obj.items()}
            return {
                _TAG: "dict",
                "v": [
                    [
                        self.value(k, depth),
                        MARKER
                        if redactor is not None and isinstance(k, str) and redactor.secret_key(k)
                        else self.value(v, depth),
                    ]
                    for k, v in obj.items()
                ],
            }
        if isinstance(obj, list):
            return [self.value(v, depth) for v in obj]
        if isinstance(obj, tuple):
            return {_TAG: "tuple", "v": [self.value(v, depth) for v in obj]}
        frozen = isinstance(obj, frozenset)
        items = [self.value(v, depth) for v in obj]
        return {_TAG: "set", "v": items, "frozen": frozen} if frozen else {_TAG: "set", "v": items}

    def other(self, obj: Any, depth: int) -> Any:
        if isinstance(obj, enum.Enum):
            return {_TAG: "enum", "type": _qualname(type(obj)), "v": self.value(obj.value, depth)}
        if isinstance(obj, (int, float, str)):  # subclasses of builtins
            return self.value(type(obj).__mro__[-2](obj), depth)
        if isinstance(obj, (bytes, bytearray)):
            return {_TAG: "bytes", "v": base64.b64encode(bytes(obj)).decode("ascii")}
        if isinstance(obj, BaseException):
            out: dict[str, Any] = {
                _TAG: "exc",
                "type": _qualname(type(obj)),
                "args": [self.value(a, depth) for a in obj.args],
            }
            notes = getattr(obj, "__notes__", None)
            if notes:
                out["notes"] = [self.value(str(n), depth) for n in notes]
            return out
        if isinstance(obj, Send):
            return {_TAG: "send", "node": obj.node, "arg": self.value(obj.arg, depth)}
        if isinstance(obj, (datetime.datetime, datetime.date, datetime.time)):
            return {_TAG: "datetime", "type": type(obj).__name__, "v": obj.isoformat()}
        if isinstance(obj, uuid.UUID):
            return {_TAG: "datetime", "type": "UUID", "v": str(obj)}
        if isinstance(obj, decimal.Decimal):
            return {_TAG: "datetime", "type": "Decimal", "v": str(obj)}
        if hasattr(type(obj), "model_fields") and hasattr(obj, "model_dump"):
            # fields still at their default are left out: decoding validates the model,
            # which restores them (a streamed LLM token chunk has a dozen such fields)
            fields = {}
            for name, default in _model_defaults(type(obj)):
                value = getattr(obj, name)
                if default is _NO_DEFAULT or type(value) is not type(default) or value != default:
                    fields[name] = value
            return {_TAG: "model", "type": _qualname(type(obj)), "v": self.value(fields, depth)}
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
            return {_TAG: "dataclass", "type": _qualname(type(obj)), "v": self.value(fields, depth)}
        if isinstance(obj, (set, frozenset)):
            return self.container(obj, depth)
        return self.unencodable(obj, None)

    def unencodable(self, obj: Any, why: str | None) -> dict[str, Any]:
        try:
            text = repr(obj)[:1000] if why is None else f"<{why}>"
        except Exception:
            text = "<unrepresentable>"
        if self.redactor is not None:
            text = self.redactor.scrub(text)
        return {_TAG: "repr", "type": f"{type(obj).__module__}.{type(obj).__qualname__}", "v": text}


def encode(obj: Any, redactor: Redactor | None = None) -> str:
    """Encode ``obj`` as ASCII JSON with type tags; never raises for any input.

    Args:
        obj: The payload.
        redactor: Replaces credentials (by key name and by shape) with ``[REDACTED]``.
    """
    encoder = _Encoder(redactor)
    try:
        return json.dumps(encoder.value(obj, 0), separators=(",", ":"))
    except Exception as exc:  # a hostile __eq__/__hash__/__repr__ cannot break telemetry
        return json.dumps(encoder.unencodable(obj, f"encoding failed: {type(exc).__name__}"))


def encode_tuple(encoded: list[str]) -> str:
    """Return the encoding of a tuple whose items are already encoded (by :func:`encode`).

    Lets a caller encode a part shared by many payloads once: an LLM call's metadata is the
    same for each of its tokens.
    """
    return '{"' + _TAG + '":"tuple","v":[' + ",".join(encoded) + "]}"


def decode(text: str | bytes) -> Any:
    """Decode a payload written by :func:`encode`.

    Raises:
        DecodeError: ``text`` is not JSON, nests too deep, or holds a malformed tag.
    """
    try:
        raw = json.loads(text)
    except (ValueError, TypeError, RecursionError) as exc:
        raise DecodeError(f"payload is not valid JSON: {exc}") from None
    try:
        return _decode(raw, 0)
    except RecursionError:
        raise DecodeError("payload nests too deep") from None


def _decode(raw: Any, depth: int) -> Any:
    if depth > MAX_DEPTH * 4:
        raise DecodeError(f"payload nests deeper than {MAX_DEPTH * 4} levels")
    if isinstance(raw, list):
        return [_decode(v, depth + 1) for v in raw]
    if not isinstance(raw, dict):
        return raw
    tag = raw.get(_TAG)
    if tag is None:
        return {k: _decode(v, depth + 1) for k, v in raw.items()}
    try:
        return _decode_tagged(tag, raw, depth + 1)
    except DecodeError:
        raise
    except Exception as exc:
        raise DecodeError(f"malformed {tag!r} value: {type(exc).__name__}: {exc}") from None


def _decode_tagged(tag: Any, raw: dict[str, Any], depth: int) -> Any:
    if tag == "tuple":
        return tuple(_decode(v, depth) for v in raw["v"])
    if tag == "set":
        items = [_decode(v, depth) for v in raw["v"]]
        return frozenset(items) if raw.get("frozen") else set(items)
    if tag == "dict":
        return {_hashable(_decode(k, depth)): _decode(v, depth) for k, v in raw["v"]}
    if tag == "bytes":
        return base64.b64decode(raw["v"], validate=True)
    if tag == "float":
        return float(raw["v"])
    if tag == "datetime":
        return _decode_scalar(raw["type"], raw["v"])
    if tag == "send":
        return Send(str(raw["node"]), _decode(raw["arg"], depth))
    if tag == "repr":
        return Unencodable(str(raw["type"]), str(raw["v"]))
    if tag == "exc":
        return _decode_exception(raw, depth)
    if tag in ("model", "dataclass"):
        fields = _decode(raw["v"], depth)
        cls = _lookup(raw["type"])
        if cls is None or not isinstance(fields, dict):
            return fields
        if tag == "model" and hasattr(cls, "model_validate"):
            return cls.model_validate(fields)
        if tag == "dataclass" and dataclasses.is_dataclass(cls):
            return typing.cast(Any, cls)(**fields)
        return fields
    if tag == "enum":
        value = _decode(raw["v"], depth)
        cls = _lookup(raw["type"])
        return cls(value) if cls is not None and issubclass(cls, enum.Enum) else value
    raise DecodeError(f"unknown type tag {tag!r}")


def _hashable(key: Any) -> Any:
    if isinstance(key, list):
        return tuple(_hashable(k) for k in key)
    if isinstance(key, (dict, set)):
        raise DecodeError(f"unhashable dict key {key!r}")
    return key


def _decode_scalar(kind: Any, value: Any) -> Any:
    if kind == "datetime":
        return datetime.datetime.fromisoformat(value)
    if kind == "date":
        return datetime.date.fromisoformat(value)
    if kind == "time":
        return datetime.time.fromisoformat(value)
    if kind == "UUID":
        return uuid.UUID(value)
    if kind == "Decimal":
        return decimal.Decimal(value)
    raise DecodeError(f"unknown scalar type {kind!r}")


def _decode_exception(raw: dict[str, Any], depth: int) -> BaseException:
    args = tuple(_decode(a, depth) for a in raw.get("args", ()))
    type_name = str(raw["type"])
    cls = _exception_class(type_name)
    error: BaseException
    if cls is not None:
        try:
            error = cls(*args)
        except Exception:
            error = cls.__new__(cls)
            error.args = args
    else:
        error = ReplayedException(type_name.replace(":", "."), *args)
    for note in raw.get("notes", ()):
        error.add_note(str(note))
    return error
