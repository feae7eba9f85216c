"""``stream_mode="messages"`` on otelstream and on LangGraph: same chunks, same metadata, same ids.

Message ids are random on both sides (``lc_run--<uuid>``, uuids assigned to node outputs);
the harness numbers every uuid in order of first appearance, so a token's id must match the
id of the message the node returns, and a rebuilt message must carry a new one.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    FakeMessagesListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool

from tests.differential import LANGGRAPH, OTEL, Lib, assert_same, assert_same_async

CONFIG = {
    "metadata": {"session": "s-9"},
    "tags": ["run-tag"],
    "configurable": {"thread_id": "t-1", "user_id": "u-1"},
}


class Plain(TypedDict):
    messages: Annotated[list[Any], operator.add]


def _generic(text: str) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([AIMessage(text)]))


def _one_llm_node(model_factory: Any, *, node_metadata: dict[str, Any] | None = None) -> Any:
    def build(lib: Lib) -> Any:
        model = model_factory()

        def llm(state: Any) -> Any:
            return {"messages": [model.invoke(state["messages"])]}

        graph = lib.StateGraph(lib.MessagesState)
        graph.add_node("llm", llm, metadata=node_metadata)
        graph.add_edge(lib.START, "llm")
        return graph.compile()

    return build


HISTORY = {"messages": [HumanMessage("hi", id="h-1")]}


@pytest.mark.parametrize(
    "stream_mode",
    ["messages", ["messages"], ["values", "messages", "updates"], ["messages", "custom"]],
)
def test_tokens_then_update_with_every_envelope(stream_mode: Any) -> None:
    chunks, error = assert_same(
        _one_llm_node(lambda: _generic("hello big world"), node_metadata={"nm": 1}),
        HISTORY,
        config=CONFIG,
        stream_mode=stream_mode,
    )
    assert error is None
    tokens = [c for c in chunks if (c[0] if isinstance(stream_mode, list) else "messages") == "messages"]
    # five tokens (spaces are tokens), the returned message deduped by its id
    assert len(tokens) == 5


def test_metadata_keys_and_order() -> None:
    chunks, _ = assert_same(
        _one_llm_node(lambda: _generic("a b"), node_metadata={"nm": 1}), HISTORY, config=CONFIG, stream_mode="messages"
    )
    metadata = chunks[0][1]
    assert list(metadata) == [
        "session",
        "thread_id",
        "ls_integration",
        "langgraph_step",
        "langgraph_node",
        "langgraph_triggers",
        "langgraph_path",
        "langgraph_checkpoint_ns",
        "nm",
        "checkpoint_ns",
        "ls_provider",
        "ls_model_type",
        "lc_versions",
        "tags",
    ]
    assert chunks[-1][0][1]["chunk_position"] == "last"


def test_without_config_or_tags() -> None:
    assert_same(_one_llm_node(lambda: _generic("x y z")), HISTORY, stream_mode="messages")


def test_non_streaming_models_yield_one_whole_message() -> None:
    chunks, _ = assert_same(
        _one_llm_node(lambda: FakeMessagesListChatModel(responses=[AIMessage("whole")])),
        HISTORY,
        config=CONFIG,
        stream_mode=["messages", "updates"],
    )
    assert [c[1][0][0] for c in chunks[:1]] == ["<AIMessage>"]


def test_fake_list_model_streams_characters() -> None:
    assert_same(_one_llm_node(lambda: FakeListChatModel(responses=["abc"])), HISTORY, stream_mode="messages")


def test_disable_streaming_yields_whole_message() -> None:
    assert_same(
        _one_llm_node(lambda: GenericFakeChatModel(messages=iter([AIMessage("p q")]), disable_streaming=True)),
        HISTORY,
        stream_mode="messages",
    )


def test_tags_nostream_and_model_stream_method() -> None:
    def build(lib: Lib) -> Any:
        tagged = _generic("a b").with_config(tags=["joke"])
        hidden = _generic("c d").with_config(tags=["nostream"])
        streamed = _generic("e f")

        def node(state: Any) -> Any:
            parts = [tagged.invoke("x"), hidden.invoke("y")]
            text = "".join(str(chunk.content) for chunk in streamed.stream("z"))
            return {"messages": [*parts, AIMessage(text)]}

        graph = lib.StateGraph(lib.MessagesState)
        graph.add_node("n", node)
        graph.add_edge(lib.START, "n")
        return graph.compile()

    assert_same(build, HISTORY, config=CONFIG, stream_mode=["messages", "updates"])


def test_node_outputs_ids_assigned_in_place_and_dedupe() -> None:
    def build(lib: Lib) -> Any:
        def first(state: Any) -> Any:
            # echoed history is not re-emitted; a new message without id gets one;
            # message-like dicts and tuples are not messages
            return {
                "messages": [state["messages"][0], AIMessage("fresh"), ("ai", "tuple"), {"role": "ai", "content": "d"}]
            }

        def second(state: Any) -> Any:
            # a rebuilt message with a new id is emitted again
            return lib.Command(update={"messages": [AIMessage(state["messages"][1].content, id="rebuilt")]})

        def third(state: Any) -> Any:
            return [lib.Command(update={"messages": [ToolMessage("t", tool_call_id="c-1")]}), {"messages": []}]

        graph = lib.StateGraph(Plain)
        graph.add_node("first", first)
        graph.add_node("second", second)
        graph.add_node("third", third)
        graph.add_edge(lib.START, "first")
        graph.add_edge("first", "second")
        graph.add_edge("second", "third")
        return graph.compile()

    chunks, error = assert_same(
        build, {"messages": [HumanMessage("hi", id="h-1")]}, stream_mode=["messages", "updates"]
    )
    assert error is None
    kinds = [(c[0], c[1][0][0] if c[0] == "messages" else None) for c in chunks]
    assert kinds[:2] == [("messages", "<AIMessage>"), ("updates", None)]


def test_node_returning_a_single_message_and_a_model_state() -> None:
    def build(lib: Lib) -> Any:
        def node(state: Any) -> Any:
            return {"messages": AIMessage("single")}

        graph = lib.StateGraph(lib.MessagesState)
        graph.add_node("n", node)
        graph.add_edge(lib.START, "n")
        return graph.compile()

    assert_same(build, {"messages": []}, stream_mode="messages")


def _with_child(lib: Lib) -> Any:
    inner_model = FakeListChatModel(responses=["in child"])
    outer_model = _generic("out side")
    child = lib.StateGraph(lib.MessagesState)
    child.add_node("inner_llm", lambda s: {"messages": [inner_model.invoke(s["messages"])]})
    child.add_node("c2", lambda s: {"messages": [AIMessage("from c2")]}, metadata={"cm": 2})
    child.add_edge(lib.START, "inner_llm")
    child.add_edge("inner_llm", "c2")
    graph = lib.StateGraph(lib.MessagesState)
    graph.add_node("llm", lambda s: {"messages": [outer_model.invoke(s["messages"])]})
    graph.add_node("child", child.compile())
    graph.add_edge(lib.START, "llm")
    graph.add_edge("llm", "child")
    return graph.compile()


@pytest.mark.parametrize("subgraphs", [False, True])
def test_subgraph_tokens_follow_the_subgraphs_flag(subgraphs: bool) -> None:
    assert_same(_with_child, HISTORY, config=CONFIG, stream_mode=["messages", "updates"], subgraphs=subgraphs)


@tool
def add(a: int, b: int) -> int:
    """Add two numbers, asking a model on the way."""
    FakeListChatModel(responses=["ok"]).invoke("check")
    return a + b


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two numbers."""
    return a * b


