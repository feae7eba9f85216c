"""The one-pipeline promise: stream() yields exactly what went through OpenTelemetry."""

from __future__ import annotations

import asyncio
import logging
import operator
import threading
import time
from typing import Annotated, Any, TypedDict

import pytest
from inline_snapshot import snapshot
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

import otelstream
from otelstream import END, START, Send, StateGraph, StreamMode, get_stream_writer
from otelstream.consumer.channel import RunChannel
from otelstream.telemetry import semconv
from tests.conftest import Telemetry, make_telemetry
from tests.helpers import rebuild, run_ids, span_summary, stream_records


class State(TypedDict):
    log: Annotated[list[str], operator.add]
    n: int


def _fan_out_graph() -> otelstream.CompiledStateGraph:
    def plan(state: State) -> dict[str, Any]:
        get_stream_writer()({"progress": 0, "total": 3})
        return {"log": ["plan"], "n": 3}

    def work(arg: dict[str, Any]) -> dict[str, Any]:
        get_stream_writer()({"item": arg["i"]})
        return {"log": [f"work{arg['i']}"]}

    def child_step(state: State) -> dict[str, Any]:
        get_stream_writer()("inside child")
        return {"log": ["child"]}

    child = StateGraph(State)
    child.add_node("child_step", child_step)
    child.add_edge(START, "child_step")

    g = StateGraph(State)
    g.add_node("plan", plan)
    g.add_node("work", work)
    g.add_node("child", child.compile(name="child"))
    g.add_edge(START, "plan")
    g.add_conditional_edges("plan", lambda s: [Send("work", {"i": i}) for i in range(s["n"])])
    g.add_edge("work", "child")
    g.add_edge("child", END)
    return g.compile(name="fan_out")


ALL_MODES: list[StreamMode] = ["values", "updates", "custom", "tasks", "debug"]


def test_stream_is_rebuilt_whole_from_exported_records(telemetry: Telemetry) -> None:
    graph = _fan_out_graph()
    streamed = list(graph.stream({"log": []}, stream_mode=ALL_MODES, subgraphs=True))

    [run_id] = run_ids(telemetry.logs.get_finished_logs())
    rebuilt = rebuild(telemetry.logs.get_finished_logs(), run_id)

    assert len(streamed) > 20
    assert rebuilt == streamed


def test_every_record_carries_the_contract_attributes(telemetry: Telemetry) -> None:
    graph = _fan_out_graph()
    list(graph.stream({"log": []}, stream_mode="custom"))
    records = stream_records(telemetry.logs.get_finished_logs())
    first = records[0].log_record
    attributes = dict(first.attributes or {})
    attributes[semconv.RUN_ID] = "<run>"

    assert first.event_name == "otelstream.custom"
    assert attributes == snapshot(
        {
            "otelstream.seq": 0,
            "otelstream.run_id": "<run>",
            "otelstream.namespace": "",
            "otelstream.graph": "fan_out",
            "otelstream.node": "plan",
            "otelstream.payload": '{"progress":0,"total":3}',
        }
    )
    spans = {s.context.span_id: s for s in telemetry.spans.get_finished_spans() if s.context}
    # each record is correlated with the span of the node that wrote it
    assert spans[first.span_id].name == "invoke_node plan"


def test_spans_nest_run_node_subgraph(telemetry: Telemetry) -> None:
    list(_fan_out_graph().stream({"log": []}))
    assert span_summary(telemetry.spans.get_finished_spans()) == snapshot(
        [
            {
                "name": "invoke_workflow fan_out",
                "parent": None,
                "status": "UNSET",
                "otelstream.outcome": "completed",
                "gen_ai.operation.name": "invoke_workflow",
            },
            {
                "name": "invoke_node plan",
                "parent": "invoke_workflow fan_out",
                "status": "UNSET",
                "otelstream.outcome": "completed",
                "otelstream.node": "plan",
            },
            {
                "name": "invoke_node work",
                "parent": "invoke_workflow fan_out",
                "status": "UNSET",
                "otelstream.outcome": "completed",
                "otelstream.node": "work",
            },
            {
                "name": "invoke_node work",
                "parent": "invoke_workflow fan_out",
                "status": "UNSET",
                "otelstream.outcome": "completed",
                "otelstream.node": "work",
            },
            {
                "name": "invoke_node work",
                "parent": "invoke_workflow fan_out",
                "status": "UNSET",
                "otelstream.outcome": "completed",
                "otelstream.node": "work",
            },
            {
                "name": "invoke_node child",
                "parent": "invoke_workflow fan_out",
                "status": "UNSET",
                "otelstream.outcome": "completed",
                "otelstream.node": "child",
            },
            {
                "name": "invoke_workflow child",
                "parent": "invoke_node child",
                "status": "UNSET",
                "otelstream.outcome": "completed",
                "gen_ai.operation.name": "invoke_workflow",
            },
            {
                "name": "invoke_node child_step",
                "parent": "invoke_workflow child",
                "status": "UNSET",
                "otelstream.outcome": "completed",
                "otelstream.node": "child_step",
            },
        ]
    )


