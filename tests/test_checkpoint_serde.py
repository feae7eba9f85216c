"""Checkpoints are stored as typed JSON: exact round trips of state, and nothing in a file runs code."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import operator
import pathlib
import pickle
import sqlite3
import uuid
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from pydantic import BaseModel

import otelstream
from otelstream import START, Command, Interrupt, Send, SqliteSaver, StateGraph
from otelstream.checkpoint import CheckpointedError, JsonSerializer, PickleSerializer, register_type
from otelstream.errors import CheckpointError


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Order:
    id: str
    amount: decimal.Decimal
    colour: Colour


class Profile(BaseModel):
    name: str
    tags: list[str] = []


class Unlisted:
    def __init__(self, x: int) -> None:
        self.x = x


register_type(Order, Colour, Profile)


def _round_trip(value: Any) -> Any:
    serde = JsonSerializer()
    return serde.loads(serde.dumps(value))


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**70),
        1.5,
        float("inf"),
        "text \u00e9",
        b"\x00\xffbytes",
        [1, [2, (3, 4)]],
        (1, "a"),
        {1, 2},
        frozenset({"a"}),
        {"a": 1, "nested": {"b": [1, 2]}},
        {1: "int key", (1, 2): "tuple key"},
        {"__otelstream__": "looks like a tag"},
        datetime.datetime(2026, 12, 3, 6, 0, tzinfo=datetime.timezone.utc),
        datetime.date(2026, 12, 3),
        datetime.time(6, 30),
        datetime.timedelta(days=1, seconds=5, microseconds=7),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        decimal.Decimal("12.50"),
        pathlib.Path("/tmp/x"),
        Colour.BLUE,
        Order("A-1", decimal.Decimal("39.90"), Colour.RED),
        Profile(name="ada", tags=["x"]),
        Send("node", {"topic": "x"}),
        Command(update={"a": 1}, goto="b"),
        Interrupt(value={"question": "ok?"}, id="abc"),
    ],
)
def test_state_values_round_trip_exactly(value: Any) -> None:
    restored = _round_trip(value)
    assert restored == value
    assert type(restored) is type(value)


def test_langchain_messages_round_trip_with_their_ids_and_tool_calls() -> None:
    messages = [
        HumanMessage("hi", id="1"),
        AIMessage("", id="2", tool_calls=[{"name": "search", "args": {"q": "x"}, "id": "call-1"}]),
        ToolMessage("result", tool_call_id="call-1", id="3"),
    ]
    restored = _round_trip(messages)
    assert restored == messages
    assert [type(m) for m in restored] == [HumanMessage, AIMessage, ToolMessage]


def test_a_failed_tasks_exception_comes_back_as_a_stand_in_with_its_repr() -> None:
    restored = _round_trip(ValueError("boom"))
    assert isinstance(restored, CheckpointedError)
    assert repr(restored) == "ValueError('boom')" and restored.type_name == "ValueError"


def test_a_type_that_is_not_allow_listed_is_refused_when_saved_by_name() -> None:
    with pytest.raises(CheckpointError, match=r"test_checkpoint_serde\.Unlisted.*register_type"):
        JsonSerializer().dumps({"x": Unlisted(1)})


@pytest.mark.parametrize(
    "blob",
    [
        b'{"__otelstream__":"object","v":{"cls":"builtins:SystemExit","fields":{}}}',
        b'{"__otelstream__":"object","v":{"cls":"subprocess:Popen","fields":{"args":"touch /tmp/x"}}}',
        b'{"__otelstream__":"enum","v":{"cls":"signal:Signals","value":9}}',
        b'{"__otelstream__":"nope","v":1}',
        b'{"__otelstream__":"object","v":{"cls":"tests.test_checkpoint_serde:Order","fields":7}}',
        b'{"a": [1, 2',
        pickle.dumps({"a": 1}),
    ],
)
def test_forged_or_damaged_blobs_raise_checkpoint_error_and_rebuild_nothing(blob: bytes) -> None:
    with pytest.raises(CheckpointError):
        JsonSerializer().loads(blob)


class State(TypedDict):
    log: Annotated[list[str], operator.add]


def _graph(saver: Any) -> Any:
    builder = StateGraph(State)
    builder.add_node("first", lambda s: {"log": ["first"]})
    builder.add_node("second", lambda s: {"log": ["second"]})
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    return builder.compile(checkpointer=saver, interrupt_before=["second"])


def test_a_pickle_planted_in_the_database_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    db = tmp_path / "threads.db"
    thread = {"configurable": {"thread_id": "t"}}
    with SqliteSaver(db) as saver:
        list(_graph(saver).stream({"log": []}, thread))

    class Exploit:
        def __reduce__(self) -> Any:
            return (pathlib.Path.touch, (marker,))

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE otelstream_checkpoints SET checkpoint = ?", (pickle.dumps(Exploit()),))
    with SqliteSaver(db) as saver:
        with pytest.raises(CheckpointError, match=r"thread 't', checkpoint '.*'.*PickleSerializer"):
            _graph(saver).get_state(thread)
        with pytest.raises(CheckpointError):
            list(_graph(saver).stream(None, thread))
    assert not marker.exists()


def test_a_tampered_blob_names_the_thread_and_checkpoint(tmp_path: Path) -> None:
    db = tmp_path / "threads.db"
    thread = {"configurable": {"thread_id": "orders-7"}}
    with SqliteSaver(db) as saver:
        list(_graph(saver).stream({"log": []}, thread))
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE otelstream_checkpoints SET checkpoint = substr(checkpoint, 1, 20)")
    with SqliteSaver(db) as saver, pytest.raises(CheckpointError, match=r"thread 'orders-7', checkpoint '[0-9a-f-]+'"):
        _graph(saver).get_state(thread)


def test_a_store_written_with_pickle_migrates_and_resumes(tmp_path: Path) -> None:
    db = tmp_path / "threads.db"
    thread = {"configurable": {"thread_id": "t"}}
    with SqliteSaver(db, serde=PickleSerializer()) as saver:
        list(_graph(saver).stream({"log": []}, thread))
        assert _graph(saver).get_state(thread).next == ("second",)
    with SqliteSaver(db) as saver:
        with pytest.raises(CheckpointError, match="migrate_from_pickle"):
            _graph(saver).get_state(thread)
        assert saver.migrate_from_pickle() > 0
        assert saver.migrate_from_pickle() == 0  # already JSON: nothing left to rewrite
        assert _graph(saver).get_state(thread).values == {"log": ["first"]}
        assert list(_graph(saver).stream(None, thread, stream_mode="values"))[-1] == {"log": ["first", "second"]}


@dataclasses.dataclass
class Note:
    text: str


class NoteState(TypedDict):
    notes: Annotated[list[Note], operator.add]


def test_classes_named_by_the_state_schema_are_allow_listed_at_compile(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError):  # not registered by anyone yet
        JsonSerializer().dumps(Note("early"))
    builder = StateGraph(NoteState)
    builder.add_node("write", lambda s: {"notes": [Note("hello")]})
    builder.add_edge(START, "write")
    thread = {"configurable": {"thread_id": "n"}}
    with SqliteSaver(tmp_path / "notes.db") as saver:
        graph = builder.compile(checkpointer=saver)
        graph.invoke({"notes": []}, thread)
        assert graph.get_state(thread).values == {"notes": [Note("hello")]}


def test_the_default_saver_serializer_is_json() -> None:
    assert isinstance(otelstream.InMemorySaver().serde, JsonSerializer)
    assert isinstance(SqliteSaver(":memory:").serde, JsonSerializer)
