"""The payload codec: everything a chunk can hold decodes back to the same Python shape."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import math
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from otelstream import Send
from otelstream.checkpoint import register_type
from otelstream.telemetry.codec import DecodeError, ReplayedException, Unencodable, decode, encode


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: tuple[int, int]


class Doc(BaseModel):
    title: str
    tags: list[str] = []


# the application's own classes: replay rebuilds only registered (or schema-named) types
register_type(Color, Point, Doc)


@dataclasses.dataclass
class Unregistered:
    command: str

    def __post_init__(self) -> None:
        raise AssertionError("a class nobody registered must never be constructed by decode()")


class Opaque:
    def __repr__(self) -> str:
        return "<Opaque>"


leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
    st.binary(max_size=20),
)
values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=5), children, max_size=4),
        st.dictionaries(st.integers(), children, max_size=3),
        st.frozensets(st.integers(), max_size=3),
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_any_json_like_value_round_trips(value: Any) -> None:
    assert decode(encode(value)) == value


@given(st.text())
def test_hostile_strings_round_trip_as_ascii_json(text: str) -> None:
    encoded = encode({"s": text})
    assert encoded.isascii()
    assert decode(encoded) == {"s": text}


def test_plain_json_stays_plain() -> None:
    assert encode({"x": 1, "log": ["a"], "ok": True, "none": None}) == ('{"x":1,"log":["a"],"ok":true,"none":null}')


@pytest.mark.parametrize(
    "value",
    [
        ("a", ("b",)),
        {1: "one", (2, 3): "pair"},
        {"$t": "not a tag"},
        {1, 2},
        b"\x00\xff",
        datetime.datetime(2026, 11, 24, 10, 0, tzinfo=datetime.timezone.utc),
        datetime.date(2026, 11, 24),
        uuid.UUID(int=7),
        decimal.Decimal("1.10"),
        Color.RED,
        Point(1, (2, 3)),
        Doc(title="t", tags=["a"]),
        Send("node", {"i": 1}),
    ],
)
def test_tagged_values_round_trip(value: Any) -> None:
    decoded = decode(encode(value))
    assert decoded == value
    assert type(decoded) is type(value)


def test_non_finite_floats_round_trip() -> None:
    decoded = decode(encode([math.inf, -math.inf, math.nan]))
    assert decoded[:2] == [math.inf, -math.inf] and math.isnan(decoded[2])


def test_exceptions_keep_type_args_and_notes() -> None:
    error = ValueError("boom!", 3)
    error.add_note("During task with name 'boom' and id 'x'")
    decoded = decode(encode(error))
    assert type(decoded) is ValueError
    assert decoded.args == ("boom!", 3)
    assert decoded.__notes__ == ["During task with name 'boom' and id 'x'"]


def test_an_exception_whose_class_is_not_loaded_decodes_to_a_stand_in() -> None:
    payload = json.dumps({"$t": "exc", "type": "not_loaded.module:CustomError", "args": ["x"]})
    decoded = decode(payload)
    assert isinstance(decoded, ReplayedException)
    assert decoded.type_name == "not_loaded.module.CustomError" and decoded.args == ("x",)


def test_a_model_whose_class_is_not_loaded_decodes_to_its_fields() -> None:
    payload = json.dumps({"$t": "model", "type": "nowhere:Model", "v": {"a": 1}})
    assert decode(payload) == {"a": 1}


def test_unencodable_objects_cycles_and_deep_nesting_become_markers() -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    deep: Any = []
    for _ in range(200):
        deep = [deep]
    assert decode(encode(Opaque())) == Unencodable(f"{__name__}.Opaque", "<Opaque>")
    assert decode(encode(cyclic)) == [Unencodable("builtins.list", "<recursive reference>")]
    nested = decode(encode(deep))
    for _ in range(101):
        nested = nested[0]
    assert nested == Unencodable("builtins.list", "<nested deeper than 100 levels>")


def test_a_hostile_repr_cannot_break_encoding() -> None:
    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert decode(encode(Hostile())) == Unencodable(
        f"{__name__}.test_a_hostile_repr_cannot_break_encoding.<locals>.Hostile", "<unrepresentable>"
    )


def test_decoding_never_imports_modules() -> None:
    payload = json.dumps({"$t": "dataclass", "type": "antigravity:Thing", "v": {"a": 1}})
    assert decode(payload) == {"a": 1}
    import sys

    assert "antigravity" not in sys.modules


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("{not json", "payload is not valid JSON"),
        ('{"$t": "tuple"}', "malformed 'tuple' value"),
        ('{"$t": "nope"}', "unknown type tag 'nope'"),
        ('{"$t": "bytes", "v": "***"}', "malformed 'bytes' value"),
        ('{"$t": "dict", "v": [[{"a": 1}, 2]]}', "unhashable dict key"),
        ("[" * 5000 + "]" * 5000, "maximum recursion depth"),
        ("[" * 500 + "]" * 500, "nests deeper than 400 levels"),
    ],
)
def test_malformed_payloads_raise_a_clear_decode_error(payload: str, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode(payload)


def test_pydantic_models_leave_default_fields_out_and_decode_equal() -> None:
    from langchain_core.messages import AIMessage, AIMessageChunk

    chunk = AIMessageChunk(content="tok", id="lc_run--1")
    assert json.loads(encode(chunk))["v"] == {"content": "tok", "id": "lc_run--1"}
    last = AIMessageChunk(
        content="",
        id="lc_run--1",
        chunk_position="last",
        response_metadata={"finish_reason": "stop"},
        usage_metadata={"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
    )
    called = AIMessage(content="", tool_calls=[{"name": "search", "args": {"q": "x"}, "id": "call_1"}])
    for message in (chunk, last, called):
        decoded = decode(encode(message))
        assert decoded == message and type(decoded) is type(message)


def test_only_allow_listed_classes_are_rebuilt() -> None:
    # a forged payload naming a loaded class gets its fields back, never an instance
    forged = json.dumps({"$t": "dataclass", "type": f"{__name__}:Unregistered", "v": {"command": "rm"}})
    assert decode(forged) == {"command": "rm"}
    enum_forgery = json.dumps({"$t": "enum", "type": "signal:Signals", "v": 9})
    assert decode(enum_forgery) == 9


@pytest.mark.parametrize("name", ["builtins:SystemExit", "builtins:KeyboardInterrupt", "os:error", "x.y:Nope"])
def test_exceptions_that_are_not_plain_builtin_errors_come_back_as_replayed_exceptions(name: str) -> None:
    error = decode(json.dumps({"$t": "exc", "type": name, "args": ["boom"]}))
    assert type(error) is ReplayedException
    assert error.args == ("boom",)


def test_builtin_errors_are_rebuilt() -> None:
    error = decode(json.dumps({"$t": "exc", "type": "builtins:ValueError", "args": ["bad"]}))
    assert type(error) is ValueError and error.args == ("bad",)