def test_custom_chunk_reaches_the_consumer_while_the_node_still_runs(telemetry: Telemetry) -> None:
    received = threading.Event()
    seen_by_node: list[bool] = []

    def waits_for_consumer(state: State) -> dict[str, Any]:
        get_stream_writer()("ping")
        # the node only returns once the consumer has seen the chunk
        seen_by_node.append(received.wait(timeout=10))
        return {"log": ["done"]}

    g = StateGraph(State)
    g.add_node("wait", waits_for_consumer)
    g.add_edge(START, "wait")
    chunks = []
    for mode, chunk in g.compile().stream({"log": []}, stream_mode=["custom", "updates"]):
        chunks.append((mode, chunk))
        if chunk == "ping":
            received.set()
    assert seen_by_node == [True]
    assert chunks == [("custom", "ping"), ("updates", {"wait": {"log": ["done"]}})]


def test_a_node_emitting_far_more_than_128_events_streams_and_exports_all(telemetry: Telemetry) -> None:
    def chatty(state: State) -> dict[str, Any]:
        write = get_stream_writer()
        for i in range(1000):
            write(i)
        return {"n": 1000}

    g = StateGraph(State)
    g.add_node("chatty", chatty)
    g.add_edge(START, "chatty")
    streamed = list(g.compile().stream({"log": []}, stream_mode="custom"))
    assert streamed == list(range(1000))
    exported = [chunk for _, _, chunk in rebuild(telemetry.logs.get_finished_logs())]
    assert exported == list(range(1000))


def test_sampled_out_run_streams_whole_and_exports_nothing() -> None:
    dropped = make_telemetry(sampler=ALWAYS_OFF)
    try:
        streamed = list(_fan_out_graph().stream({"log": []}, stream_mode=ALL_MODES, subgraphs=True))
    finally:
        otelstream.configure()
    assert len(streamed) > 20
    assert [c for c in streamed if c[1] == "custom"][0] == ((), "custom", {"progress": 0, "total": 3})
    assert dropped.spans.get_finished_spans() == ()
    assert dropped.logs.get_finished_logs() == ()


