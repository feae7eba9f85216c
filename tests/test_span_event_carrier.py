"""Modes carried as span events: the same stream, live, nothing evicted by span limits."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

import pytest
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

import otelstream
from otelstream import START, StateGraph, get_stream_writer
from tests.conftest import Telemetry, make_telemetry
from tests.helpers import rebuild_from_spans_and_logs


def _concat(a: list[str], b: list[str]) -> list[str]:
    return a + b


class State(TypedDict):
    log: Annotated[list[str], _concat]


def _graph(events: int, gate: threading.Event | None = None) -> otelstream.CompiledStateGraph:
    def chatty(state: State) -> dict[str, Any]:
        write = get_stream_writer()
        for i in range(events):
            write(i)
        if gate is not None:
            gate.wait(timeout=10)
        return {"log": ["chatty"]}

    g = StateGraph(State)
    g.add_node("chatty", chatty)
    g.add_node("after", lambda s: {"log": ["after"]})
    g.add_edge(START, "chatty")
    g.add_edge("chatty", "after")
    return g.compile(name="carrier")


@pytest.fixture
def span_event_telemetry() -> Iterator[Telemetry]:
    telemetry = make_telemetry()
    otelstream.configure(
        tracer_provider=telemetry.tracer_provider,
        logger_provider=telemetry.logger_provider,
        span_event_modes=["custom", "updates"],
    )
    yield telemetry
    otelstream.configure()


def test_span_event_modes_travel_as_span_events_and_rebuild_the_same_stream(
    span_event_telemetry: Telemetry,
) -> None:
    streamed = list(_graph(3).stream({"log": []}, stream_mode=["values", "updates", "custom"]))
    spans = span_event_telemetry.spans.get_finished_spans()
    logs = span_event_telemetry.logs.get_finished_logs()

    node = next(s for s in spans if s.name == "invoke_node chatty")
    assert [e.name for e in node.events] == ["otelstream.custom"] * 3 + ["otelstream.updates"]
    assert {r.log_record.event_name for r in logs} == {"otelstream.values"}
    run = next(s for s in spans if s.name == "invoke_workflow carrier")
    # with a span-event carrier the run-end record rides on the run span, for trace-only backends
    assert [e.name for e in run.events] == ["otelstream.run.end"]
    assert rebuild_from_spans_and_logs(spans, logs) == [((), mode, chunk) for mode, chunk in streamed]


def test_span_event_chunks_reach_the_consumer_while_the_node_runs(span_event_telemetry: Telemetry) -> None:
    gate = threading.Event()
    received = []
    for chunk in _graph(1, gate).stream({"log": []}, stream_mode="custom"):
        received.append(chunk)
        gate.set()  # the node is still blocked on the gate when its chunk arrives
    assert received == [0]


def test_past_the_span_event_limit_chunks_overflow_to_log_records(span_event_telemetry: Telemetry) -> None:
    streamed = list(_graph(300).stream({"log": []}, stream_mode="custom"))
    spans = span_event_telemetry.spans.get_finished_spans()
    logs = span_event_telemetry.logs.get_finished_logs()
    node = next(s for s in spans if s.name == "invoke_node chatty")

    assert streamed == list(range(300))
    assert len(node.events) == 128 and node.dropped_events == 0
    assert [chunk for _, _, chunk in rebuild_from_spans_and_logs(spans, logs)] == list(range(300))


def test_sampled_out_runs_stream_whole_with_span_event_modes() -> None:
    telemetry = make_telemetry(sampler=ALWAYS_OFF)
    otelstream.configure(
        tracer_provider=telemetry.tracer_provider,
        logger_provider=telemetry.logger_provider,
        span_event_modes=["custom"],
    )
    try:
        assert list(_graph(5).stream({"log": []}, stream_mode="custom")) == [0, 1, 2, 3, 4]
    finally:
        otelstream.configure()
    assert telemetry.spans.get_finished_spans() == ()
    assert telemetry.logs.get_finished_logs() == ()


def test_unknown_span_event_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"Unknown span_event_modes \['token'\]"):
        otelstream.configure(span_event_modes=["custom", "token"])
