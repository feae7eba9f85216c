"""What an instrumented LangGraph run exports: records, spans, metrics, progress, export modes."""

from __future__ import annotations

import asyncio
import logging
import operator
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_stream_writer
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command, interrupt
from opentelemetry import trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otelstream
from otelstream.telemetry import semconv
from otelstream.telemetry.codec import decode
from tests.helpers import rebuild, rebuild_from_spans_and_logs, stream_records
from tests.langgraph_harness import VERSIONS, instrumented


class State(TypedDict):
    x: int
    log: Annotated[list[str], operator.add]


@dataclass
class Exported:
    spans: InMemorySpanExporter
    logs: InMemoryLogRecordExporter
    metrics: InMemoryMetricReader
    tracer_provider: TracerProvider

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.finished() if s.name == name]

    def parent_name(self, span: ReadableSpan) -> str | None:
        by_id = {s.context.span_id: s.name for s in self.finished() if s.context is not None}
        return by_id.get(span.parent.span_id) if span.parent is not None else None

    def records(self) -> list[Any]:
        return stream_records(self.logs.get_finished_logs())

    def run_ends(self) -> list[dict[str, Any]]:
        return [
            dict(r.log_record.attributes or {})
            for r in self.logs.get_finished_logs()
            if r.log_record.event_name == semconv.RUN_END_EVENT
        ]

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        data = self.metrics.get_metrics_data()
        out: list[tuple[dict[str, Any], Any]] = []
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            value = getattr(point, "value", None)
                            count = getattr(point, "count", None)
                            out.append((dict(point.attributes or {}), value if value is not None else count))
        return out


@pytest.fixture
def exported() -> Iterator[Exported]:
    spans = InMemorySpanExporter()
    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call] # the SDK leaves it unannotated
    reader = InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    otelstream.configure(
        tracer_provider=tracer_provider,
        logger_provider=logger_provider,
        meter_provider=MeterProvider(metric_readers=[reader]),
    )
    yield Exported(spans, logs, reader, tracer_provider)
    otelstream.configure()


def _graph(tracer: trace.Tracer | None = None) -> Any:
    tracer = tracer or trace.NoOpTracer()

    def a(state: State) -> dict[str, Any]:
        with tracer.start_as_current_span("user-span-in-a"):
            get_stream_writer()({"in": "a"})
        return {"x": state["x"] + 1, "log": ["a"]}

    def inner(state: State) -> dict[str, Any]:
        with tracer.start_as_current_span("user-span-in-inner"):
            return {"log": ["inner"]}

    child = StateGraph(State)
    child.add_node("inner", inner)
    child.add_edge(START, "inner")
    graph = StateGraph(State)
    graph.add_node("a", a)
    graph.add_node("sub", child.compile(name="child_graph"))
    graph.add_edge(START, "a")
    graph.add_edge("a", "sub")
    return graph.compile(name="parent_graph")


# --- records -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_one_record_per_chunk_that_decodes_to_it(exported: Exported, version: str) -> None:
    with instrumented(export_modes=[]):
        chunks = list(
            _graph().stream(
                {"x": 0, "log": []},
                {"run_id": "r-1"},
                stream_mode=["updates", "custom", "values"],
                subgraphs=True,
                version=version,
            )
        )
    rebuilt = rebuild(exported.logs.get_finished_logs(), "r-1")
    if version == "v1":
        assert rebuilt == [tuple(c) for c in chunks]
    else:
        assert rebuilt == [(c["ns"], c["type"], c["data"]) for c in chunks]
    attrs = [dict(r.log_record.attributes) for r in exported.records()]
    assert [a[semconv.SEQ] for a in attrs] == list(range(len(chunks)))
    graphs = {(a[semconv.NAMESPACE] != "", a[semconv.GRAPH]) for a in attrs}
    assert graphs == {(False, "parent_graph"), (True, "child_graph")}
    assert {a[semconv.NODE] for a in attrs if a[semconv.NAMESPACE] == "" and a.get(semconv.NODE)} == {"a", "sub"}
    (end,) = exported.run_ends()
    assert end[semconv.EVENT_COUNT] == len(chunks) and end[semconv.OUTCOME] == "completed"
    assert list(end[semconv.STREAM_MODES]) == ["updates", "custom", "values"]


