"""Instrument the official ``openai`` client: chat completions as streamed LLM calls.

::

    from otelstream.integrations.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument()      # idempotent; uninstrument() undoes it

Every ``client.chat.completions.create(...)`` (sync and async) then gets a ``chat {model}``
span with GenAI attributes and metrics, and inside a graph node its tokens appear in
``stream_mode="messages"`` like a LangChain model's. A streamed response is wrapped in a
proxy that behaves like the client's ``Stream`` / ``AsyncStream``: its chunks are recorded
as the application reads them; the end of the stream ends the span, a broken stream ends it
with the error (which still reaches the application), closing it early ends it
``abandoned``. A non-streamed response is recorded as one chunk.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import wrapt

from otelstream.llm import LLMStream, llm_call
from otelstream.telemetry import semconv
from otelstream.telemetry._safe import handle_internal_errors
from otelstream.telemetry._sdk import is_suppressed

__all__ = ["OpenAIInstrumentor"]

logger = logging.getLogger("otelstream")

_MODULE = "openai.resources.chat.completions.completions"
_TARGETS = ("Completions.create", "AsyncCompletions.create")
_PROVIDER = "openai"
_REQUEST_ATTRIBUTES = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
}


def _start(instance: Any, kwargs: dict[str, Any]) -> LLMStream:
    attributes: dict[str, Any] = {}
    with handle_internal_errors("reading an OpenAI request"):
        for key, name in _REQUEST_ATTRIBUTES.items():
            value = kwargs.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                attributes[name] = value
        attributes[semconv.GEN_AI_REQUEST_STREAM] = bool(kwargs.get("stream"))
        url = getattr(getattr(instance, "_client", None), "base_url", None)
        if url is not None and getattr(url, "host", None):
            attributes["server.address"] = url.host
            if url.port is not None:
                attributes["server.port"] = url.port
    model = kwargs.get("model")
    call = llm_call(
        model=model if isinstance(model, str) and model else "unknown",
        provider=_PROVIDER,
        input_messages=kwargs.get("messages"),
        attributes=attributes,
    )
    # the span starts before the request: time to first chunk includes the round trip
    return call.start()


class _State:
    """What a response said about itself across its chunks."""

    __slots__ = ("finish_reason", "input_tokens", "model", "output_tokens", "response_id")

    def __init__(self) -> None:
        self.finish_reason: str | None = None
        self.model: str | None = None
        self.response_id: str | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None

    def finish(self, call: LLMStream) -> None:
        call.finish(
            finish_reason=self.finish_reason,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            response_model=self.model,
            response_id=self.response_id,
        )


def _usage(state: _State, usage: Any) -> None:
    if usage is not None:
        state.input_tokens = getattr(usage, "prompt_tokens", None)
        state.output_tokens = getattr(usage, "completion_tokens", None)


def _record_chunk(call: LLMStream, state: _State, chunk: Any) -> None:
    state.model = getattr(chunk, "model", None) or state.model
    state.response_id = getattr(chunk, "id", None) or state.response_id
    _usage(state, getattr(chunk, "usage", None))
    for choice in getattr(chunk, "choices", None) or ():
        if getattr(choice, "index", 0) != 0:
            continue  # the messages stream carries one answer: the first choice's
        if choice.finish_reason:
            state.finish_reason = choice.finish_reason
        delta = choice.delta
        content = getattr(delta, "content", None) or ""
        calls = [
            {
                "name": getattr(tc.function, "name", None) if tc.function is not None else None,
                "args": getattr(tc.function, "arguments", None) if tc.function is not None else None,
                "id": tc.id,
                "index": tc.index,
            }
            for tc in getattr(delta, "tool_calls", None) or ()
        ]
        if content or calls:
            call.chunk(content, tool_call_chunks=calls or None)


def _record_completion(call: LLMStream, completion: Any) -> None:
    state = _State()
    with handle_internal_errors("recording an OpenAI completion"):
        state.model = getattr(completion, "model", None)
        state.response_id = getattr(completion, "id", None)
        _usage(state, getattr(completion, "usage", None))
        choices = getattr(completion, "choices", None) or ()
        if choices:
            state.finish_reason = choices[0].finish_reason
            content = choices[0].message.content
            if content:
                call.chunk(content)
    state.finish(call)


class _SyncStream(wrapt.ObjectProxy[Any]):
    """The client's ``Stream``, recording each chunk; ends the call exactly once."""

    def __init__(self, stream: Any, call: LLMStream) -> None:
        super().__init__(stream)
        self._self_call = call
        self._self_state = _State()

    def __iter__(self) -> _SyncStream:
        return self

    def __next__(self) -> Any:
        try:
            chunk = self.__wrapped__.__next__()
        except StopIteration:
            self._self_state.finish(self._self_call)
            raise
        except Exception as exc:
            self._self_call.fail(exc)
            raise
        with handle_internal_errors("recording an OpenAI chunk"):
            _record_chunk(self._self_call, self._self_state, chunk)
        return chunk

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_call.abandon()

    def __enter__(self) -> _SyncStream:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        error = exc_info[1]
        if isinstance(error, Exception):
            self._self_call.fail(error)
        try:
            self.close()
        except Exception:
            if error is None:
                raise
            # the application's exception wins over the stream's close error


