"""A tool-calling agent whose answer streams token by token, with no network and no API key.

Run it with ``python examples/agent.py`` (needs the ``langchain`` extra for the prebuilt
pieces). The "model" is a scripted local generator recorded with :func:`otelstream.stream_llm`,
so its tokens reach ``stream_mode="messages"`` exactly like a LangChain chat model's; the
tool runs in :class:`otelstream.ToolNode`. At the end the script prints the trace it
exported: ``chat`` spans for the model calls and an ``execute_tool`` span for the tool,
each under its node's span.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otelstream
from otelstream import START, CompiledStateGraph, MessagesState, StateGraph, ToolNode, stream_llm, tools_condition


@tool
def get_weather(city: str) -> str:
    """Return today's weather for a city."""
    return f"{city}: sunny, 21 degrees"


@stream_llm(model="scripted-1", provider="local")
def scripted_model(text: str) -> Iterator[str]:
    """A stand-in for a real model: streams ``text`` word by word, as a provider would."""
    for index, word in enumerate(text.split(" ")):
        time.sleep(0.02)  # tokens take time to arrive
        yield word if index == 0 else " " + word


def agent(state: MessagesState) -> dict[str, Any]:
    last = state["messages"][-1]
    if isinstance(last, ToolMessage):
        text = "".join(scripted_model(f"The weather report says: {last.content}. Enjoy your day!"))
        return {"messages": [AIMessage(text)]}
    # the first turn asks for the tool, as a model with bound tools would
    call = {"name": "get_weather", "args": {"city": "Oslo"}, "id": "call-1"}
    return {"messages": [AIMessage("", tool_calls=[call])]}


def build() -> CompiledStateGraph:
    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node(ToolNode([get_weather]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile()


def main() -> None:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    otelstream.configure(tracer_provider=tracer_provider, logger_provider=LoggerProvider())

    question = {"messages": [HumanMessage("What's the weather in Oslo?")]}
    for mode, chunk in build().stream(question, stream_mode=["messages", "updates"]):
        if mode == "messages":
            message, metadata = chunk
            if metadata.get("ls_integration") == "otelstream":  # tokens, not whole node outputs
                sys.stdout.write(str(message.content))
                sys.stdout.flush()
        else:
            for node, update in chunk.items():
                for message in (update or {}).get("messages", []):
                    if isinstance(message, ToolMessage):
                        print(f"[{node}] tool result: {message.content}")
                    elif isinstance(message, AIMessage) and message.tool_calls:
                        print(f"[{node}] calls {[c['name'] for c in message.tool_calls]}")
    print()

    by_id = {s.context.span_id: s for s in spans.get_finished_spans() if s.context is not None}
    print("\nexported spans:")
    for span in sorted(spans.get_finished_spans(), key=lambda s: s.start_time or 0):
        parent = by_id.get(span.parent.span_id) if span.parent is not None else None
        print(f"  {span.name:<28} under {parent.name if parent is not None else '-'}")
    otelstream.configure()


if __name__ == "__main__":
    main()
