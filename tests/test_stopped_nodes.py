"""A node still running when the consumer stops reading stops at its next stream write."""

from __future__ import annotations

import asyncio
import operator
import threading
from typing import Annotated, Any, TypedDict

import pytest

from otelstream import START, RunStopped, StateGraph, get_stream_writer, write_progress
from tests.conftest import Telemetry

WRITES = 100_000


class State(TypedDict):
    log: Annotated[list[str], operator.add]


def _chatty(seen: dict[str, Any], *, progress: bool = False) -> Any:
    def chatty(state: State) -> dict[str, Any]:
        writer = get_stream_writer()
        written = 0
        try:
            for i in range(WRITES):
                if progress:
                    write_progress(i, WRITES)
                else:
                    writer({"i": i})
                written += 1
        except RunStopped as exc:
            seen["stopped"] = exc.outcome
            raise
        finally:
            seen["written"] = written
            seen["ended"].set()
        return {"log": ["done"]}

    return chatty


def _graph(seen: dict[str, Any], *, progress: bool = False) -> Any:
    seen["ended"] = threading.Event()
    builder = StateGraph(State)
    builder.add_node("chatty", _chatty(seen, progress=progress))
    builder.add_edge(START, "chatty")
    return builder.compile(name="chatty")


def _node_outcomes(telemetry: Telemetry) -> dict[str, Any]:
    return {
        s.name: (s.attributes or {}).get("otelstream.outcome")
        for s in telemetry.spans.get_finished_spans()
        if s.name.startswith("invoke_")
    }


@pytest.mark.parametrize("progress", [False, True], ids=["custom write", "write_progress"])
def test_a_node_stops_at_its_next_write_once_the_consumer_breaks(telemetry: Telemetry, progress: bool) -> None:
    seen: dict[str, Any] = {}
    for _chunk in _graph(seen, progress=progress).stream({"log": []}, stream_mode="custom"):
        break
    # closing the stream waited for the node thread, which stopped instead of writing on
    assert seen["stopped"] == "abandoned"
    assert seen["written"] < WRITES // 10
    assert _node_outcomes(telemetry) == {"invoke_workflow chatty": "abandoned", "invoke_node chatty": "abandoned"}


def test_a_node_that_writes_nothing_streamed_still_stops(telemetry: Telemetry) -> None:
    # the consumer streams updates only: custom writes go nowhere, yet they stop the node
    seen: dict[str, Any] = {"ended": threading.Event()}
    builder = StateGraph(State)
    builder.add_node("first", lambda s: {"log": ["first"]})
    builder.add_node("second", lambda s: {"log": ["second"]})
    builder.add_node("chatty", _chatty(seen))
    builder.add_edge(START, "first")
    builder.add_edge(START, "chatty")
    builder.add_edge("first", "second")
    stream = builder.compile().stream({"log": []}, stream_mode="updates", subgraphs=True)
    assert next(stream) == ((), {"first": {"log": ["first"]}})
    stream.close()
    assert seen["stopped"] == "abandoned"


def test_a_subgraphs_node_stops_with_the_run_around_it(telemetry: Telemetry) -> None:
    seen: dict[str, Any] = {}
    builder = StateGraph(State)
    builder.add_node("child", _graph(seen))
    builder.add_edge(START, "child")
    for _chunk in builder.compile(name="parent").stream({"log": []}, stream_mode="custom", subgraphs=True):
        break
    assert seen["stopped"] == "abandoned"
    assert seen["written"] < WRITES // 10


async def test_an_async_consumer_that_stops_reading_stops_the_node(telemetry: Telemetry) -> None:
    seen: dict[str, Any] = {}
    stream = _graph(seen).astream({"log": []}, stream_mode="custom")
    async for _chunk in stream:
        break
    await stream.aclose()
    # the sync node runs in a worker thread the event loop does not wait for
    assert await asyncio.to_thread(seen["ended"].wait, 30)
    assert seen["stopped"] == "abandoned"
    assert seen["written"] < WRITES // 10
