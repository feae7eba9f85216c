"""Stream any LLM's tokens through otelstream, with or without LangChain.

Tokens recorded here appear in ``stream_mode="messages"`` exactly like a LangChain chat
model's: ``(AIMessageChunk, metadata)`` tuples, one id per call, the node's metadata, the
last chunk marked ``chunk_position="last"``; and each call gets a ``chat {model}`` span with
GenAI attributes and metrics. Three equivalent forms::

    from otelstream.llm import llm_call, stream_llm

    @stream_llm(model="my-model", provider="acme")     # a generator of str tokens
    def generate(prompt):
        yield from my_client.tokens(prompt)

    def node(state):
        text = "".join(generate(state["prompt"]))       # tokens stream while this runs
        ...

    with llm_call(model="my-model", provider="acme") as call:
        for token in my_client.tokens(prompt):
            call.chunk(token)
        call.finish(finish_reason="stop", input_tokens=12, output_tokens=40)
        answer = call.message                           # an AIMessage with the call's id

    async for token in llm_call(model="m", provider="acme").awrap(my_async_tokens()):
        ...

Items may be ``str`` tokens or message chunks (LangChain's ``AIMessageChunk`` or
otelstream's). With ``langchain-core`` installed chunks are LangChain's ``AIMessageChunk``;
without it, :class:`otelstream.telemetry.messages.AIMessageChunk`, which has the same fields.
Outside a graph the call is traced, but there is no stream to feed.
"""

from __future__ import annotations

import functools
import inspect
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from otelstream._config import current_pipeline
from otelstream.engine.runtime import current_task_context
from otelstream.telemetry._safe import handle_internal_errors
from otelstream.telemetry.llm import LLMCall
from otelstream.telemetry.messages import AIMessageChunk, is_message, llm_metadata
from otelstream.telemetry.observer import streams_of

__all__ = ["LLMStream", "llm_call", "stream_llm"]

P = ParamSpec("P")
T = TypeVar("T")
INTEGRATION = "otelstream"
"""``ls_integration`` of tokens recorded through this module."""


def _langchain_classes() -> tuple[Any, Any] | None:
    try:
        from langchain_core.messages import AIMessage  # noqa: PLC0415 - LangChain is an optional extra
        from langchain_core.messages import AIMessageChunk as LCChunk  # noqa: PLC0415 - optional too
    except ImportError:
        return None
    return LCChunk, AIMessage