def test_concurrent_runs_in_threads_see_only_their_own_chunks(telemetry: Telemetry) -> None:
    def echo(state: State) -> dict[str, Any]:
        for i in range(20):
            get_stream_writer()((state["n"], i))
            time.sleep(0)  # kept: lets the other runs' threads interleave; no order across runs is asserted
        return {"log": [str(state["n"])]}

    g = StateGraph(State)
    g.add_node("echo", echo)
    g.add_edge(START, "echo")
    graph = g.compile()
    results: dict[int, list[Any]] = {}

    def consume(n: int) -> None:
        results[n] = list(graph.stream({"log": [], "n": n}, stream_mode="custom"))

    threads = [threading.Thread(target=consume, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == {n: [(n, i) for i in range(20)] for n in range(8)}


async def test_concurrent_runs_in_asyncio_tasks_see_only_their_own_chunks(telemetry: Telemetry) -> None:
    async def echo(state: State) -> dict[str, Any]:
        for i in range(20):
            get_stream_writer()((state["n"], i))
            await asyncio.sleep(0)  # kept: lets the other runs' tasks interleave; no order across runs is asserted
        return {"log": [str(state["n"])]}

    g = StateGraph(State)
    g.add_node("echo", echo)
    g.add_edge(START, "echo")
    graph = g.compile()

    async def consume(n: int) -> list[Any]:
        return [c async for c in graph.astream({"log": [], "n": n}, stream_mode="custom")]

    results = await asyncio.gather(*(consume(n) for n in range(8)))
    assert results == [[(n, i) for i in range(20)] for n in range(8)]


def _two_step_graph() -> otelstream.CompiledStateGraph:
    g = StateGraph(State)
    g.add_node("a", lambda s: {"log": ["a"]})
    g.add_node("b", lambda s: {"log": ["b"]})
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    return g.compile(name="two_steps")


def _run_outcome(telemetry: Telemetry) -> tuple[Any, str]:
    [run] = [s for s in telemetry.spans.get_finished_spans() if s.name.startswith("invoke_workflow")]
    return (run.attributes or {}).get(semconv.OUTCOME), run.status.status_code.name


def test_break_ends_the_run_as_abandoned_without_error_and_leaks_nothing(telemetry: Telemetry) -> None:
    threads_before = threading.active_count()
    stream = _two_step_graph().stream({"log": []}, stream_mode="updates")
    for _ in stream:
        break
    stream.close()
    assert _run_outcome(telemetry) == ("abandoned", "UNSET")
    assert len(otelstream._config.router()) == 0
    assert threading.active_count() == threads_before
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_close_before_the_end_abandons_and_runs_no_further_step(telemetry: Telemetry) -> None:
    stream = _two_step_graph().stream({"log": []}, stream_mode="updates")
    assert next(stream) == {"a": {"log": ["a"]}}
    stream.close()
    node_spans = [s.name for s in telemetry.spans.get_finished_spans() if s.name.startswith("invoke_node")]
    assert node_spans == ["invoke_node a"]
    assert _run_outcome(telemetry) == ("abandoned", "UNSET")


async def test_cancelled_task_ends_the_run_as_cancelled(telemetry: Telemetry) -> None:
    started = asyncio.Event()

    async def slow(state: State) -> dict[str, Any]:
        started.set()
        await asyncio.sleep(30)  # kept: still running when the consumer's task is cancelled
        return {}

    g = StateGraph(State)
    g.add_node("slow", slow)
    g.add_edge(START, "slow")
    graph = g.compile()

    async def consume() -> None:
        async for _ in graph.astream({"log": []}):
            pass

    task = asyncio.ensure_future(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _run_outcome(telemetry) == ("cancelled", "UNSET")
    assert len(otelstream._config.router()) == 0


def test_failed_node_marks_node_and_run_failed_with_the_exception(telemetry: Telemetry) -> None:
    def boom(state: State) -> dict[str, Any]:
        raise ValueError("boom!")

    g = StateGraph(State)
    g.add_node("boom", boom)
    g.add_edge(START, "boom")
    with pytest.raises(ValueError, match="boom!"):
        list(g.compile(name="failing").stream({"log": []}))
    spans = {s.name: s for s in telemetry.spans.get_finished_spans()}
    node = spans["invoke_node boom"]
    assert node.status.status_code.name == "ERROR"
    assert [e.name for e in node.events] == ["exception"]
    assert _run_outcome(telemetry) == ("failed", "ERROR")


def test_node_code_runs_under_its_node_span_and_the_loop_body_does_not(telemetry: Telemetry) -> None:
    tracer = telemetry.tracer_provider.get_tracer("user")
    seen_in_loop: list[trace.Span] = []

    def node(state: State) -> dict[str, Any]:
        with tracer.start_as_current_span("user work"):
            pass
        return {"log": ["x"]}

    g = StateGraph(State)
    g.add_node("node", node)
    g.add_edge(START, "node")
    with tracer.start_as_current_span("request"):
        for _ in g.compile().stream({"log": []}, stream_mode=["values", "custom"]):
            seen_in_loop.append(trace.get_current_span())
    summary = {s["name"]: s["parent"] for s in span_summary(telemetry.spans.get_finished_spans())}
    assert summary == {
        "request": None,
        "invoke_workflow LangGraph": "request",
        "invoke_node node": "invoke_workflow LangGraph",
        "user work": "invoke_node node",
    }
    assert {getattr(s, "name", None) for s in seen_in_loop} == {"request"}


def test_a_failure_inside_otelstreams_processor_is_logged_once_and_the_app_carries_on(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTELSTREAM_RAISE_INTERNAL", "0")
    real_put = RunChannel.put

    def put_failing_on_seq_1(self: Any, seq: int, chunk: Any) -> None:
        if seq == 1:
            raise RuntimeError("processor bug")
        real_put(self, seq, chunk)

    monkeypatch.setattr(RunChannel, "put", put_failing_on_seq_1)
    with caplog.at_level(logging.WARNING, logger="otelstream"):
        first = list(_two_step_graph().stream({"log": []}, stream_mode="updates"))
        second = list(_two_step_graph().stream({"log": []}, stream_mode="updates"))
    # the chunk the processor failed on is missing; everything else arrives, in order
    assert first == second == [{"a": {"log": ["a"]}}]
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "otelstream failed while routing a stream record; the application is unaffected"
    assert [m for m in messages if "failed while" in m] == messages[:1]
    assert messages.count(messages[-1]) == 1 and "lost 1 stream chunk(s); the stream has gaps" in messages[-1]
    assert [
        (s.attributes or {}).get(semconv.OUTCOME)
        for s in telemetry.spans.get_finished_spans()
        if s.name.startswith("invoke_workflow")
    ] == ["completed", "completed"]


def test_a_slow_consumer_holds_the_producer_back_and_loses_nothing(telemetry: Telemetry) -> None:
    from otelstream.consumer.channel import DEFAULT_CAPACITY

    written: list[int] = []
    total = DEFAULT_CAPACITY * 5

    def producer(state: State) -> dict[str, Any]:
        write = get_stream_writer()
        for i in range(total):
            write(i)
            written.append(i)
        return {"n": total}

    g = StateGraph(State)
    g.add_node("producer", producer)
    g.add_edge(START, "producer")
    stream = g.compile().stream({"log": []}, stream_mode="custom")
    first = next(stream)
    # Kept sleep: the consumer dawdles, and the node must wait for it, not pile up chunks.
    # Nothing is ordered by its length: the bound below holds however long the consumer
    # waits; a shorter wait would only give an unbounded producer less time to overrun.
    time.sleep(0.5)
    # bounded: the channel's capacity, plus at most one batch the consumer already took out
    assert len(written) <= 2 * DEFAULT_CAPACITY
    rest = list(stream)
    assert [first, *rest] == list(range(total))


def test_closing_releases_a_producer_blocked_on_a_full_stream(telemetry: Telemetry) -> None:
    from otelstream.consumer.channel import DEFAULT_CAPACITY

    stopped: list[BaseException] = []

    def producer(state: State) -> dict[str, Any]:
        write = get_stream_writer()
        try:
            for i in range(DEFAULT_CAPACITY * 3):
                write(i)
        except BaseException as exc:  # RunStopped: the consumer left, the node stops here
            stopped.append(exc)
            raise
        return {}

    g = StateGraph(State)
    g.add_node("producer", producer)
    g.add_edge(START, "producer")
    stream = g.compile().stream({"log": []}, stream_mode="custom")
    next(stream)
    stream.close()  # must not deadlock on the node blocked in write()
    assert [type(exc).__name__ for exc in stopped] == ["RunStopped"]
    assert _run_outcome(telemetry) == ("abandoned", "UNSET")


def test_an_error_in_a_subgraph_marks_every_level_of_spans_failed(telemetry: Telemetry) -> None:
    def boom(state: State) -> dict[str, Any]:
        raise ValueError("deep failure")

    child = StateGraph(State)
    child.add_node("boom", boom)
    child.add_edge(START, "boom")
    g = StateGraph(State)
    g.add_node("ok", lambda s: {"log": ["ok"]})
    g.add_node("child", child.compile(name="child"))
    g.add_edge(START, "ok")
    g.add_edge(START, "child")
    with pytest.raises(ValueError, match="deep failure") as raised:
        list(g.compile(name="parent").stream({"log": []}))
    assert len(raised.value.__notes__) == 2  # one note per level, as LangGraph adds them
    summary = {
        (s["name"], s["status"], s.get("otelstream.outcome"))
        for s in span_summary(telemetry.spans.get_finished_spans())
    }
    assert summary == {
        ("invoke_workflow parent", "ERROR", "failed"),
        ("invoke_node ok", "UNSET", "completed"),
        ("invoke_node child", "ERROR", "failed"),
        ("invoke_workflow child", "ERROR", "failed"),
        ("invoke_node boom", "ERROR", "failed"),
    }
    failed_nodes = [
        s for s in telemetry.spans.get_finished_spans() if s.name in ("invoke_node boom", "invoke_node child")
    ]
    assert all([e.name for e in s.events] == ["exception"] for s in failed_nodes)
