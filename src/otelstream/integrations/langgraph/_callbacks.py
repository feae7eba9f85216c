"""LangChain chat models and tools in LangGraph nodes: their spans, through otelstream's handler.

One :class:`SpanHandler` per instrumented run is added to each task's callback manager (as
an inheritable handler: a model called in the node, or in a tool the node runs, reaches
it). LangChain's managers keep a handler once however often it is added, so a subgraph's
tasks, which inherit their parent task's handlers, do not record a call twice.

It records spans and GenAI metrics only: the ``messages`` chunks are LangGraph's own, and
the handler is not a streaming one, so chat models keep the API LangGraph chose for them.
"""

from __future__ import annotations

from typing import Any

from otelstream.integrations.langchain import OtelstreamCallbackHandler
from otelstream.telemetry import semconv
from otelstream.telemetry.pipeline import Pipeline, Streams

__all__ = ["SpanHandler"]


class SpanHandler(OtelstreamCallbackHandler):
    """``chat {model}`` and ``execute_tool {tool}`` spans for the models and tools of one run."""

    def __init__(self, pipeline: Pipeline) -> None:
        """Record into ``pipeline``; spans nest under the span current at each call (the task's)."""
        super().__init__(Streams(pipeline, []), None, None)

    def _call_attributes(self, metadata: dict[str, Any]) -> dict[str, Any] | None:
        # the task is known from LangGraph's metadata: the node, and the task id ending the ns
        attributes: dict[str, Any] = {}
        node = metadata.get("langgraph_node")
        if isinstance(node, str):
            attributes[semconv.NODE] = node
        ns = metadata.get("langgraph_checkpoint_ns")
        if isinstance(ns, str) and ":" in ns:
            attributes[semconv.TASK_ID] = ns.rsplit("|", 1)[-1].rsplit(":", 1)[-1]
        return attributes or None