@tool
def fail(reason: str) -> str:
    """Always fails."""
    raise ValueError(reason)


def _agent(responses: list[AIMessage], **tool_node_kwargs: Any) -> Any:
    def build(lib: Lib) -> Any:
        model = FakeMessagesListChatModel(responses=list(responses))

        def agent(state: Any) -> Any:
            return {"messages": [model.invoke(state["messages"])]}

        graph = lib.StateGraph(lib.MessagesState)
        graph.add_node("agent", agent)
        graph.add_node(lib.ToolNode([add, multiply, fail], **tool_node_kwargs))
        graph.add_edge(lib.START, "agent")
        graph.add_conditional_edges("agent", lib.tools_condition)
        graph.add_edge("tools", "agent")
        return graph.compile()

    return build


def _call(name: str, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {"name": name, "args": args, "id": call_id}


def test_tool_calling_agent_tokens_inside_tools_and_tool_messages() -> None:
    responses = [
        # parallel tool calls; only one asks a model, so the token order is deterministic
        AIMessage(
            "", tool_calls=[_call("add", {"a": 1, "b": 2}, "call-1"), _call("multiply", {"a": 3, "b": 4}, "call-2")]
        ),
        AIMessage("done"),
    ]
    chunks, error = assert_same(
        _agent(responses), HISTORY, config=CONFIG, stream_mode=["messages", "updates", "values"]
    )
    assert error is None
    assert any(c[0] == "messages" and c[1][1]["langgraph_node"] == "tools" for c in chunks)


def test_tool_errors_become_messages_or_fail_the_node() -> None:
    responses = [
        AIMessage("", tool_calls=[_call("nope", {}, "call-1"), _call("add", {"a": "x"}, "call-2")]),
        AIMessage("", tool_calls=[_call("fail", {"reason": "boom"}, "call-3")]),
    ]
    # unknown tool and invalid arguments become error messages; a raising tool fails the node
    _, error = assert_same(_agent(responses), HISTORY, stream_mode=["messages", "updates"])
    assert error is not None and error[1] == "ValueError"
    # handle_tool_errors=True turns it into a message too
    _, error = assert_same(
        _agent([*responses, AIMessage("end")], handle_tool_errors=True), HISTORY, stream_mode="updates"
    )
    assert error is None


def test_send_tasks_carry_push_paths() -> None:
    def build(lib: Lib) -> Any:
        model = FakeListChatModel(responses=["xy"])

        def fan(state: Any) -> Any:
            return [lib.Send("worker", {"messages": [HumanMessage("w", id="w-1")]})]

        def worker(state: Any) -> Any:
            return {"messages": [model.invoke(state["messages"])]}

        graph = lib.StateGraph(lib.MessagesState)
        graph.add_node("worker", worker)
        graph.add_conditional_edges(lib.START, fan)
        return graph.compile()

    assert_same(build, HISTORY, stream_mode="messages")


@pytest.mark.parametrize("subgraphs", [False, True])
def test_explicit_inner_messages_stream(subgraphs: bool) -> None:
    def build(lib: Lib) -> Any:
        model = FakeListChatModel(responses=["yo"])
        inner = lib.StateGraph(lib.MessagesState)
        inner.add_node("il", lambda s: {"messages": [model.invoke("q")]})
        inner.add_edge(lib.START, "il")
        compiled = inner.compile()

        def caller(state: Any) -> Any:
            parts = [str(chunk.content) for chunk, _ in compiled.stream({"messages": []}, stream_mode="messages")]
            return {"messages": [AIMessage("".join(parts), id="joined")]}

        graph = lib.StateGraph(lib.MessagesState)
        graph.add_node("caller", caller)
        graph.add_edge(lib.START, "caller")
        return graph.compile()

    assert_same(build, {"messages": []}, stream_mode="messages", subgraphs=subgraphs)


def test_values_only_runs_do_not_stream_models() -> None:
    # without a messages consumer LangChain does not stream: the id ends in "-0"
    chunks, _ = assert_same(_one_llm_node(lambda: _generic("a b")), HISTORY, stream_mode="values")
    assert chunks[-1]["messages"][-1][1]["id"].endswith("-0")


async def test_async_nodes_stream_tokens() -> None:
    def build(lib: Lib) -> Any:
        model = _generic("async tokens here")

        async def llm(state: Any) -> Any:
            return {"messages": [await model.ainvoke(state["messages"])]}

        graph = lib.StateGraph(lib.MessagesState)
        graph.add_node("llm", llm)
        graph.add_edge(lib.START, "llm")
        return graph.compile()

    await assert_same_async(build, HISTORY, config=CONFIG, stream_mode=["messages", "updates"])


async def test_async_agent_with_sync_tools() -> None:
    responses = [AIMessage("", tool_calls=[_call("add", {"a": 1, "b": 2}, "call-1")]), AIMessage("done")]
    await assert_same_async(_agent(responses), HISTORY, stream_mode=["messages", "updates"], subgraphs=True)


def test_node_passing_its_config_to_the_model() -> None:
    def build(lib: Lib) -> Any:
        model = _generic("with config")

        def llm(state: Any, config: RunnableConfig) -> Any:
            return {"messages": [model.invoke(state["messages"], config)]}

        graph = lib.StateGraph(lib.MessagesState)
        graph.add_node("llm", llm, metadata={"nm": 1})
        graph.add_edge(lib.START, "llm")
        return graph.compile()

    assert_same(build, HISTORY, config=CONFIG, stream_mode=["messages", "updates"])


def test_messages_across_an_interrupt_and_resume() -> None:
    def session(lib: Lib) -> Any:
        model = FakeListChatModel(responses=["ab", "cd"])

        def llm(state: Any) -> Any:
            return {"messages": [model.invoke(state["messages"])]}

        def ask(state: Any) -> Any:
            answer = lib.interrupt("ok?")
            return {"messages": [AIMessage(f"user said {answer}")]}

        graph = lib.StateGraph(lib.MessagesState)
        graph.add_node("llm", llm)
        graph.add_node("ask", ask)
        graph.add_edge(lib.START, "llm")
        graph.add_edge("llm", "ask")
        compiled = graph.compile(checkpointer=lib.InMemorySaver())
        config = {"configurable": {"thread_id": "t-9"}}
        first = list(compiled.stream(HISTORY, config, stream_mode=["messages", "updates"]))
        second = list(compiled.stream(lib.Command(resume="yes"), config, stream_mode=["messages", "updates"]))
        return [first, second]

    def build(lib: Lib) -> Any:
        class Once:
            def stream(self, input: Any, **kwargs: Any) -> Any:
                return iter(session(lib))

        return Once()

    chunks, error = assert_same(build, None)
    assert error is None
    first, second = chunks
    assert [c[0] for c in first] == ["messages", "messages", "updates", "updates"]
    assert second[-2][1][0][1]["content"] == "user said yes"


def test_version_v2_parts() -> None:
    assert_same(_with_child, HISTORY, stream_mode=["messages", "updates"], subgraphs=True, version="v2")


@pytest.mark.parametrize("subgraphs", [False, True])
def test_two_levels_of_subgraphs(subgraphs: bool) -> None:
    def build(lib: Lib) -> Any:
        model = FakeListChatModel(responses=["gc"])
        grandchild = lib.StateGraph(lib.MessagesState)
        grandchild.add_node("g_llm", lambda s: {"messages": [model.invoke(s["messages"])]}, metadata={"g": 1})
        grandchild.add_edge(lib.START, "g_llm")
        child = lib.StateGraph(lib.MessagesState)
        child.add_node("inner", grandchild.compile(), metadata={"c": 1})
        child.add_node("c_out", lambda s: {"messages": [AIMessage("from child")]})
        child.add_edge(lib.START, "inner")
        child.add_edge("inner", "c_out")
        graph = lib.StateGraph(lib.MessagesState)
        graph.add_node("child", child.compile())
        graph.add_edge(lib.START, "child")
        return graph.compile()

    assert_same(build, HISTORY, config=CONFIG, stream_mode=["messages", "updates"], subgraphs=subgraphs)


@pytest.mark.parametrize("subgraphs", [False, True])
async def test_explicit_inner_messages_astream(subgraphs: bool) -> None:
    def build(lib: Lib) -> Any:
        model = FakeListChatModel(responses=["yo"])
        inner = lib.StateGraph(lib.MessagesState)

        async def il(state: Any) -> Any:
            return {"messages": [await model.ainvoke("q")]}

        inner.add_node("il", il)
        inner.add_edge(lib.START, "il")
        compiled = inner.compile()

        async def caller(state: Any) -> Any:
            parts = [str(c.content) async for c, _ in compiled.astream({"messages": []}, stream_mode="messages")]
            return {"messages": [AIMessage("".join(parts), id="joined")]}

        graph = lib.StateGraph(lib.MessagesState)
        graph.add_node("caller", caller)
        graph.add_edge(lib.START, "caller")
        return graph.compile()

    await assert_same_async(build, {"messages": []}, stream_mode="messages", subgraphs=subgraphs)


def test_remove_messages_and_a_pydantic_state() -> None:
    from pydantic import BaseModel

    def build(lib: Lib) -> Any:
        # built with real annotation objects: this module's annotations are strings
        annotations = {"messages": Annotated[list[Any], lib.add_messages], "note": str}
        State = type("State", (BaseModel,), {"__annotations__": annotations, "note": ""})

        def prune(state: Any) -> Any:
            # a RemoveMessage naming a seen id is deduped; a new message is emitted
            return {"messages": [RemoveMessage(id="h-1"), AIMessage("kept", id="k-1")], "note": "pruned"}

        graph = lib.StateGraph(State)
        graph.add_node("prune", prune)
        graph.add_edge(lib.START, "prune")
        return graph.compile()

    chunks, error = assert_same(build, HISTORY, stream_mode=["messages", "values"])
    assert error is None
    assert [c[0] for c in chunks] == ["values", "messages", "values"]


def test_the_applications_callbacks_see_the_nodes_model_runs() -> None:
    from langchain_core.callbacks import BaseCallbackHandler

    class Recorder(BaseCallbackHandler):
        def __init__(self) -> None:
            self.events: list[str] = []

        def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
            self.events.append("start")

        def on_llm_new_token(self, token: Any, **kwargs: Any) -> None:
            self.events.append(str(token))

        def on_llm_end(self, response: Any, **kwargs: Any) -> None:
            self.events.append("end")

    seen = {}
    for lib in (OTEL, LANGGRAPH):
        recorder = Recorder()
        graph = _one_llm_node(lambda: _generic("a b"))(lib)
        list(graph.stream(HISTORY, {"callbacks": [recorder]}, stream_mode="messages"))
        seen[lib.name] = recorder.events
    assert seen[OTEL.name] == seen[LANGGRAPH.name] == ["start", "a", " ", "b", "end"]
