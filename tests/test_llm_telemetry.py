"""LLM and tool calls in exported telemetry: spans, GenAI attributes, metrics, every token a record."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.tools import tool
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otelstream
from otelstream import START, MessagesState, StateGraph, ToolNode, llm_call, stream_llm, tools_condition
from otelstream.telemetry import environment, semconv
from otelstream.telemetry.codec import decode, encode, encode_tuple
from tests.helpers import rebuild, stream_records

WAIT_S = 10.0
"""Bound of a wait for another thread or task; reaching it is a failure."""


class SpanEnded(SpanProcessor):
    """Sets ``event`` when a span named ``name`` ends: a test waits for that, not for time."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.event = threading.Event()

    def on_end(self, span: ReadableSpan) -> None:
        if span.name == self.name:
            self.event.set()


@dataclass
class Exported:
    spans: InMemorySpanExporter
    logs: InMemoryLogRecordExporter
    metrics: InMemoryMetricReader
    tracer_provider: TracerProvider

    def on_span_end(self, name: str) -> threading.Event:
        """An event set when a span called ``name`` ends (its attributes are final then)."""
        ended = SpanEnded(name)
        self.tracer_provider.add_span_processor(ended)
        return ended.event

    def span(self, name: str) -> ReadableSpan:
        found = [s for s in self.spans.get_finished_spans() if s.name == name]
        assert len(found) == 1, [s.name for s in self.spans.get_finished_spans()]
        return found[0]

    def parent_name(self, span: ReadableSpan) -> str | None:
        by_id = {s.context.span_id: s.name for s in self.spans.get_finished_spans() if s.context is not None}
        return by_id.get(span.parent.span_id) if span.parent is not None else None

    def points(self, name: str) -> list[Any]:
        data = self.metrics.get_metrics_data()
        assert data is not None
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]


@pytest.fixture
def exported() -> Iterator[Exported]:
    spans = InMemorySpanExporter()
    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call] # the SDK leaves it unannotated
    tracer_provider = TracerProvider()  # default SDK limits: 128 events per span
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    reader = InMemoryMetricReader()
    otelstream.configure(
        tracer_provider=tracer_provider,
        logger_provider=logger_provider,
        meter_provider=MeterProvider(metric_readers=[reader]),
    )
    yield Exported(spans, logs, reader, tracer_provider)
    otelstream.configure()


def _one_node(node: Any) -> Any:
    graph = StateGraph(MessagesState)
    graph.add_node("llm", node)
    graph.add_edge(START, "llm")
    return graph.compile()


def test_langchain_call_is_a_chat_span_under_the_node_with_metrics(exported: Exported) -> None:
    model = GenericFakeChatModel(messages=iter([AIMessage("a b c")]))
    graph = _one_node(lambda s: {"messages": [model.invoke(s["messages"])]})
    chunks = list(graph.stream({"messages": [HumanMessage("hi")]}, stream_mode="messages"))
    assert [c[0].content for c in chunks] == ["a", " ", "b", " ", "c"]
    span = exported.span("chat GenericFakeChatModel")
    assert exported.parent_name(span) == "invoke_node llm"
    attrs = dict(span.attributes or {})
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "genericfakechatmodel"
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == "GenericFakeChatModel"
    assert attrs[semconv.LLM_CHUNKS] == 5
    assert attrs[semconv.OUTCOME] == "completed"
    assert isinstance(attrs[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK], float)
    # content capture is off by default
    assert semconv.GEN_AI_INPUT_MESSAGES not in attrs and semconv.GEN_AI_OUTPUT_MESSAGES not in attrs
    # every token record is in the chat span's context
    records = [r for r in stream_records(exported.logs.get_finished_logs())]
    assert {r.log_record.span_id for r in records} == {span.context.span_id}
    assert len(exported.points(semconv.METRIC_OPERATION_DURATION)) == 1
    assert exported.points(semconv.METRIC_TIME_TO_FIRST_CHUNK)[0].count == 1
    assert exported.points(semconv.METRIC_TIME_PER_OUTPUT_CHUNK)[0].count == 4


