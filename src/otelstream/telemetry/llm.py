"""LLM and tool calls in OpenTelemetry: ``chat {model}`` / ``execute_tool {tool}`` spans, GenAI metrics.

One :class:`LLMCall` records one model call whatever made it (LangChain's callbacks,
otelstream's :func:`otelstream.llm.llm_call`, the OpenAI instrumentor): the span nests under
the node span current when the call started; every streamed chunk becomes a ``messages``
stream record (when a consumer streams that mode) in the span's context, so backends
correlate tokens with their call; the GenAI client metrics are recorded when it ends.

Prompt and completion text reach spans only when ``configure(capture_message_content=True)``
or, unset, ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` asks for it (off by default,
as the GenAI conventions require); the ``messages`` stream records follow otelstream's payload
settings like every other chunk, since they are the stream itself.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind

from otelstream.engine.events import Outcome, RunInfo, Task
from otelstream.telemetry import environment, semconv
from otelstream.telemetry._safe import handle_internal_errors
from otelstream.telemetry.codec import encode
from otelstream.telemetry.messages import emit_message
from otelstream.telemetry.pipeline import Pipeline, SpanHandle, Streams, StreamTarget, start_span
from otelstream.telemetry.redact import MARKER, Redactor

__all__ = ["LLMCall", "ToolCall", "capture_content", "stop_calls"]

# the LLM calls still open, per root run: a consumer that stops reading ends them at once
_OPEN: dict[str, set[LLMCall]] = {}
_OPEN_LOCK = threading.Lock()


def capture_content(pipeline: Pipeline) -> bool:
    """Return whether message content goes on LLM and tool spans.

    ``configure(capture_message_content=...)`` decides; unset, the GenAI variable
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` does (off by default). Metadata-only
    telemetry (``payloads="none"``) never carries content.
    """
    if not pipeline.payloads:
        return False
    if pipeline.capture_content is not None:
        return pipeline.capture_content
    return environment.CAPTURE_MESSAGE_CONTENT.get()


def stop_calls(root_run_id: str, outcome: Outcome) -> None:
    """End every LLM call still open in the run tree of ``root_run_id`` with ``outcome``."""
    with _OPEN_LOCK:
        calls = list(_OPEN.pop(root_run_id, ()))
    for call in calls:
        call.end(outcome=outcome)


def _json(value: Any, redactor: Redactor | None) -> str:
    # message content is redacted as payloads are: credential keys and credential-shaped text
    if redactor is None:
        return json.dumps(value, default=str, ensure_ascii=False)
    return json.dumps(redactor.redact(value), default=lambda obj: redactor.scrub(str(obj)), ensure_ascii=False)


def _redacted_attributes(attributes: dict[str, Any], redactor: Redactor | None) -> dict[str, Any]:
    # request attributes the caller chose: a header or a URL among them may carry a credential
    if redactor is None:
        return attributes
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        if redactor.secret_key(key):
            out[key] = MARKER
        else:
            out[key] = redactor.scrub(value) if isinstance(value, str) else value
    return out


class LLMCall:
    """One model call: its span, its streamed chunks, its metrics. Thread-safe enough for one producer.

    ``end()`` is idempotent; chunks after it are ignored (a consumer that abandoned the run
    ended the call early).
    """

    __slots__ = (
        "_chunks",
        "_ended",
        "_first",
        "_last",
        "_lock",
        "_metadata_json",
        "_metric_attrs",
        "_root",
        "_started",
        "handle",
        "metadata",
        "model",
        "pipeline",
        "provider",
        "run",
        "streams",
        "targets",
        "task",
    )

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        model: str,
        provider: str,
        run: RunInfo | None = None,
        task: Task | None = None,
        streams: Streams | None = None,
        targets: Sequence[StreamTarget] = (),
        metadata: dict[str, Any] | None = None,
        input_messages: Any = None,
        parent: SpanHandle | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        """Start the ``chat {model}`` span under ``parent`` (default: the current context).

        Args:
            pipeline: Where telemetry goes.
            model: The requested model name.
            provider: The ``gen_ai.provider.name`` (``openai``, ...).
            run: The run the call is made in, if any.
            task: The task the call is made in, if any: its stream gets the chunks.
            streams: The streams of the run tree of ``task``: they get the chunks, and end
                the call if their consumer stops reading.
            targets: The consumers that get this call's chunks in ``messages`` mode.
            metadata: The chunks' metadata (the second item of each ``messages`` tuple).
            input_messages: The prompt, recorded only if content capture is on.
            parent: The span to nest under, instead of the current one.
            attributes: More span attributes (request parameters).
        """
        self.pipeline = pipeline
        self.run = run
        self.task = task
        self.model = model
        self.provider = provider
        self.streams = streams
        self.targets = list(targets)
        self.metadata = metadata or {}
        self._metadata_json: str | None = None
        self._lock = threading.Lock()
        self._ended = False
        self._chunks = 0
        self._first: float | None = None
        self._last: float | None = None
        self._started = time.monotonic()
        self._metric_attrs: dict[str, Any] = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_CHAT,
            semconv.GEN_AI_PROVIDER_NAME: provider,
            semconv.GEN_AI_REQUEST_MODEL: model,
        }
        span_attrs: dict[str, Any] = {**self._metric_attrs, semconv.GEN_AI_REQUEST_STREAM: True}
        if task is not None:
            span_attrs[semconv.NODE] = task.name
            span_attrs[semconv.TASK_ID] = task.id
        if attributes:
            span_attrs.update(_redacted_attributes(attributes, pipeline.redactor))
        if input_messages is not None and capture_content(pipeline):
            span_attrs[semconv.GEN_AI_INPUT_MESSAGES] = _json(input_messages, pipeline.redactor)
        parent_context = parent.context if parent is not None else otel_context.get_current()
        self.handle = start_span(
            pipeline,
            f"{semconv.OPERATION_CHAT} {model}",
            parent_context,
            kind=SpanKind.CLIENT,
            attributes=span_attrs,
        )
        self._root: str | None = None
        if run is not None and streams is not None:
            self._root = streams.root_run_id or run.run_id
            with _OPEN_LOCK:
                _OPEN.setdefault(self._root, set()).add(self)

    @property
    def ended(self) -> bool:
        """Whether the call has ended (normally, with an error, or because its run stopped)."""
        return self._ended

    def chunk(self, message: Any) -> None:
        """Record one streamed chunk and emit it as a ``messages`` chunk; its id becomes seen."""
        now = time.monotonic()
        with self._lock:
            if self._ended:
                return
            self._chunks += 1
            previous = self._last
            self._last = now
            if self._first is None:
                self._first = now
        with handle_internal_errors("recording an LLM chunk"):
            metrics = self.pipeline.metrics
            if metrics is not None:
                if previous is None:
                    metrics.genai.time_to_first_chunk.record(now - self._started, self._metric_attrs)
                else:
                    metrics.genai.time_per_output_chunk.record(now - previous, self._metric_attrs)
            self._emit(message, dedupe=False)

    def result(self, message: Any) -> None:
        """Emit a whole (not streamed) result, unless a consumer already saw its id."""
        if self._ended:
            return
        with handle_internal_errors("recording an LLM result"):
            self._emit(message, dedupe=True)

    def _emit(self, message: Any, *, dedupe: bool) -> None:
        run, task, streams = self.run, self.task, self.streams
        if run is None or task is None or streams is None or not self.targets:
            return
        if self._metadata_json is None and self.pipeline.encode_payloads:
            # the same for every token of the call: encoded once (the per-token cost halves)
            self._metadata_json = encode(self.metadata, self.pipeline.redactor)
        emit_message(
            streams,
            run,
            task,
            self.targets,
            message,
            self.metadata,
            dedupe=dedupe,
            handle=self.handle,
            metadata_json=self._metadata_json,
        )

    def end(
        self,
        *,
        error: BaseException | None = None,
        outcome: Outcome | None = None,
        finish_reasons: Sequence[str] = (),
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        response_model: str | None = None,
        response_id: str | None = None,
        output_text: str | None = None,
    ) -> None:
        """End the span (once) and record the metrics.

        Args:
            error: What the call raised; the outcome is then ``failed``.
            outcome: How it ended, when not by ``error`` (default ``completed``).
            finish_reasons: The provider's finish reasons (``stop``, ``tool_calls``, ...).
            input_tokens: Prompt tokens, when the provider reported them.
            output_tokens: Completion tokens, when reported.
            response_model: The model that answered, when reported.
            response_id: The provider's id of the response.
            output_text: The completion, recorded only if content capture is on.
        """
        with self._lock:
            if self._ended:
                return
            self._ended = True
        if self._root is not None:
            with _OPEN_LOCK:
                calls = _OPEN.get(self._root)
                if calls is not None:
                    calls.discard(self)
                    if not calls:
                        del _OPEN[self._root]
        final: Outcome = outcome or ("failed" if error is not None else "completed")
        with handle_internal_errors("ending an LLM span"):
            duration = time.monotonic() - self._started
            span = self.handle.span
            span.set_attribute(semconv.LLM_CHUNKS, self._chunks)
            if self._first is not None:
                span.set_attribute(semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, self._first - self._started)
            if finish_reasons:
                span.set_attribute(semconv.GEN_AI_RESPONSE_FINISH_REASONS, list(finish_reasons))
            if input_tokens is not None:
                span.set_attribute(semconv.GEN_AI_USAGE_INPUT_TOKENS, input_tokens)
            if output_tokens is not None:
                span.set_attribute(semconv.GEN_AI_USAGE_OUTPUT_TOKENS, output_tokens)
            if response_model:
                span.set_attribute(semconv.GEN_AI_RESPONSE_MODEL, response_model)
            if response_id:
                span.set_attribute(semconv.GEN_AI_RESPONSE_ID, response_id)
            if output_text is not None and capture_content(self.pipeline):
                output = [{"role": "assistant", "parts": [{"type": "text", "content": output_text}]}]
                span.set_attribute(semconv.GEN_AI_OUTPUT_MESSAGES, _json(output, self.pipeline.redactor))
            self.handle.end(final, error)
            metrics = self.pipeline.metrics
            if metrics is None:
                return
            attrs = dict(self._metric_attrs)
            if response_model:
                attrs[semconv.GEN_AI_RESPONSE_MODEL] = response_model
            if final == "failed" and error is not None:
                attrs[semconv.ERROR_TYPE] = type(error).__qualname__
            elif final != "completed":
                attrs[semconv.ERROR_TYPE] = final
            metrics.genai.operation_duration.record(duration, attrs)
            for kind, count in (("input", input_tokens), ("output", output_tokens)):
                if count is not None:
                    metrics.genai.token_usage.record(count, {**attrs, semconv.GEN_AI_TOKEN_TYPE: kind})


class ToolCall:
    """One tool execution: an ``execute_tool {tool}`` span and its duration metric."""

    __slots__ = ("_ended", "_lock", "_started", "handle", "name", "pipeline")

    def __init__(
        self,
        pipeline: Pipeline,
        name: str,
        *,
        call_id: str | None = None,
        description: str | None = None,
        arguments: Any = None,
        parent: SpanHandle | None = None,
    ) -> None:
        """Start the span under ``parent`` (default: the current context)."""
        self.pipeline = pipeline
        self.name = name
        self._lock = threading.Lock()
        self._ended = False
        self._started = time.monotonic()
        attrs: dict[str, Any] = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_EXECUTE_TOOL,
            semconv.GEN_AI_TOOL_NAME: name,
            semconv.GEN_AI_TOOL_TYPE: "function",
        }
        if call_id:
            attrs[semconv.GEN_AI_TOOL_CALL_ID] = call_id
        if description:
            attrs[semconv.GEN_AI_TOOL_DESCRIPTION] = description
        if arguments is not None and capture_content(pipeline):
            attrs[semconv.GEN_AI_TOOL_CALL_ARGUMENTS] = _json(arguments, pipeline.redactor)
        parent_context = parent.context if parent is not None else otel_context.get_current()
        self.handle = start_span(pipeline, f"{semconv.OPERATION_EXECUTE_TOOL} {name}", parent_context, attributes=attrs)

    def end(self, *, error: BaseException | None = None, result: Any = None) -> None:
        """End the span (once); ``error`` marks it failed."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
        with handle_internal_errors("ending a tool span"):
            if result is not None and capture_content(self.pipeline):
                self.handle.span.set_attribute(semconv.GEN_AI_TOOL_CALL_RESULT, _json(result, self.pipeline.redactor))
            outcome: Outcome = "failed" if error is not None else "completed"
            self.handle.end(outcome, error)
            metrics = self.pipeline.metrics
            if metrics is not None:
                attrs: dict[str, Any] = {
                    semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_EXECUTE_TOOL,
                    semconv.GEN_AI_TOOL_NAME: self.name,
                    semconv.GEN_AI_TOOL_TYPE: "function",
                }
                if error is not None:
                    attrs[semconv.ERROR_TYPE] = type(error).__qualname__
                metrics.genai.tool_duration.record(time.monotonic() - self._started, attrs)
