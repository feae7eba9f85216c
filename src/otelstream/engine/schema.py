"""Reading a state schema (TypedDict, dataclass or pydantic model) into channels."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Sequence
from typing import Any, get_type_hints

from otelstream.engine.channels import BaseChannel, BinaryOperatorAggregate, LastValue, strip_required
from otelstream.errors import ErrorCode, InvalidGraphError

__all__ = [
    "SchemaField",
    "annotated_keys",
    "coerce_to_schema",
    "is_model_schema",
    "schema_fields",
    "updates_from_object",
]


@dataclasses.dataclass(frozen=True, slots=True)
class SchemaField:
    """One state key: its type and the reducer that combines writes, if any."""

    key: str
    typ: Any
    reducer: Callable[[Any, Any], Any] | None

    def make_channel(self) -> BaseChannel:
        """Build an empty channel for this key."""
        if self.reducer is None:
            return LastValue(self.key)
        return BinaryOperatorAggregate(self.key, self.typ, self.reducer)


def _is_pydantic_model(schema: Any) -> bool:
    return isinstance(schema, type) and hasattr(schema, "model_fields")


def is_model_schema(schema: Any) -> bool:
    """Return whether nodes receive ``schema`` instances rather than dicts."""
    return dataclasses.is_dataclass(schema) or _is_pydantic_model(schema)


def _check_reducer(key: str, reducer: Any) -> Callable[[Any, Any], Any]:
    try:
        signature = inspect.signature(reducer)
    except (TypeError, ValueError):
        # callables without a signature are accepted and fail when called
        return typing.cast(Callable[[Any, Any], Any], reducer)
    # LangGraph's rule: exactly two positional parameters, defaults or not
    positional = [p for p in signature.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) != 2:
        raise InvalidGraphError(
            f"Invalid reducer for state key '{key}': expected a function (a, b) -> c "
            f"taking two positional arguments, got {getattr(reducer, '__name__', reducer)!r}"
            f"{signature}",
            code=ErrorCode.INVALID_REDUCER,
        )
    return typing.cast(Callable[[Any, Any], Any], reducer)


def _field_from_hint(key: str, hint: Any) -> SchemaField:
    hint = strip_required(hint)
    if typing.get_origin(hint) is typing.Annotated:
        base, *extras = typing.get_args(hint)
        # only the last metadata item can be the reducer, as in LangGraph
        if extras and callable(extras[-1]):
            return SchemaField(key, base, _check_reducer(key, extras[-1]))
        return SchemaField(key, base, None)
    return SchemaField(key, hint, None)


def schema_fields(schema: Any) -> list[SchemaField]:
    """Return the state keys of ``schema``, in declaration order.

    Raises:
        InvalidGraphError: ``schema`` is not a TypedDict, dataclass or pydantic model, or a
            reducer has the wrong signature.
    """
    if not isinstance(schema, type):
        raise InvalidGraphError(
            f"Invalid state schema {schema!r}: expected a TypedDict, dataclass or pydantic model class",
            code=ErrorCode.INVALID_STATE_SCHEMA,
        )
    try:
        hints = get_type_hints(schema, include_extras=True)
    except Exception as exc:
        raise InvalidGraphError(
            f"Cannot read the annotations of state schema {schema.__name__}: {exc}",
            code=ErrorCode.INVALID_STATE_SCHEMA,
        ) from exc
    if _is_pydantic_model(schema):
        keys = list(getattr(schema, "model_fields"))  # noqa: B009 - mypy does not know pydantic here
    elif dataclasses.is_dataclass(schema):
        keys = [f.name for f in dataclasses.fields(schema)]
    elif typing.is_typeddict(schema) or issubclass(schema, dict):
        keys = list(hints)
    else:
        raise InvalidGraphError(
            f"Invalid state schema {schema.__name__}: expected a TypedDict, dataclass or pydantic model class",
            code=ErrorCode.INVALID_STATE_SCHEMA,
        )
    if not keys:
        raise InvalidGraphError(
            f"State schema {schema.__name__} declares no keys",
            code=ErrorCode.INVALID_STATE_SCHEMA,
        )
    return [_field_from_hint(key, hints.get(key, Any)) for key in keys]


def coerce_to_schema(schema: Any, values: dict[str, Any]) -> Any:
    """Build what a node receives: a dict for TypedDict state, else a schema instance."""
    if _is_pydantic_model(schema):
        return schema.model_validate(values)
    if dataclasses.is_dataclass(schema) and isinstance(schema, type):
        return schema(**values)
    return values


def annotated_keys(cls: type[Any]) -> tuple[str, ...]:
    """Return every annotated name of ``cls`` and its bases, base classes first.

    LangGraph treats any object whose class has annotations as a state update (a dataclass,
    a pydantic model, a plain annotated class); this is its test.
    """
    keys: list[str] = []
    for base in reversed(cls.__mro__):
        annotations = base.__dict__.get("__annotations__")
        if isinstance(annotations, dict):
            keys.extend(annotations)
    return tuple(keys)


_MISSING: Any = object()


def updates_from_object(value: Any, keys: Sequence[str]) -> list[tuple[str, Any]] | None:
    """Return the writes an annotated object (dataclass, pydantic model...) makes to ``keys``.

    As in LangGraph, every attribute named in ``keys`` is written, except a pydantic field
    that is None, defaults to None and was not set explicitly. Returns None when ``value``'s
    class has no annotations at all (it is not a state update).
    """
    cls = type(value)
    if not annotated_keys(cls):
        return None
    fields = getattr(cls, "model_fields", None)
    if isinstance(fields, dict) and hasattr(value, "model_fields_set"):
        keep: set[str] | None = set(value.model_fields_set)
        defaults = {k: getattr(f, "default", None) for k, f in fields.items()}
    else:
        keep, defaults = None, {}
    return [
        (k, v)
        for k in keys
        if (v := getattr(value, k, _MISSING)) is not _MISSING
        and (v is not None or defaults.get(k, _MISSING) is not None or (keep is not None and k in keep))
    ]
