"""A real LangGraph agent, instrumented: what Phoenix stores after a real collector hop replays to what the app saw.

app (LangGraph + LangGraphInstrumentor) --OTLP/HTTP--> rotel --OTLP/gRPC--> Phoenix --REST--> otelstream.replay
"""

from __future__ import annotations

import uuid
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.config import get_stream_writer
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

import otelstream
from otelstream.integrations.langgraph import LangGraphInstrumentor
from tests.e2e.conftest import Phoenix, wait_for_complete_run

MODES = ["messages", "updates", "custom"]


@tool
def lookup(city: str) -> str:
    """Look a city's weather up."""
    get_stream_writer()({"progress": 1, "total": 1, "message": f"looked {city} up"})
    return f"{city}: sunny"


def agent_graph() -> Any:
    """agent (a LangChain fake chat model that calls a tool, then streams its answer) <-> tools."""
    call = {"name": "lookup", "args": {"city": "Oslo"}, "id": "call-1", "type": "tool_call"}
    planner = FakeMessagesListChatModel(responses=[AIMessage("", tool_calls=[call])])
    writer = GenericFakeChatModel(messages=iter([AIMessage("Oslo is sunny today.")]))

    def agent(state: MessagesState) -> dict[str, Any]:
        model = writer if isinstance(state["messages"][-1], ToolMessage) else planner
        get_stream_writer()({"stage": "agent", "turn": len(state["messages"])})
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([lookup]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile(name="weather_agent")


def test_phoenix_replays_the_stream_an_instrumented_langgraph_app_saw(
    phoenix: Phoenix, otlp_app: None, project: str
) -> None:
    # Phoenix stores traces only: the streamed modes travel as span events
    otelstream.configure(export=otelstream.ExportOptions(otlp=True), span_event_modes=MODES)
    instrumentor = LangGraphInstrumentor()
    instrumentor.instrument()
    try:
        run_id = str(uuid.uuid4())
        streamed = list(
            agent_graph().stream(
                {"messages": [HumanMessage("Weather in Oslo?", id="h-1")]}, {"run_id": run_id}, stream_mode=MODES
            )
        )
    finally:
        instrumentor.uninstrument()
    assert otelstream.force_flush()

    # the in-process stream has tokens, the tool's message, the updates and the custom writes
    assert {mode for mode, _ in streamed} == set(MODES)
    tokens = "".join(str(chunk[0].content) for mode, chunk in streamed if mode == "messages")
    assert "Oslo is sunny today." in tokens
    assert [next(iter(c)) for mode, c in streamed if mode == "updates"] == ["agent", "tools", "agent"]

    wait_for_complete_run(phoenix, project, run_id)
    replayed = otelstream.replay(phoenix.url, project=project, run_id=run_id)
    assert list(replayed) == streamed
    assert replayed.complete
    assert (replayed.gaps, replayed.truncated, replayed.notes) == ([], [], [])
    [run] = [r for r in otelstream.runs(phoenix.url, project=project) if r.run_id == run_id]
    assert (run.graph, run.outcome, run.stream_modes) == ("weather_agent", "completed", tuple(MODES))