def test_own_api_records_usage_finish_reason_and_content_when_asked(
    exported: Exported, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(environment.CAPTURE_MESSAGE_CONTENT.name, "SPAN_ONLY")

    def node(state: Any) -> Any:
        with llm_call(model="tiny-1", provider="acme", input_messages=[{"role": "user", "content": "q"}]) as call:
            for token in ["x", "y"]:
                call.chunk(token)
            call.finish(finish_reason="stop", input_tokens=7, output_tokens=2, response_model="tiny-1-0001")
        return {"messages": [call.message]}

    chunks = list(_one_node(node).stream({"messages": []}, stream_mode=["messages", "updates"]))
    # two tokens, the last (empty) chunk, then the update: the returned message is deduped
    assert [c[0] for c in chunks] == ["messages"] * 3 + ["updates"]
    last, metadata = chunks[2][1]
    assert last.chunk_position == "last" and last.usage_metadata["total_tokens"] == 9
    assert metadata["ls_integration"] == "otelstream" and metadata["ls_model_name"] == "tiny-1"
    attrs = dict(exported.span("chat tiny-1").attributes or {})
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 7
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 2
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == "tiny-1-0001"
    assert "q" in str(attrs[semconv.GEN_AI_INPUT_MESSAGES]) and "xy" in str(attrs[semconv.GEN_AI_OUTPUT_MESSAGES])
    usage = {p.attributes[semconv.GEN_AI_TOKEN_TYPE]: p.sum for p in exported.points(semconv.METRIC_TOKEN_USAGE)}
    assert usage == {"input": 7, "output": 2}


def test_ten_thousand_tokens_reach_the_exporter_whole_in_order(exported: Exported) -> None:
    count = 10_000

    @stream_llm(model="big", provider="acme")
    def generate() -> Iterator[str]:
        for i in range(count):
            yield f"w{i} "

    def node(state: Any) -> Any:
        return {"messages": [AIMessage("".join(generate()), id="final")]}

    streamed = list(_one_node(node).stream({"messages": []}, stream_mode="messages"))
    records = [
        r for r in stream_records(exported.logs.get_finished_logs()) if r.log_record.event_name == "otelstream.messages"
    ]
    # every token, the last chunk and the node's message, each its own record
    assert len(streamed) == len(records) == count + 2
    seqs = [int(str((r.log_record.attributes or {})[semconv.SEQ])) for r in records]
    assert seqs == list(range(count + 2))
    stamps = [r.log_record.timestamp or 0 for r in records]
    assert all(a <= b for a, b in zip(stamps, stamps[1:], strict=False)) and all(stamps)
    contents = [decode(str((r.log_record.attributes or {})[semconv.PAYLOAD]))[0].content for r in records[:count]]
    assert contents == [f"w{i} " for i in range(count)]
    # the chat span itself holds no events: the 128-event limit cannot drop tokens
    assert exported.span("chat big").events == ()


def test_stream_rebuilt_from_records_equals_what_stream_yielded(exported: Exported) -> None:
    model = GenericFakeChatModel(messages=iter([AIMessage("one two")]))
    graph = _one_node(lambda s: {"messages": [model.invoke(s["messages"])]})
    streamed = list(graph.stream({"messages": [HumanMessage("hi", id="h")]}, stream_mode=["messages", "updates"]))
    rebuilt = [(mode, payload) for _, mode, payload in rebuild(exported.logs.get_finished_logs())]
    assert rebuilt == streamed
    assert isinstance(rebuilt[0][1][0], AIMessageChunk)


def test_langchain_messages_round_trip_the_codec() -> None:
    chunk = AIMessageChunk(
        content="t",
        id="lc_run--1",
        chunk_position="last",
        tool_call_chunks=[{"name": "add", "args": '{"a"', "id": "c", "index": 0}],
        usage_metadata={"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
    )
    assert decode(encode(chunk)) == chunk
    message = AIMessage("x", id="m", tool_calls=[{"name": "add", "args": {"a": 1}, "id": "c"}])
    assert decode(encode((message, {"langgraph_step": 1}))) == (message, {"langgraph_step": 1})
    # a token's payload is spliced from its message and the call's metadata encoded once
    redactor = otelstream.Redactor()
    metadata = {"api_key": "sk-secret", "node": ("a", 1)}
    spliced = encode_tuple([encode(chunk, redactor), encode(metadata, redactor)])
    assert spliced == encode((chunk, metadata), redactor)


def test_abandoning_the_stream_ends_the_llm_span_abandoned(exported: Exported) -> None:
    produced = threading.Event()
    llm_span_ended = exported.on_span_end("chat slow")
    noticed: list[bool] = []

    def node(state: Any) -> Any:
        with llm_call(model="slow", provider="acme") as call:
            call.chunk("first")
            produced.set()
            # the model "generates" until its consumer leaves, which ends the call's span
            llm_span_ended.wait(WAIT_S)
            noticed.append(call.ended)
            call.chunk("after the consumer left")  # not recorded
        return None

    stream = _one_node(node).stream({"messages": []}, stream_mode="messages")
    first = next(stream)
    assert first[0].content == "first"
    produced.wait(WAIT_S)
    stream.close()  # the consumer walks away mid-generation
    assert noticed == [True]
    attrs = dict(exported.span("chat slow").attributes or {})
    assert attrs[semconv.OUTCOME] == "abandoned"
    assert attrs[semconv.LLM_CHUNKS] == 1
    run = exported.span("invoke_workflow LangGraph")
    assert dict(run.attributes or {})[semconv.OUTCOME] == "abandoned"


def test_llm_error_fails_the_span_and_reaches_the_node(exported: Exported) -> None:
    @stream_llm(model="flaky", provider="acme")
    def generate() -> Iterator[str]:
        yield "ok"
        raise ConnectionError("provider went away")

    def node(state: Any) -> Any:
        return {"messages": [AIMessage("".join(generate()))]}

    with pytest.raises(ConnectionError, match="provider went away"):
        list(_one_node(node).stream({"messages": []}, stream_mode="messages"))
    span = exported.span("chat flaky")
    assert span.status.status_code.name == "ERROR"
    assert dict(span.attributes or {})[semconv.ERROR_TYPE] == "ConnectionError"
    assert [e.name for e in span.events] == ["exception"]


@tool
def lookup(city: str) -> str:
    """Look a city up, asking a model on the way."""
    FakeListChatModel(responses=["ok"]).invoke(city)
    return f"{city}: sunny"


def test_tools_are_execute_tool_spans_and_models_inside_nest_under_them(exported: Exported) -> None:
    calls = [{"name": "lookup", "args": {"city": "Oslo"}, "id": "call-1"}]
    responses = iter([AIMessage("", tool_calls=calls), AIMessage("done")])

    def agent(state: Any) -> Any:
        return {"messages": [next(responses)]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node(ToolNode([lookup]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    list(graph.compile().stream({"messages": [HumanMessage("weather?")]}))
    tool_span = exported.span("execute_tool lookup")
    assert exported.parent_name(tool_span) == "invoke_node tools"
    attrs = dict(tool_span.attributes or {})
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "execute_tool"
    assert attrs[semconv.GEN_AI_TOOL_CALL_ID] == "call-1"
    assert semconv.GEN_AI_TOOL_CALL_ARGUMENTS not in attrs  # content capture is off
    assert exported.parent_name(exported.span("chat FakeListChatModel")) == "execute_tool lookup"
    assert len(exported.points(semconv.METRIC_TOOL_DURATION)) == 1


def test_a_call_outside_any_graph_is_traced_only(exported: Exported) -> None:
    with llm_call(model="solo", provider="acme") as call:
        call.chunk("a")
    assert dict(exported.span("chat solo").attributes or {})[semconv.OUTCOME] == "completed"
    assert stream_records(exported.logs.get_finished_logs()) == []


def test_bad_input_is_refused_with_a_clear_error() -> None:
    with pytest.raises(TypeError, match="model as a non-empty str"):
        llm_call(model="", provider="acme")
    with pytest.raises(TypeError, match="generator functions"):
        stream_llm(model="m", provider="p")(lambda: None)
    call = llm_call(model="m", provider="p")
    with pytest.raises(TypeError, match="str tokens or message chunks, got int"):
        call.chunk(3)
    call.finish()
    with pytest.raises(RuntimeError, match="after finish"):
        call.chunk("late")


async def test_async_generators_stream_tokens(exported: Exported) -> None:
    @stream_llm(model="async-m", provider="acme")
    async def generate() -> Any:
        for token in ["p", "q"]:
            yield token

    async def node(state: Any) -> Any:
        return {"messages": [AIMessage("".join([t async for t in generate()]))]}

    chunks = [c async for c in _one_node(node).astream({"messages": []}, stream_mode="messages")]
    assert [c[0].content for c in chunks[:3]] == ["p", "q", ""]
    assert chunks[0][1]["langgraph_node"] == "llm"
    assert dict(exported.span("chat async-m").attributes or {})[semconv.LLM_CHUNKS] == 3


def test_the_agent_example_runs_offline() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, str(root / "examples" / "agent.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "The weather report says: Oslo: sunny, 21 degrees. Enjoy your day!" in result.stdout
    assert "execute_tool get_weather     under invoke_node tools" in result.stdout
    assert "chat scripted-1              under invoke_node agent" in result.stdout


def test_parallel_nodes_stream_their_own_calls_in_order(exported: Exported) -> None:
    def worker(name: str) -> Any:
        @stream_llm(model=f"m-{name}", provider="acme")
        def generate() -> Iterator[str]:
            for i in range(50):
                yield f"{name}{i}"

        def node(state: Any) -> Any:
            return {"messages": [AIMessage("".join(generate()), id=f"final-{name}")]}

        return node

    graph = StateGraph(MessagesState)
    for name in ("a", "b", "c"):
        graph.add_node(name, worker(name))
        graph.add_edge(START, name)
    chunks = list(graph.compile().stream({"messages": []}, stream_mode="messages"))
    for name in ("a", "b", "c"):
        mine = [m.content for m, meta in chunks if meta["langgraph_node"] == name and m.id != f"final-{name}"]
        assert mine == [f"{name}{i}" for i in range(50)] + [""]
        spans = [s for s in exported.spans.get_finished_spans() if s.name == f"chat m-{name}"]
        assert exported.parent_name(spans[0]) == f"invoke_node {name}"


def test_llm_tokens_inside_a_subgraph_follow_the_subgraphs_flag(exported: Exported) -> None:
    def inner(state: Any) -> Any:
        with llm_call(model="inner", provider="acme") as call:
            call.chunk("deep")
        return None

    child = StateGraph(MessagesState)
    child.add_node("inner", inner)
    child.add_edge(START, "inner")
    graph = StateGraph(MessagesState)
    graph.add_node("child", child.compile())
    graph.add_edge(START, "child")
    app = graph.compile()
    assert list(app.stream({"messages": []}, stream_mode="messages")) == []
    nested = list(app.stream({"messages": []}, stream_mode="messages", subgraphs=True))
    assert [(ns[0].split(":")[0], m.content) for ns, (m, _) in nested] == [("child", "deep"), ("child", "")]
    assert nested[0][1][1]["checkpoint_ns"] == nested[0][0][0]


def test_a_call_its_code_never_finished_ends_with_the_run(exported: Exported) -> None:
    def node(state: Any) -> Any:
        call = llm_call(model="forgotten", provider="acme")
        call.chunk("never finished")
        return None

    list(_one_node(node).stream({"messages": []}, stream_mode="messages"))
    span = exported.span("chat forgotten")
    assert dict(span.attributes or {})[semconv.OUTCOME] == "completed"
    run = exported.span("invoke_workflow LangGraph")
    assert (span.end_time or 0) <= (run.end_time or 0)


async def test_abandoning_astream_ends_the_llm_span_abandoned(exported: Exported) -> None:
    import asyncio

    llm_span_ended = exported.on_span_end("chat slow-async")

    async def node(state: Any) -> Any:
        with llm_call(model="slow-async", provider="acme") as call:
            call.chunk("first")
            # kept sleep: the consumer leaves while the model "generates"; it is cancelled
            await asyncio.sleep(5)
            call.chunk("never seen")
        return None

    stream = _one_node(node).astream({"messages": []}, stream_mode="messages")
    first = await stream.__anext__()
    assert first[0].content == "first"
    await stream.aclose()
    # the call's span ends once the node's task saw its cancellation (or the consumer left)
    assert await asyncio.to_thread(llm_span_ended.wait, WAIT_S)
    attrs = dict(exported.span("chat slow-async").attributes or {})
    assert attrs[semconv.OUTCOME] == "abandoned"
    assert attrs[semconv.LLM_CHUNKS] == 1


@pytest.mark.parametrize(
    ("setting", "env", "payloads", "captured"),
    [
        (None, None, "full", False),  # off by default
        (True, None, "full", True),
        (False, "SPAN_ONLY", "full", False),  # the explicit setting wins over the variable
        (None, "SPAN_AND_EVENT", "full", True),
        (None, "SPAN_ONLY", "none", False),  # metadata-only telemetry never carries content
    ],
)
def test_message_content_capture_setting(
    monkeypatch: pytest.MonkeyPatch, setting: bool | None, env: str | None, payloads: Any, captured: bool
) -> None:
    if env is None:
        monkeypatch.delenv(environment.CAPTURE_MESSAGE_CONTENT.name, raising=False)
    else:
        monkeypatch.setenv(environment.CAPTURE_MESSAGE_CONTENT.name, env)
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    otelstream.configure(
        tracer_provider=tracer_provider,
        logger_provider=LoggerProvider(),
        capture_message_content=setting,
        payloads=payloads,
    )
    try:
        with llm_call(model="c", provider="p", input_messages=[{"role": "user", "content": "secret prompt"}]) as call:
            call.chunk("secret answer")
    finally:
        otelstream.configure()
    (span,) = spans.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert (semconv.GEN_AI_INPUT_MESSAGES in attrs) is captured
    assert (semconv.GEN_AI_OUTPUT_MESSAGES in attrs) is captured


def test_a_telemetry_failure_in_the_llm_path_never_breaks_the_app(
    exported: Exported, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    import otelstream.telemetry.llm as llm_module

    monkeypatch.delenv("OTELSTREAM_RAISE_INTERNAL")

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("encoder exploded")

    monkeypatch.setattr(llm_module, "emit_message", broken)
    model = GenericFakeChatModel(messages=iter([AIMessage("still works")]))
    graph = _one_node(lambda s: {"messages": [model.invoke(s["messages"])]})
    with caplog.at_level(logging.ERROR, logger="otelstream"):
        chunks = list(graph.stream({"messages": []}, stream_mode=["messages", "updates"]))
    # the tokens are lost (and logged), the node's own message and update still arrive
    assert [c[0] for c in chunks] == ["messages", "updates"]
    assert chunks[-1][1]["llm"]["messages"][0].content == "still works"
    assert "otelstream failed while recording an LLM chunk" in caplog.text
    assert dict(exported.span("chat GenericFakeChatModel").attributes or {})[semconv.OUTCOME] == "completed"


def test_agent_span_tree(telemetry: Any) -> None:
    from inline_snapshot import snapshot

    from tests.helpers import span_summary

    calls = [{"name": "lookup", "args": {"city": "Oslo"}, "id": "call-1"}]
    responses = iter([AIMessage("", tool_calls=calls), AIMessage("done")])

    def agent(state: Any) -> Any:
        with llm_call(model="m-1", provider="acme") as call:
            call.chunk("thinking")
        return {"messages": [next(responses)]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node(ToolNode([lookup]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    list(graph.compile().stream({"messages": [HumanMessage("weather?")]}, stream_mode="messages"))
    assert span_summary(telemetry.spans.get_finished_spans()) == snapshot(
        [
            {
                "name": "invoke_workflow LangGraph",
                "parent": None,
                "status": "UNSET",
                "gen_ai.operation.name": "invoke_workflow",
                "otelstream.outcome": "completed",
            },
            {
                "name": "invoke_node agent",
                "parent": "invoke_workflow LangGraph",
                "status": "UNSET",
                "otelstream.node": "agent",
                "otelstream.outcome": "completed",
            },
            {
                "name": "chat m-1",
                "parent": "invoke_node agent",
                "status": "UNSET",
                "gen_ai.operation.name": "chat",
                "otelstream.node": "agent",
                "otelstream.outcome": "completed",
            },
            {
                "name": "invoke_node tools",
                "parent": "invoke_workflow LangGraph",
                "status": "UNSET",
                "otelstream.node": "tools",
                "otelstream.outcome": "completed",
            },
            {
                "name": "execute_tool lookup",
                "parent": "invoke_node tools",
                "status": "UNSET",
                "gen_ai.operation.name": "execute_tool",
                "otelstream.outcome": "completed",
            },
            {
                "name": "chat FakeListChatModel",
                "parent": "execute_tool lookup",
                "status": "UNSET",
                "gen_ai.operation.name": "chat",
                "otelstream.node": "tools",
                "otelstream.outcome": "completed",
            },
            {
                "name": "invoke_node agent",
                "parent": "invoke_workflow LangGraph",
                "status": "UNSET",
                "otelstream.node": "agent",
                "otelstream.outcome": "completed",
            },
            {
                "name": "chat m-1",
                "parent": "invoke_node agent",
                "status": "UNSET",
                "gen_ai.operation.name": "chat",
                "otelstream.node": "agent",
                "otelstream.outcome": "completed",
            },
        ]
    )


def test_replay_of_an_otlp_file_gives_back_the_messages_stream(tmp_path: Any) -> None:
    path = tmp_path / "agent.otlp.jsonl"
    otelstream.configure(export=otelstream.ExportOptions(file=str(path)))
    try:
        model = GenericFakeChatModel(messages=iter([AIMessage("tokens from a file")]))
        graph = _one_node(lambda s: {"messages": [model.invoke(s["messages"])]})
        modes = ["messages", "updates"]
        streamed = list(graph.stream({"messages": [HumanMessage("hi", id="h")]}, stream_mode=modes))
    finally:
        otelstream.shutdown()
        otelstream.configure()
    replayed = otelstream.replay(path)
    assert list(replayed) == streamed
    assert replayed.complete and replayed.gaps == []
