"""LangChain chat models and tools inside nodes: their tokens in ``messages``, their spans.

While a node runs, LangChain's ``var_child_runnable_config`` holds the task's config with a
callback handler of otelstream's, exactly as LangGraph hands its nodes a config: so a model
called without a config (``model.invoke(messages)``) finds it, and so do tools run by
``ToolNode`` and models called inside those tools. The handler:

* starts a ``chat {model}`` span per chat model run and an ``execute_tool {tool}`` span per
  tool run (a model inside a tool nests under the tool's span);
* when some consumer streams ``messages``, subclasses LangChain's
  ``_StreamingCallbackHandler``, which makes ``BaseChatModel.invoke()`` stream internally
  (LangGraph's handler does the same), and emits each token, then the whole result if no
  token carried its id — LangGraph's ``StreamMessagesHandler`` rules, ``nostream`` tag included.

Importing this module imports ``langchain_core``; otelstream imports it only once the
application has loaded LangChain (see :mod:`otelstream.integrations`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager, CallbackManager
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, GenerationChunk, LLMResult
from langchain_core.runnables.config import var_child_runnable_config
from langchain_core.tracers._streaming import _StreamingCallbackHandler

from otelstream.engine.events import RunInfo, Task
from otelstream.telemetry._safe import handle_internal_errors
from otelstream.telemetry.llm import LLMCall, ToolCall, capture_content
from otelstream.telemetry.messages import node_metadata, user_tags
from otelstream.telemetry.pipeline import Streams

__all__ = ["OtelstreamCallbackHandler", "task_scope"]

T = TypeVar("T")
_NOSTREAM = "nostream"


def _no_write(_: Any) -> None:
    """LangChain callbacks never write ``custom`` chunks."""


def _as_parts(messages: list[list[BaseMessage]]) -> list[dict[str, Any]]:
    # the GenAI conventions' input message shape: role and text parts
    return [{"role": m.type, "parts": [{"type": "text", "content": m.content}]} for batch in messages for m in batch]


def _model_name(serialized: dict[str, Any] | None, metadata: dict[str, Any], kwargs: dict[str, Any]) -> str:
    params = kwargs.get("invocation_params") or {}
    for value in (metadata.get("ls_model_name"), params.get("model"), params.get("model_name")):
        if isinstance(value, str) and value:
            return value
    name = (serialized or {}).get("name")
    return name if isinstance(name, str) and name else "unknown"


def _with_checkpoint_ns(metadata: dict[str, Any], task: Task) -> dict[str, Any]:
    # LangChain copies configurable["checkpoint_ns"] into a run's metadata, after the config's
    # metadata and before the model's ls_* keys; a node that passes its own config to a model
    # hands over otelstream's task config, which has no checkpoint_ns: add it where it goes
    if "checkpoint_ns" in metadata:
        return metadata
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if key == "ls_provider":
            out["checkpoint_ns"] = task.checkpoint_ns
        out[key] = value
    out.setdefault("checkpoint_ns", task.checkpoint_ns)
    return out


def _finish_reasons(generation: ChatGeneration) -> list[str]:
    info = generation.generation_info or {}
    meta = generation.message.response_metadata or {}
    for value in (info.get("finish_reason"), meta.get("finish_reason"), meta.get("stop_reason")):
        if isinstance(value, str) and value:
            return [value]
    return []


class OtelstreamCallbackHandler(BaseCallbackHandler):
    """Records the chat models and tools a task runs; see the module docstring.

    Callbacks run inline (``run_inline``) on the thread or event loop of the model call, so
    tokens are emitted in order, while the node runs.
    """

    run_inline = True

    def __init__(self, streams: Streams, run: RunInfo | None, task: Task | None) -> None:
        """Record into ``streams`` for ``task`` of ``run`` (both None: spans only, no chunks)."""
        super().__init__()
        self._streams = streams
        self._run = run
        self._task = task
        self._calls: dict[UUID, LLMCall] = {}
        self._tools: dict[UUID, ToolCall] = {}

    @property
    def ignore_chain(self) -> bool:
        """Chains are the node's own code: the node span already covers them."""
        return True

    @property
    def ignore_retriever(self) -> bool:
        """Retrievers are not recorded."""
        return True

    # --- chat models ----------------------------------------------------------------------

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Start the call's span; pick the consumers its tokens go to."""
        with handle_internal_errors("starting a LangChain chat model span"):
            meta = dict(metadata or {})
            if self._task is not None:
                meta = _with_checkpoint_ns(meta, self._task)
            targets = []
            if not tags or _NOSTREAM not in tags:
                if self._run is not None:
                    targets = self._streams.targets_for(self._run.namespace, "messages")
                if (filtered := user_tags(tags)) is not None:
                    meta["tags"] = filtered
            parent = self._tools.get(parent_run_id) if parent_run_id is not None else None
            self._calls[run_id] = LLMCall(
                self._streams.pipeline,
                run=self._run,
                task=self._task,
                streams=self._streams,
                model=_model_name(serialized, meta, kwargs),
                provider=str(meta.get("ls_provider") or "langchain"),
                targets=targets,
                metadata=meta,
                input_messages=_as_parts(messages) if capture_content(self._streams.pipeline) else None,
                parent=parent.handle if parent is not None else None,
                attributes=self._call_attributes(meta),
            )

    def _call_attributes(self, metadata: dict[str, Any]) -> dict[str, Any] | None:
        """Return more attributes for a chat model span (none here; the task gives node and id)."""
        return None

    def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: GenerationChunk | ChatGenerationChunk | None = None,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Emit the token's message chunk."""
        call = self._calls.get(run_id)
        if call is not None and isinstance(chunk, ChatGenerationChunk):
            call.chunk(chunk.message)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> Any:
        """Emit the whole result if no token carried its id; end the span with usage and finish reason."""
        call = self._calls.pop(run_id, None)
        if call is None:
            return
        with handle_internal_errors("ending a LangChain chat model span"):
            generation = response.generations[0][0] if response.generations and response.generations[0] else None
            if not isinstance(generation, ChatGeneration):
                call.end()
                return
            message = generation.message
            call.result(message)
            usage = getattr(message, "usage_metadata", None) or {}
            meta = message.response_metadata or {}
            model = meta.get("model_name") or meta.get("model")
            response_id = meta.get("id")
            call.end(
                finish_reasons=_finish_reasons(generation),
                input_tokens=usage.get("input_tokens"),
                output_tokens=usage.get("output_tokens"),
                response_model=model if isinstance(model, str) else None,
                response_id=response_id if isinstance(response_id, str) else None,
                output_text=message.text if capture_content(self._streams.pipeline) else None,
            )

    def on_llm_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> Any:
        """End the span with the model's error."""
        call = self._calls.pop(run_id, None)
        if call is not None:
            call.end(error=error)

    # --- tools ----------------------------------------------------------------------------

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Start the tool's ``execute_tool`` span."""
        with handle_internal_errors("starting a tool span"):
            parent = self._tools.get(parent_run_id) if parent_run_id is not None else None
            name = (serialized or {}).get("name") or kwargs.get("name") or "tool"
            call_id = kwargs.get("tool_call_id")
            self._tools[run_id] = ToolCall(
                self._streams.pipeline,
                str(name),
                call_id=call_id if isinstance(call_id, str) else None,
                description=(serialized or {}).get("description"),
                arguments=inputs if inputs is not None else input_str,
                parent=parent.handle if parent is not None else None,
            )

    def on_tool_end(self, output: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> Any:
        """End the tool's span."""
        tool = self._tools.pop(run_id, None)
        if tool is not None:
            tool.end(result=getattr(output, "content", output))

    def on_tool_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> Any:
        """End the tool's span with its error."""
        tool = self._tools.pop(run_id, None)
        if tool is not None:
            tool.end(error=error)


class _StreamingHandler(OtelstreamCallbackHandler, _StreamingCallbackHandler[Any]):
    """The handler when a consumer streams ``messages``: chat models then stream internally."""

    def tap_output_aiter(self, run_id: UUID, output: AsyncIterator[T]) -> AsyncIterator[T]:
        """Pass the output through (tokens arrive by ``on_llm_new_token``)."""
        return output

    def tap_output_iter(self, run_id: UUID, output: Iterator[T]) -> Iterator[T]:
        """Pass the output through (tokens arrive by ``on_llm_new_token``)."""
        return output


def _user_handlers(callbacks: Any) -> list[BaseCallbackHandler]:
    if isinstance(callbacks, BaseCallbackManager):
        return list(callbacks.inheritable_handlers)
    if isinstance(callbacks, (list, tuple)):
        return [h for h in callbacks if isinstance(h, BaseCallbackHandler)]
    return []


@contextlib.contextmanager
def _config_scope(config: dict[str, Any]) -> Iterator[None]:
    token = var_child_runnable_config.set(config)  # type: ignore[arg-type]  # a RunnableConfig dict
    try:
        yield
    finally:
        var_child_runnable_config.reset(token)


def task_scope(task: Task, run: RunInfo, streams: Streams) -> contextlib.AbstractContextManager[None]:
    """Return the scope that shows ``task``'s config, with otelstream's handler, to LangChain.

    The handler streams (so ``invoke()`` yields tokens) when any consumer of the run tree
    streams ``messages``, as LangGraph's handler does, even if this graph's tokens are not
    wanted: message ids then follow LangGraph's (``lc_run--<uuid>``, not ``...-0``).
    """
    streaming = any("messages" in t.modes for t in streams.targets)
    handler = (_StreamingHandler if streaming else OtelstreamCallbackHandler)(streams, run, task)
    task_config = task.config
    metadata = node_metadata(task)
    tags = list(task_config.get("tags") or ())
    # the application's own callbacks (config["callbacks"]: a tracer, a cost counter) see the
    # node's model and tool runs too, as under LangGraph
    handlers: list[BaseCallbackHandler] = [*_user_handlers(task_config.get("callbacks")), handler]
    # a manager, not a list: its inheritable tags and metadata are merged with a model's own
    # (``with_config(tags=[...])`` gives ``[run tags..., model tags...]``), as under LangGraph
    manager = CallbackManager(
        handlers=list(handlers),
        inheritable_handlers=list(handlers),
        tags=list(tags),
        inheritable_tags=list(tags),
        metadata=dict(metadata),
        inheritable_metadata=dict(metadata),
    )
    config = {
        "callbacks": manager,
        "metadata": metadata,
        "tags": tags,
        # LangChain copies checkpoint_ns into the metadata of runs it starts, as under LangGraph
        "configurable": {**task_config.get("configurable", {}), "checkpoint_ns": task.checkpoint_ns},
        "recursion_limit": task_config.get("recursion_limit", 25),
    }
    return _config_scope(config)
