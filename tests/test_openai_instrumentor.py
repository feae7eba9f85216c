"""The OpenAI instrumentor with the real ``openai`` client against a local SSE server process."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan

from otelstream import START, MessagesState, StateGraph
from otelstream.integrations.openai import OpenAIInstrumentor
from otelstream.telemetry import semconv
from tests.conftest import Telemetry

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.openai_server"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()  # by its pid: only the process this fixture started
        server.wait(10)
        if server.stdout is not None:
            server.stdout.close()


@pytest.fixture
def instrumented() -> Iterator[OpenAIInstrumentor]:
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument()
    yield instrumentor
    instrumentor.uninstrument()


def _client(base_url: str) -> Any:  # Any: these tests pass loosely typed messages
    return openai.OpenAI(base_url=base_url, api_key="test", max_retries=0, timeout=10)


def _chat_spans(telemetry: Telemetry) -> list[ReadableSpan]:
    return [s for s in telemetry.spans.get_finished_spans() if s.name.startswith("chat ")]


def _graph(node: Any) -> Any:
    graph = StateGraph(MessagesState)
    graph.add_node("llm", node)
    graph.add_edge(START, "llm")
    return graph.compile()


def _ask(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def test_streamed_tokens_reach_the_messages_stream(
    base_url: str, instrumented: OpenAIInstrumentor, telemetry: Telemetry
) -> None:
    client = _client(base_url)

    def node(state: Any) -> Any:
        stream = client.chat.completions.create(
            model="gpt-local", messages=_ask("tokens 4"), stream=True, stream_options={"include_usage": True}
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        return {"messages": [{"role": "ai", "content": text}]}

    chunks = list(_graph(node).stream({"messages": []}, stream_mode="messages"))
    tokens = [c for c in chunks if c[1].get("ls_provider") == "openai"]
    assert [m.content for m, _ in tokens] == ["t0 ", "t1 ", "t2 ", "t3 ", ""]
    assert len({m.id for m, _ in tokens}) == 1
    last, metadata = tokens[-1]
    assert last.chunk_position == "last" and last.response_metadata["finish_reason"] == "stop"
    assert metadata["langgraph_node"] == "llm" and metadata["ls_model_name"] == "gpt-local"
    (span,) = _chat_spans(telemetry)
    attrs = dict(span.attributes or {})
    assert span.name == "chat gpt-local"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 5 and attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 4
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == "chatcmpl-local"
    assert attrs["server.address"] == "127.0.0.1"
    assert attrs[semconv.OUTCOME] == "completed"


def test_a_broken_stream_reaches_the_app_and_fails_the_span(
    base_url: str, instrumented: OpenAIInstrumentor, telemetry: Telemetry
) -> None:
    client = _client(base_url)
    seen: list[str] = []

    def node(state: Any) -> Any:
        for chunk in client.chat.completions.create(model="gpt-local", messages=_ask("break 3"), stream=True):
            seen.append(chunk.choices[0].delta.content or "")
        return None

    streamed: list[Any] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in _graph(node).stream({"messages": []}, stream_mode="messages"):
            streamed.append(chunk)
    assert seen == ["", "t0 ", "t1 ", "t2 "]
    assert [m.content for m, _ in streamed] == ["t0 ", "t1 ", "t2 "]
    (span,) = _chat_spans(telemetry)
    assert span.status.status_code.name == "ERROR"
    assert dict(span.attributes or {})[semconv.OUTCOME] == "failed"


async def test_async_client_in_an_async_node(
    base_url: str, instrumented: OpenAIInstrumentor, telemetry: Telemetry
) -> None:
    client: Any = openai.AsyncOpenAI(base_url=base_url, api_key="test", max_retries=0, timeout=10)

    async def node(state: Any) -> Any:
        stream = await client.chat.completions.create(model="gpt-local", messages=_ask("tool"), stream=True)
        async with stream:
            async for _ in stream:
                pass
        return None

    chunks = [c async for c in _graph(node).astream({"messages": []}, stream_mode="messages")]
    calls = [m.tool_call_chunks for m, _ in chunks]
    assert calls[0] == [{"name": "add", "args": "", "id": "call_1", "index": 0, "type": "tool_call_chunk"}]
    assert calls[1][0]["args"] == '{"a": 1}'
    assert chunks[-1][0].response_metadata["finish_reason"] == "tool_calls"
    (span,) = _chat_spans(telemetry)
    assert dict(span.attributes or {})[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_calls",)
    await client.close()


def test_non_streamed_completion_and_early_close(
    base_url: str, instrumented: OpenAIInstrumentor, telemetry: Telemetry
) -> None:
    client = _client(base_url)
    answer = client.chat.completions.create(model="gpt-local", messages=_ask("hello there"))
    assert answer.choices[0].message.content == "hello there"
    with client.chat.completions.create(model="gpt-early", messages=_ask("tokens 50"), stream=True) as stream:
        next(iter(stream))
    spans = {s.name: dict(s.attributes or {}) for s in _chat_spans(telemetry)}
    assert spans["chat gpt-local"][semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 1
    assert spans["chat gpt-local"][semconv.GEN_AI_REQUEST_STREAM] is False
    assert spans["chat gpt-early"][semconv.OUTCOME] == "abandoned"


def test_instrument_uninstrument_are_idempotent(
    base_url: str, telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    client = _client(base_url)
    instrumentor = OpenAIInstrumentor()
    assert instrumentor is OpenAIInstrumentor()

    def ask() -> None:
        client.chat.completions.create(model="m", messages=_ask("x"))

    instrumentor.instrument()
    with caplog.at_level(logging.WARNING, logger="otelstream"):
        instrumentor.instrument()
    assert "already instrumented" in caplog.text
    ask()
    assert len(_chat_spans(telemetry)) == 1
    instrumentor.uninstrument()
    instrumentor.uninstrument()
    ask()
    assert len(_chat_spans(telemetry)) == 1
    instrumentor.instrument()
    ask()
    assert len(_chat_spans(telemetry)) == 2
    # suppressed instrumentation (an exporter's own calls) records nothing
    token = otel_context.attach(otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        ask()
    finally:
        otel_context.detach(token)
    assert len(_chat_spans(telemetry)) == 2
    instrumentor.uninstrument()
    assert not instrumentor.is_instrumented


# --- the stream proxy on its own: STYLE's wrapper checklist ------------------------------------


class _FakeStream:
    """Stands for the client's Stream: yields chunks, may fail on close."""

    def __init__(self, chunks: list[Any], close_error: Exception | None = None) -> None:
        self._chunks = iter(chunks)
        self.close_error = close_error
        self.closed = False

    def __next__(self) -> Any:
        return next(self._chunks)

    def close(self) -> None:
        self.closed = True
        if self.close_error is not None:
            raise self.close_error


