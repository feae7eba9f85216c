"""Prebuilt pieces of the standard tool-calling agent, with LangGraph's behaviour.

``MessagesState`` / ``add_messages`` keep a conversation, ``ToolNode`` runs the tool calls
of the last AI message, ``tools_condition`` routes to it::

    from otelstream import END, START, StateGraph
    from otelstream.prebuilt import MessagesState, ToolNode, tools_condition

    graph = StateGraph(MessagesState)
    graph.add_node("agent", call_model)
    graph.add_node(ToolNode([search]))          # named "tools"
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")

They need LangChain messages and tools: install ``otelstream[langchain]``.
"""

from __future__ import annotations

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by a subprocess test
    raise ImportError(
        "otelstream.prebuilt needs langchain-core (LangChain messages and tools): "
        "install it with `pip install 'otelstream[langchain]'`"
    ) from exc

from otelstream.prebuilt._messages import REMOVE_ALL_MESSAGES, MessagesState, add_messages
from otelstream.prebuilt._tool_node import ToolInvocationError, ToolNode, tools_condition

__all__ = [
    "REMOVE_ALL_MESSAGES",
    "MessagesState",
    "ToolInvocationError",
    "ToolNode",
    "add_messages",
    "tools_condition",
]
