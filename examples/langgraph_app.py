"""An unmodified LangGraph agent, instrumented by otelstream: its stream goes to the terminal and to telemetry.

Run it with ``python examples/langgraph_app.py`` (needs ``pip install 'otelstream[langgraph]'``;
no network, no API key). The graph is plain LangGraph: a LangChain fake chat model that calls
a tool, a ``ToolNode``, a node reporting progress. Two lines instrument it; everything it
streams (``messages`` tokens, ``updates``, ``custom`` progress) is printed as it arrives and,
chunk for chunk, written to ``otelstream-telemetry/langgraph.otlp.jsonl`` (OTLP-JSON), or sent
to ``OTEL_EXPORTER_OTLP_ENDPOINT`` when that is set. Then::

    otelstream replay otelstream-telemetry/langgraph.otlp.jsonl --run-id <printed id>

prints the same stream again, rebuilt from the file alone.
"""

from __future__ import annotations

import argparse
import os
import uuid
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

import otelstream
from otelstream.integrations.langgraph import LangGraphInstrumentor


@tool
def get_weather(city: str) -> str:
    """Return today's weather for a city."""
    return f"{city}: sunny, 21 degrees"


def build() -> Any:
    """The application's own LangGraph graph: nothing in it knows about otelstream."""
    call = {"name": "get_weather", "args": {"city": "Oslo"}, "id": "call-1", "type": "tool_call"}
    # stand-ins for a real model: one turn asks for the tool, the next streams the answer
    planner = FakeMessagesListChatModel(responses=[AIMessage("", tool_calls=[call])])
    writer = GenericFakeChatModel(
        messages=iter([AIMessage("The weather report says Oslo is sunny at 21 degrees. Enjoy your day!")])
    )

    def agent(state: MessagesState) -> dict[str, Any]:
        model = writer if isinstance(state["messages"][-1], ToolMessage) else planner
        return {"messages": [model.invoke(state["messages"])]}

    def report(state: MessagesState) -> dict[str, Any]:
        for done in range(1, 4):
            # a progress signal: a custom chunk that also feeds otelstream's progress metrics
            otelstream.write_progress(done, 3, unit="sections", message=f"report section {done}/3")
        return {}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([get_weather]))
    graph.add_node("report", report)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition, {"tools": "tools", "__end__": "report"})
    graph.add_edge("tools", "agent")
    return graph.compile(name="weather_agent")


def main() -> int:
    """Instrument LangGraph, stream the agent to the terminal, flush the telemetry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--telemetry", default="otelstream-telemetry/langgraph.otlp.jsonl", help="OTLP-JSON file")
    args = parser.parse_args()
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not endpoint:
        os.makedirs(os.path.dirname(args.telemetry) or ".", exist_ok=True)
    otelstream.configure(
        export=otelstream.ExportOptions(file=None if endpoint else args.telemetry, otlp=True if endpoint else None),
        service_name="weather-agent",
    )
    LangGraphInstrumentor().instrument()  # the two lines an existing app adds (with the import)

    run_id = str(uuid.uuid4())
    inputs = {"messages": [HumanMessage("What's the weather in Oslo?")]}
    for mode, chunk in build().stream(inputs, {"run_id": run_id}, stream_mode=["messages", "updates", "custom"]):
        if mode == "messages":
            token, _metadata = chunk
            if isinstance(token, AIMessageChunk) and token.content:
                print(token.content, end="\n" if token.chunk_position == "last" else "", flush=True)
        elif mode == "updates":
            print(f"[updates] {', '.join(chunk)}")
        else:
            print(f"[progress] {chunk['message']}")
    otelstream.shutdown()  # flush the exporters
    if endpoint:
        print(f"Telemetry of run {run_id} sent to {endpoint}")
    else:
        print(f"Replay it: otelstream replay {args.telemetry} --run-id {run_id}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