def _delta_chunk(text: str) -> Any:
    from openai.types.chat import ChatCompletionChunk

    return ChatCompletionChunk.model_validate(
        {
            "id": "x",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
        }
    )


def _proxy(stream: _FakeStream) -> Any:
    from otelstream.integrations.openai import _SyncStream
    from otelstream.llm import llm_call

    return _SyncStream(stream, llm_call(model="proxy", provider="openai").start())


def _outcome(telemetry: Telemetry) -> Any:
    (span,) = _chat_spans(telemetry)
    return dict(span.attributes or {})[semconv.OUTCOME]


def test_proxy_user_exception_wins_over_close_error(telemetry: Telemetry) -> None:
    stream = _FakeStream([_delta_chunk("a")], close_error=RuntimeError("close failed"))
    with pytest.raises(ValueError, match="user"), _proxy(stream) as proxy:
        next(proxy)
        raise ValueError("user")
    assert stream.closed and _outcome(telemetry) == "failed"


def test_proxy_close_error_propagates_and_ends_the_call(telemetry: Telemetry) -> None:
    proxy = _proxy(_FakeStream([_delta_chunk("a")], close_error=RuntimeError("close failed")))
    with pytest.raises(RuntimeError, match="close failed"):
        proxy.close()
    assert _outcome(telemetry) == "abandoned"


def test_proxy_exhausted_then_closed_ends_once(telemetry: Telemetry) -> None:
    proxy = _proxy(_FakeStream([_delta_chunk("a"), _delta_chunk("b")]))
    assert [c.choices[0].delta.content for c in proxy] == ["a", "b"]
    proxy.close()
    assert _outcome(telemetry) == "completed"
    assert dict(_chat_spans(telemetry)[0].attributes or {})[semconv.LLM_CHUNKS] == 3  # two tokens, the last


def test_proxy_our_recording_error_is_swallowed(telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTELSTREAM_RAISE_INTERNAL")

    class Weird:
        @property
        def choices(self) -> Any:
            raise KeyError("otelstream cannot read this chunk")

    weird = Weird()
    proxy = _proxy(_FakeStream([weird]))
    assert next(proxy) is weird  # the application still gets its chunk
    with pytest.raises(StopIteration):
        next(proxy)
    assert _outcome(telemetry) == "completed"


def test_unsampled_runs_still_stream_llm_tokens() -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    from otelstream import llm_call
    from tests.conftest import make_telemetry

    telemetry = make_telemetry(ALWAYS_OFF)
    try:

        def node(state: Any) -> Any:
            with llm_call(model="m", provider="p") as call:
                call.chunk("hidden")
            return None

        chunks = list(_graph(node).stream({"messages": []}, stream_mode="messages"))
        assert [c[0].content for c in chunks] == ["hidden", ""]
        assert telemetry.spans.get_finished_spans() == () or not _chat_spans(telemetry)
        assert telemetry.logs.get_finished_logs() == ()
    finally:
        import otelstream

        otelstream.configure()


def test_instrument_without_the_openai_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    instrumentor = OpenAIInstrumentor()
    assert not instrumentor.is_instrumented
    monkeypatch.setitem(sys.modules, "openai.resources.chat.completions.completions", None)
    with pytest.raises(ImportError, match=r"pip install 'otelstream\[openai\]'"):
        instrumentor.instrument()
    assert not instrumentor.is_instrumented