def test_records_belong_to_the_span_of_their_node(exported: Exported) -> None:
    with instrumented(export_modes=[]):
        list(_graph().stream({"x": 0, "log": []}, stream_mode=["updates", "custom"]))
    by_span = {s.context.span_id: s.name for s in exported.finished()}
    carried = [(r.log_record.event_name, by_span.get(r.log_record.span_id)) for r in exported.records()]
    assert carried == [
        ("otelstream.custom", "invoke_node a"),
        ("otelstream.updates", "invoke_node a"),
        ("otelstream.updates", "invoke_node sub"),
    ]


def test_invoke_exports_the_operators_modes(exported: Exported, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTELSTREAM_EXPORT_MODES", "updates,tasks")
    with instrumented():
        # the subgraph returns its whole state, which the parent's reducer appends again
        assert _graph().invoke({"x": 0, "log": []}) == {"x": 1, "log": ["a", "a", "inner"]}
    modes = [r.log_record.event_name for r in exported.records()]
    # invoke() asks for updates and values; tasks is the operator's; custom is not exported
    # (it would move nodes off the caller's thread), but the progress-less custom write isn't either
    assert set(modes) == {"otelstream.updates", "otelstream.values", "otelstream.tasks"}
    (end,) = exported.run_ends()
    assert list(end[semconv.STREAM_MODES]) == ["updates", "values"]


def test_export_modes_none(exported: Exported, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTELSTREAM_EXPORT_MODES", "none")
    with instrumented():
        list(_graph().stream({"x": 0, "log": []}, stream_mode="values"))
    assert {r.log_record.event_name for r in exported.records()} == {"otelstream.values"}


def test_side_effect_modes_are_opt_in_and_announced(exported: Exported, caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="otelstream"),
        instrumented(export_modes=["updates", "custom", "nope"]),
    ):
        list(_graph().stream({"x": 0, "log": []}, stream_mode="values"))
    text = caplog.text
    assert "unknown stream modes ['nope']" in text
    assert "exporting 'custom' from every LangGraph run" in text and "thread pool" in text
    assert "otelstream.custom" in {r.log_record.event_name for r in exported.records()}


def test_messages_export_gives_idless_messages_ids_as_documented(exported: Exported) -> None:
    # the side effect the opt-in warns about, shown: LangGraph's messages handler writes ids
    class Plain(TypedDict):
        messages: Annotated[list[Any], operator.add]  # no add_messages: it would give ids itself

    def build() -> Any:
        graph = StateGraph(Plain)
        graph.add_node("n", lambda s: {"messages": [AIMessage("no id")]})
        graph.add_edge(START, "n")
        return graph.compile()

    with instrumented(export_modes=[]):
        quiet = build().invoke({"messages": []})
    with instrumented(export_modes=["messages"]):
        loud = build().invoke({"messages": []})
    assert quiet["messages"][0].id is None
    assert loud["messages"][0].id is not None


# --- spans ---------------------------------------------------------------------------------


@pytest.mark.parametrize("asynchronous", [False, True])
def test_run_and_task_spans_with_user_spans_nested(exported: Exported, asynchronous: bool) -> None:
    tracer = exported.tracer_provider.get_tracer("app")
    with instrumented(), tracer.start_as_current_span("app-root"):
        if asynchronous:

            async def consume() -> None:
                async for _ in _graph(tracer).astream({"x": 0, "log": []}, stream_mode=["updates", "custom"]):
                    assert trace.get_current_span().get_span_context().span_id == app_root_id

            app_root_id = trace.get_current_span().get_span_context().span_id
            asyncio.run(consume())
        else:
            app_root_id = trace.get_current_span().get_span_context().span_id
            for _ in _graph(tracer).stream({"x": 0, "log": []}, stream_mode=["updates", "custom"]):
                # the loop body runs in the application's context, not the graph's
                assert trace.get_current_span().get_span_context().span_id == app_root_id
    tree = {s.name: exported.parent_name(s) for s in exported.finished()}
    assert tree == {
        "invoke_workflow parent_graph": "app-root",
        "invoke_node a": "invoke_workflow parent_graph",
        "user-span-in-a": "invoke_node a",
        "invoke_node sub": "invoke_workflow parent_graph",
        "invoke_node inner": "invoke_node sub",
        "user-span-in-inner": "invoke_node inner",
        "app-root": None,
    }
    (run,) = exported.named("invoke_workflow parent_graph")
    assert run.attributes is not None and run.attributes[semconv.OUTCOME] == "completed"
    (inner,) = exported.named("invoke_node inner")
    attrs: dict[str, Any] = dict(inner.attributes or {})
    assert attrs[semconv.GRAPH] == "child_graph" and attrs[semconv.STEP] == 1
    assert attrs[semconv.NAMESPACE].startswith("sub:") and "|inner:" in attrs[semconv.NAMESPACE]
    assert attrs[semconv.NAMESPACE].endswith(attrs[semconv.TASK_ID])


def test_outcomes_failed_abandoned_interrupted(exported: Exported) -> None:
    def boom(state: State) -> dict[str, Any]:
        raise KeyError("broke")

    failing = StateGraph(State)
    failing.add_node("boom", boom)
    failing.add_edge(START, "boom")

    def ask(state: State) -> dict[str, Any]:
        return {"log": [str(interrupt("ok?"))]}

    pausing = StateGraph(State)
    pausing.add_node("ask", ask)
    pausing.add_edge(START, "ask")
    paused = pausing.compile(checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "t-9"}}
    with instrumented():
        with pytest.raises(KeyError):
            failing.compile().invoke({"x": 0, "log": []})
        for _ in _graph().stream({"x": 0, "log": []}):
            break
        paused.invoke({"x": 0, "log": []}, config)
        paused.invoke(Command(resume="yes"), config)
    runs = [s for s in exported.finished() if s.name.startswith("invoke_workflow")]
    outcomes = [(s.name, (s.attributes or {})[semconv.OUTCOME], s.status.status_code.name) for s in runs]
    assert outcomes == [
        ("invoke_workflow LangGraph", "failed", "ERROR"),
        ("invoke_workflow parent_graph", "abandoned", "UNSET"),
        ("invoke_workflow LangGraph", "interrupted", "UNSET"),
        ("invoke_workflow LangGraph", "completed", "UNSET"),
    ]
    (boom_span,) = exported.named("invoke_node boom")
    assert (boom_span.attributes or {})[semconv.OUTCOME] == "failed"
    assert [e.name for e in boom_span.events] == ["exception"]
    asks = exported.named("invoke_node ask")
    assert [(s.attributes or {})[semconv.OUTCOME] for s in asks] == ["interrupted", "completed"]
    assert (asks[0].attributes or {})[semconv.INTERRUPTS] == 1
    # the resumed run links to the run it continues, and both carry the thread id
    first, resumed = runs[2], runs[3]
    assert (resumed.attributes or {})[semconv.GEN_AI_CONVERSATION_ID] == "t-9"
    assert [link.context.span_id for link in resumed.links] == [first.context.span_id]
    assert resumed.context.trace_id != first.context.trace_id


