"""A LangChain chat model for the token workloads: N tokens, no network, optional pacing.

Imported only by the workloads that call a model (``tokens_10k``, ``paced_tokens``,
``agent``): importing ``langchain_core`` switches on otelstream's LangChain integration, which
the other workloads must not pay for.

A node calls it as an application would, ``model.invoke(messages)`` with no config: LangGraph
and otelstream both hand the node's config to LangChain through ``var_child_runnable_config``,
and both attach a ``_StreamingCallbackHandler`` when ``messages`` is streamed, which makes
``BaseChatModel.invoke()`` run :meth:`BenchChatModel._stream` and report every chunk to the
callbacks (``on_llm_new_token``). Outside ``messages`` mode ``invoke()`` calls
:meth:`BenchChatModel._generate`, which returns the same message in one piece.

The last chunk carries ``chunk_position="last"`` so that LangChain does not append an empty
closing chunk of its own: a call of ``tokens`` tokens yields exactly ``tokens`` chunks, and
``messages`` mode exactly ``tokens`` chunks per call on either engine.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.tracers._streaming import _StreamingCallbackHandler

__all__ = ["BenchChatModel", "HumanMessage", "NullStreamingHandler", "ToolMessage", "invoke_floor"]


class BenchChatModel(BaseChatModel):
    """Streams ``tokens`` chunks; asks for a tool while the conversation has fewer than ``tool_rounds`` tool results.

    Attributes:
        tokens: Chunks per call.
        pace_s: If > 0, chunk ``i`` is produced at ``start + i * pace_s`` (sleeping until then).
        stamp: If true, every chunk's content is ``str(time.perf_counter_ns())`` taken just before
            the chunk is made (emit→yield latency); otherwise ``"tok{i} "``.
        tool_rounds: While the input holds fewer ``ToolMessage`` s than this, the last chunk
            carries a ``search`` tool call (an agent loop's "act" turn); then none (its "answer").
    """

    tokens: int = 10
    pace_s: float = 0.0
    stamp: bool = False
    tool_rounds: int = 0

    @property
    def _llm_type(self) -> str:
        return "otelstream-bench"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": "bench-model", "tokens": self.tokens}

    def _tool_call(self, messages: list[BaseMessage]) -> dict[str, Any] | None:
        done = sum(1 for m in messages if isinstance(m, ToolMessage))
        if done >= self.tool_rounds:
            return None
        return {"name": "search", "args": {"q": f"question {done + 1}"}, "id": f"call_{done + 1}"}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        content = "".join(f"tok{i} " for i in range(self.tokens))
        call = self._tool_call(messages)
        message = AIMessage(content=content, tool_calls=[call] if call else [])
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        # LangChain's BaseChatModel reports each chunk to the callbacks (on_llm_new_token)
        # itself when it drives _stream from invoke(); a model must not report it again
        call = self._tool_call(messages)
        last = self.tokens - 1
        pace = self.pace_s
        start = time.perf_counter()
        for i in range(self.tokens):
            if pace > 0:
                delay = start + i * pace - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            content = str(time.perf_counter_ns()) if self.stamp else f"tok{i} "
            if i < last:
                yield ChatGenerationChunk(message=AIMessageChunk(content=content))
                continue
            tool_call_chunks = []
            if call is not None:
                tool_call_chunks = [
                    {"name": call["name"], "args": json.dumps(call["args"]), "id": call["id"], "index": 0}
                ]
            yield ChatGenerationChunk(
                message=AIMessageChunk(content=content, tool_call_chunks=tool_call_chunks, chunk_position="last")
            )


class NullStreamingHandler(BaseCallbackHandler, _StreamingCallbackHandler):
    """Makes ``invoke()`` stream, as LangGraph's and otelstream's ``messages`` handlers do; counts tokens."""

    run_inline = True

    def __init__(self) -> None:
        super().__init__()
        self.tokens = 0

    def on_llm_new_token(self, token: str | list[str | dict[str, Any]], **kwargs: Any) -> None:
        self.tokens += 1

    def tap_output_iter(self, run_id: Any, output: Iterator[Any]) -> Iterator[Any]:
        return output

    def tap_output_aiter(self, run_id: Any, output: Any) -> Any:
        return output


def invoke_floor(tokens: int) -> int:
    """One ``model.invoke()`` of ``tokens`` tokens with a no-op streaming handler, no graph.

    The floor under the ``messages`` workloads: the model's chunks and LangChain's callback
    path cost this much on any engine. Returns the tokens the handler saw.
    """
    handler = NullStreamingHandler()
    _FLOOR_MODELS.setdefault(tokens, BenchChatModel(tokens=tokens)).invoke(
        [HumanMessage("hi")], config={"callbacks": [handler]}
    )
    return handler.tokens


_FLOOR_MODELS: dict[int, BenchChatModel] = {}