class LLMStream:
    """One streamed LLM call; see the module docstring. Use once, from one thread or task."""

    def __init__(
        self, *, model: str, provider: str, input_messages: Any = None, attributes: dict[str, Any] | None = None
    ) -> None:
        """Describe the call; it starts on ``__enter__`` or on the first chunk.

        Raises:
            TypeError: ``model`` or ``provider`` is not a non-empty string.
        """
        for name, value in (("model", model), ("provider", provider)):
            if not isinstance(value, str) or not value:
                raise TypeError(f"llm_call() needs {name} as a non-empty str, got {value!r}")
        self.model = model
        self.provider = provider
        self.id = f"run--{uuid.uuid4()}"
        self.text = ""
        self._input = input_messages
        self._attributes = attributes
        self._call: LLMCall | None = None
        self._finished = False
        self._classes = _langchain_classes()

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> LLMStream:
        """Start the span (idempotent); called by ``__enter__`` and the first chunk."""
        if self._call is None:
            ctx = current_task_context()
            with handle_internal_errors("starting an LLM span"):
                streams = streams_of(ctx)
                if ctx is not None and streams is not None:
                    pipeline = streams.pipeline
                    targets = streams.targets_for(ctx.run.namespace, "messages")
                    metadata = llm_metadata(ctx.task, provider=self.provider, model=self.model, integration=INTEGRATION)
                else:
                    pipeline, targets, metadata = current_pipeline(), [], {}
                self._call = LLMCall(
                    pipeline,
                    model=self.model,
                    provider=self.provider,
                    run=ctx.run if ctx is not None else None,
                    task=ctx.task if ctx is not None else None,
                    streams=streams,
                    targets=targets,
                    metadata=metadata,
                    input_messages=self._input,
                    attributes=self._attributes,
                )
        return self

    def __enter__(self) -> LLMStream:
        return self.start()

    @property
    def ended(self) -> bool:
        """Whether the call is over: finished, failed, or ended because the stream's consumer left.

        A generator can check it to stop pulling tokens (and paying for them) nobody reads.
        """
        return self._finished or (self._call is not None and self._call.ended)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.finish()
        elif isinstance(exc, GeneratorExit):
            self._end(outcome="abandoned")
        elif isinstance(exc, Exception):
            self._end(error=exc)
        else:
            self._end(outcome="cancelled")

    def _end(self, **kwargs: Any) -> None:
        self._finished = True
        if self._call is not None:
            self._call.end(**kwargs)

    def fail(self, error: BaseException) -> None:
        """End the call as failed with ``error`` (recorded on the span); idempotent."""
        if not self._finished:
            self.start()
            self._end(error=error)

    def abandon(self) -> None:
        """End the call as ``abandoned``: its reader stopped before the end; idempotent."""
        if not self._finished:
            self.start()
            self._end(outcome="abandoned")

    # --- chunks ---------------------------------------------------------------------------

    def _make_chunk(self, content: str, **fields: Any) -> Any:
        if self._classes is not None:
            return self._classes[0](content=content, id=self.id, **fields)
        return AIMessageChunk(content=content, id=self.id, **fields)

    def chunk(self, item: Any, *, tool_call_chunks: list[dict[str, Any]] | None = None) -> None:
        """Record one streamed item: a ``str`` token or a message chunk.

        ``tool_call_chunks`` (LangChain's ``{"name", "args", "id", "index"}`` dicts) go on the
        chunk made from a ``str`` token: a streamed tool call.

        Raises:
            TypeError: ``item`` is neither (nothing is recorded).
            RuntimeError: the call already finished.
        """
        if self._finished:
            raise RuntimeError("llm_call(): chunk() after finish()")
        if isinstance(item, str):
            message = (
                self._make_chunk(item, tool_call_chunks=tool_call_chunks)
                if tool_call_chunks
                else self._make_chunk(item)
            )
            self.text += item
        elif is_message(item):
            message = item
            if getattr(message, "id", None) is None:
                message.id = self.id
            content = getattr(message, "content", "")
            self.text += content if isinstance(content, str) else ""
        else:
            raise TypeError(f"an LLM stream yields str tokens or message chunks, got {type(item).__name__}: {item!r}")
        self.start()
        if self._call is not None:
            self._call.chunk(message)

    def finish(
        self,
        *,
        finish_reason: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        response_model: str | None = None,
        response_id: str | None = None,
    ) -> None:
        """End the call: emit the last (empty) chunk, with the usage and finish reason, then end the span.

        Idempotent: later calls do nothing.
        """
        if self._finished:
            return
        self.start()
        response_metadata: dict[str, Any] = {"model_name": response_model or self.model}
        if finish_reason is not None:
            response_metadata["finish_reason"] = finish_reason
        fields: dict[str, Any] = {"response_metadata": response_metadata, "chunk_position": "last"}
        if input_tokens is not None and output_tokens is not None:
            fields["usage_metadata"] = {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
            }
        if self._call is not None:
            self._call.chunk(self._make_chunk("", **fields))
        self._end(
            finish_reasons=[finish_reason] if finish_reason else [],
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            response_model=response_model,
            response_id=response_id,
            output_text=self.text,
        )

    @property
    def message(self) -> Any:
        """The whole answer so far as an ``AIMessage`` with the call's id (a node may return it).

        Without LangChain, an otelstream ``AIMessageChunk`` holding the whole text.
        """
        if self._classes is not None:
            return self._classes[1](content=self.text, id=self.id)
        return AIMessageChunk(content=self.text, id=self.id)

    # --- iterator forms -------------------------------------------------------------------

    def wrap(self, source: Iterable[T]) -> Iterator[T]:
        """Yield ``source``'s items, recording each; finish when it is exhausted."""
        with self:
            for item in source:
                self.chunk(item)
                yield item

    async def awrap(self, source: AsyncIterable[T]) -> AsyncIterator[T]:
        """Async version of :meth:`wrap`."""
        with self:
            async for item in source:
                self.chunk(item)
                yield item


def llm_call(
    *, model: str, provider: str, input_messages: Any = None, attributes: dict[str, Any] | None = None
) -> LLMStream:
    """Return a streamed LLM call to record chunks into; see the module docstring.

    Args:
        model: The requested model (``gen_ai.request.model``, the span name).
        provider: The provider (``gen_ai.provider.name``, ``ls_provider`` in metadata).
        input_messages: The prompt, recorded on the span only if message content capture is on.
        attributes: More span attributes (request parameters such as ``gen_ai.request.temperature``).
    """
    return LLMStream(model=model, provider=provider, input_messages=input_messages, attributes=attributes)


def stream_llm(*, model: str, provider: str) -> Callable[[Callable[P, Any]], Callable[P, Any]]:
    """Decorate a generator function (sync or async) of tokens: each call is one streamed LLM call.

    Raises:
        TypeError: the decorated function is not a generator function.
    """
    llm_call(model=model, provider=provider)  # validates the arguments now

    def decorate(func: Callable[P, Any]) -> Callable[P, Any]:
        if inspect.isasyncgenfunction(func):

            @functools.wraps(func)
            def agen(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[Any]:
                return llm_call(model=model, provider=provider).awrap(func(*args, **kwargs))

            return agen
        if inspect.isgeneratorfunction(func):

            @functools.wraps(func)
            def gen(*args: P.args, **kwargs: P.kwargs) -> Iterator[Any]:
                return llm_call(model=model, provider=provider).wrap(func(*args, **kwargs))

            return gen
        raise TypeError(f"@stream_llm decorates generator functions (def with yield), got {func!r}")

    return decorate