def test_chat_and_tool_spans_with_genai_metrics(exported: Exported) -> None:
    @tool
    def double(n: int) -> int:
        """Double a number."""
        return 2 * n

    calls = [{"name": "double", "args": {"n": 21}, "id": "call-1", "type": "tool_call"}]
    model = FakeMessagesListChatModel(responses=[AIMessage("", tool_calls=calls), AIMessage("42")])

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([double]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    with instrumented():
        list(graph.compile().stream({"messages": [HumanMessage("double 21")]}, stream_mode=["messages", "updates"]))
    chats = [s for s in exported.finished() if s.name.startswith("chat ")]
    assert len(chats) == 2
    assert {exported.parent_name(s) for s in chats} == {"invoke_node agent"}
    assert {(s.attributes or {})[semconv.NODE] for s in chats} == {"agent"}
    (tool_span,) = exported.named("execute_tool double")
    assert exported.parent_name(tool_span) == "invoke_node tools"
    assert (tool_span.attributes or {})[semconv.GEN_AI_TOOL_CALL_ID] == "call-1"
    assert len(exported.points(semconv.METRIC_OPERATION_DURATION)) >= 1
    assert exported.points(semconv.METRIC_TOOL_DURATION)


def test_a_subgraph_model_call_is_one_span(exported: Exported) -> None:
    model = GenericFakeChatModel(messages=iter([AIMessage("deep")]))
    child = StateGraph(MessagesState)
    child.add_node("deep", lambda s: {"messages": [model.invoke(s["messages"])]})
    child.add_edge(START, "deep")
    graph = StateGraph(MessagesState)
    graph.add_node("sub", child.compile())
    graph.add_edge(START, "sub")
    with instrumented():
        graph.compile().invoke({"messages": [HumanMessage("hi")]})
    chats = [s for s in exported.finished() if s.name.startswith("chat ")]
    assert len(chats) == 1  # the handler inherited from the parent task is the same object
    assert exported.parent_name(chats[0]) == "invoke_node deep"


# --- metrics and progress ------------------------------------------------------------------


def test_progress_of_an_invoke_only_app(exported: Exported) -> None:
    def fetch(state: State) -> dict[str, Any]:
        for done in (1, 2):
            otelstream.write_progress(done, 2, unit="pages")
        get_stream_writer()("not progress")
        return {"log": ["fetched"]}

    graph = StateGraph(State)
    graph.add_node("fetch", fetch)
    graph.add_edge(START, "fetch")
    with instrumented():
        run_config: Any = {"run_id": "inv-1"}
        assert graph.compile().invoke({"x": 0, "log": []}, run_config) == {"x": 0, "log": ["fetched"]}
    progress = [
        decode(str(r.log_record.attributes[semconv.PAYLOAD]))
        for r in exported.records()
        if r.log_record.event_name == "otelstream.custom"
    ]
    # the progress signals are exported though nothing streams custom; other writes are not
    assert progress == [{"progress": 1, "total": 2, "unit": "pages"}, {"progress": 2, "total": 2, "unit": "pages"}]
    assert exported.points("otelstream.progress.signals") == [({semconv.GRAPH: "LangGraph", semconv.NODE: "fetch"}, 2)]
    assert exported.points("otelstream.custom.events") == [({semconv.GRAPH: "LangGraph", semconv.NODE: "fetch"}, 3)]
    assert [p for _, p in exported.points("otelstream.runs.finished")] == [1]
    node_durations = exported.points("otelstream.node.duration")
    assert [a[semconv.NODE] for a, _ in node_durations] == ["fetch"]


def test_progress_in_a_subgraph_the_stream_does_not_show(exported: Exported) -> None:
    def work(state: State) -> dict[str, Any]:
        otelstream.write_progress(5, 10)
        return {"log": ["work"]}

    child = StateGraph(State)
    child.add_node("work", work)
    child.add_edge(START, "work")
    graph = StateGraph(State)
    graph.add_node("sub", child.compile())
    graph.add_edge(START, "sub")
    with instrumented():
        # custom streamed, but subgraphs=False: LangGraph drops the child's writes
        chunks = list(graph.compile().stream({"x": 0, "log": []}, stream_mode="custom"))
    assert chunks == []
    custom = [r for r in exported.records() if r.log_record.event_name == "otelstream.custom"]
    assert len(custom) == 1 and str(custom[0].log_record.attributes[semconv.NAMESPACE]).startswith("sub:")
    assert exported.points("otelstream.progress.signals") == [({semconv.GRAPH: "LangGraph", semconv.NODE: "work"}, 1)]


def test_span_event_carrier(exported: Exported) -> None:
    modes = ["updates", "custom", "values"]
    otelstream.configure(
        tracer_provider=exported.tracer_provider,
        logger_provider=LoggerProvider(),  # nothing exported as log records
        span_event_modes=modes,
    )
    with instrumented():
        chunks = list(_graph().stream({"x": 0, "log": []}, stream_mode=modes, subgraphs=True))
    rebuilt = rebuild_from_spans_and_logs(exported.finished(), [])
    assert rebuilt == [tuple(c) for c in chunks]
    (run,) = exported.named("invoke_workflow parent_graph")
    # chunks consumed after their node ended travel on the run span, which is still open
    assert len(run.events) + sum(len(s.events) for s in exported.finished() if s is not run) >= len(chunks)