class _AsyncStream(wrapt.ObjectProxy[Any]):
    """The client's ``AsyncStream``, recording each chunk; ends the call exactly once."""

    def __init__(self, stream: Any, call: LLMStream) -> None:
        super().__init__(stream)
        self._self_call = call
        self._self_state = _State()

    def __aiter__(self) -> _AsyncStream:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            self._self_state.finish(self._self_call)
            raise
        except Exception as exc:
            self._self_call.fail(exc)
            raise
        with handle_internal_errors("recording an OpenAI chunk"):
            _record_chunk(self._self_call, self._self_state, chunk)
        return chunk

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_call.abandon()

    async def __aenter__(self) -> _AsyncStream:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        error = exc_info[1]
        if isinstance(error, Exception):
            self._self_call.fail(error)
        try:
            await self.close()
        except Exception:
            if error is None:
                raise
            # the application's exception wins over the stream's close error


def _sync_create(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    if is_suppressed():  # an exporter's own call, or the application silenced instrumentation
        return wrapped(*args, **kwargs)
    call = _start(instance, kwargs)
    try:
        result = wrapped(*args, **kwargs)
    except Exception as exc:
        call.fail(exc)
        raise
    if kwargs.get("stream"):
        return _SyncStream(result, call)
    _record_completion(call, result)
    return result


async def _async_create(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    if is_suppressed():  # an exporter's own call, or the application silenced instrumentation
        return await wrapped(*args, **kwargs)
    call = _start(instance, kwargs)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        if isinstance(exc, Exception):
            call.fail(exc)
        else:
            call.abandon()
        raise
    if kwargs.get("stream"):
        return _AsyncStream(result, call)
    _record_completion(call, result)
    return result


class OpenAIInstrumentor:
    """Wraps ``Completions.create`` and ``AsyncCompletions.create`` of the ``openai`` client.

    A process-wide singleton, like OpenTelemetry's instrumentors: ``instrument()`` and
    ``uninstrument()`` are idempotent (a repeated call logs a warning and does nothing).
    """

    _instance: OpenAIInstrumentor | None = None
    _lock = threading.Lock()
    _instrumented = False

    def __new__(cls) -> OpenAIInstrumentor:
        """Return the one instance."""
        with cls._lock:
            if cls._instance is None:
                cls._instance = super().__new__(cls)
            return cls._instance

    @property
    def is_instrumented(self) -> bool:
        """Whether the client is currently wrapped."""
        return type(self)._instrumented

    def instrument(self) -> None:
        """Wrap the client's chat completions.

        Raises:
            ImportError: the ``openai`` package is not installed.
        """
        with self._lock:
            if type(self)._instrumented:
                logger.warning("OpenAIInstrumentor: already instrumented")
                return
            try:
                import openai.resources.chat.completions.completions  # noqa: F401, PLC0415 - imported when instrumenting
            except ImportError as exc:
                raise ImportError(
                    "OpenAIInstrumentor needs the openai package: pip install 'otelstream[openai]'"
                ) from exc

            wrapt.wrap_function_wrapper(_MODULE, _TARGETS[0], _sync_create)
            wrapt.wrap_function_wrapper(_MODULE, _TARGETS[1], _async_create)
            type(self)._instrumented = True

    def uninstrument(self) -> None:
        """Restore the client's own methods (the same targets, in the same order)."""
        with self._lock:
            if not type(self)._instrumented:
                logger.warning("OpenAIInstrumentor: not instrumented")
                return
            from openai.resources.chat.completions import completions  # noqa: PLC0415 - instrumented: importable

            for target in _TARGETS:
                owner_name, method = target.split(".")
                owner = getattr(completions, owner_name)
                original = getattr(owner.__dict__[method], "__wrapped__", None)
                if original is not None:  # wrapt's FunctionWrapper keeps the original there
                    setattr(owner, method, original)
            type(self)._instrumented = False
