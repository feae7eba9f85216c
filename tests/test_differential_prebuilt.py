"""The prebuilt agent pieces against LangGraph's: add_messages, MessagesState, ToolNode, tools_condition."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, RemoveMessage
from langchain_core.tools import tool

from tests.differential import LANGGRAPH, LIBS, OTEL, Lib, Result, assert_same, normalize


def _reduce(lib: Lib, left: Any, right: Any) -> Result:
    try:
        return Result([lib.add_messages(left, right)])
    except Exception as exc:
        return Result([], exc)


CASES = [
    ("append", [HumanMessage("a", id="1")], [AIMessage("b", id="2")]),
    ("replace by id", [HumanMessage("a", id="1"), AIMessage("b", id="2")], [AIMessage("B", id="2")]),
    ("remove", [HumanMessage("a", id="1"), AIMessage("b", id="2")], [RemoveMessage(id="1")]),
    ("remove then re-add", [HumanMessage("a", id="1")], [RemoveMessage(id="1"), HumanMessage("again", id="1")]),
    (
        "remove all",
        [HumanMessage("a", id="1")],
        [AIMessage("x", id="9"), RemoveMessage(id="__remove_all__"), AIMessage("y", id="3")],
    ),
    ("unknown remove", [HumanMessage("a", id="1")], [RemoveMessage(id="nope")]),
    ("single values", HumanMessage("a", id="1"), AIMessage("b", id="2")),
    ("message-likes", [], [("user", "hi"), {"role": "assistant", "content": "yo", "id": "d"}, "plain"]),
    ("chunks become messages", [], [AIMessageChunk(content="part", id="c")]),
    ("ids assigned", [HumanMessage("a")], [AIMessage("b")]),
]


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value.model_copy() if hasattr(value, "model_copy") else value


@pytest.mark.parametrize(("left", "right"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_add_messages(left: Any, right: Any) -> None:
    results = {}
    for lib in LIBS:
        # each engine gets its own copies: ids are assigned in place
        results[lib.name] = normalize(_reduce(lib, _copy(left), _copy(right)))
    assert results[OTEL.name] == results[LANGGRAPH.name]


def test_add_messages_needs_both_sides() -> None:
    for lib in LIBS:
        with pytest.raises(ValueError, match="Must specify non-null arguments for both 'left' and 'right'"):
            lib.add_messages([HumanMessage("a")], None)


def test_messages_state_graph_coerces_input() -> None:
    def build(lib: Lib) -> Any:
        graph = lib.StateGraph(lib.MessagesState)
        graph.add_node("echo", lambda s: {"messages": [("ai", f"saw {len(s['messages'])}")]})
        graph.add_edge(lib.START, "echo")
        return graph.compile()

    assert_same(
        build, {"messages": [("user", "hi"), {"role": "user", "content": "there"}]}, stream_mode=["values", "updates"]
    )


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def _tool_graph(lib: Lib, calls: list[dict[str, Any]], **kwargs: Any) -> Any:
    graph = lib.StateGraph(lib.MessagesState)
    graph.add_node("agent", lambda s: {"messages": [AIMessage("", tool_calls=calls, id="ai-1")]})
    graph.add_node(lib.ToolNode([add], **kwargs))
    graph.add_edge(lib.START, "agent")
    graph.add_conditional_edges("agent", lib.tools_condition)
    return graph.compile()


@pytest.mark.parametrize("handle_tool_errors", [None, True, False, "custom text", ValueError, (TypeError,)], ids=repr)
def test_tool_node_error_handling(handle_tool_errors: Any) -> None:
    kwargs = {} if handle_tool_errors is None else {"handle_tool_errors": handle_tool_errors}
    calls = [
        {"name": "add", "args": {"a": "not a number", "b": 1}, "id": "c-1"},
        {"name": "gone", "args": {}, "id": "c-2"},
    ]
    assert_same(lambda lib: _tool_graph(lib, calls, **kwargs), {"messages": []}, stream_mode="updates")


def test_tool_node_takes_a_message_list() -> None:
    from otelstream import ToolNode

    message = AIMessage("", tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "c-1"}])
    (output,) = ToolNode([add])([message])
    assert (output.content, output.name, output.tool_call_id, output.status) == ("3", "add", "c-1", "success")


def test_tools_condition_routes_and_rejects_empty_state() -> None:
    with_calls = AIMessage("", tool_calls=[{"name": "add", "args": {}, "id": "c"}])
    for lib in LIBS:
        assert lib.tools_condition({"messages": [with_calls]}) == "tools"
        assert lib.tools_condition([AIMessage("done")]) == "__end__"
        with pytest.raises(ValueError, match="No messages found in input state to tool_edge"):
            lib.tools_condition({"messages": []})


def test_tool_node_rejects_what_is_not_a_tool() -> None:
    from otelstream import ToolNode

    with pytest.raises(TypeError, match="ToolNode takes LangChain tools or functions, got int"):
        ToolNode([3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="needs an AIMessage as the last message, got HumanMessage"):
        ToolNode([add])({"messages": [HumanMessage("x")]})


@tool
async def slow_add(a: int, b: int) -> int:
    """Add two numbers, asynchronously."""
    return a + b


async def test_async_only_tools_under_astream_and_stream() -> None:
    from tests.differential import assert_same_async

    def build(lib: Lib) -> Any:
        graph = lib.StateGraph(lib.MessagesState)
        calls = [{"name": "slow_add", "args": {"a": 2, "b": 3}, "id": "c-1"}]
        graph.add_node("agent", lambda s: {"messages": [AIMessage("", tool_calls=calls, id="ai-1")]})
        graph.add_node(lib.ToolNode([slow_add]))
        graph.add_edge(lib.START, "agent")
        graph.add_conditional_edges("agent", lib.tools_condition)
        return graph.compile()

    chunks, error = await assert_same_async(build, {"messages": []}, stream_mode="updates")
    assert error is None and chunks[-1]["tools"]["messages"][0][1]["content"] == "5"
    from otelstream import ToolNode

    (message,) = ToolNode([slow_add])(
        [AIMessage("", tool_calls=[{"name": "slow_add", "args": {"a": 1, "b": 1}, "id": "c"}])]
    )
    assert message.content == "2"


def test_add_messages_refuses_the_openai_format() -> None:
    from otelstream import add_messages

    with pytest.raises(ValueError, match=r"unsupported arguments \['format'\]"):
        add_messages([], [HumanMessage("a")], format="langchain-openai")


@pytest.mark.parametrize("lib", LIBS, ids=str)
@pytest.mark.parametrize("modes", [["updates", "values"], ["updates", "values", "messages"]], ids=["", "messages"])
def test_a_returned_message_without_an_id_carries_its_id_in_the_update_already(lib: Lib, modes: list[Any]) -> None:
    # chat UIs key messages on the id: the update must show the one values shows later
    def node(state: Any) -> dict[str, Any]:
        return {"messages": [AIMessage("hi"), ("user", "a tuple stays a tuple in the update")]}

    builder = lib.StateGraph(lib.MessagesState)
    builder.add_node("n", node)
    builder.add_edge(lib.START, "n")
    seen: list[tuple[str, Any]] = []
    for mode, chunk in builder.compile().stream({"messages": []}, stream_mode=modes):
        if mode == "updates":
            message, raw = chunk["n"]["messages"]
            seen.append(("updates", message.id))  # read as the chunk is yielded
            assert raw == ("user", "a tuple stays a tuple in the update")
        elif mode == "values" and chunk["messages"]:
            seen.append(("values", chunk["messages"][0].id))
        elif mode == "messages":
            seen.append(("messages", chunk[0].id))
    ids = {kind: value for kind, value in seen}
    assert ids["updates"] is not None
    assert ids["updates"] == ids["values"] == ids.get("messages", ids["values"])
