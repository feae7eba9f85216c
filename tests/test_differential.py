"""Differential tests: stream modes, envelopes, subgraphs and namespaces.

Every graph is defined once against a ``lib`` namespace and run on otelstream and on real
LangGraph; the normalised chunks (and errors) must be identical. See ``differential.py``.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.runnables import RunnableConfig

from tests.differential import (
    LANGGRAPH,
    OTEL,
    FinishOrder,
    Lib,
    assert_same,
    assert_same_invoke,
    normalize,
    run,
    unordered,
)


class State(TypedDict):
    x: int
    log: Annotated[list[str], operator.add]


class ChildState(TypedDict):
    log: Annotated[list[str], operator.add]


def linear(lib: Lib) -> Any:
    """START -> a -> b -> END; ``a`` writes two custom chunks."""

    def a(state: State) -> dict[str, Any]:
        writer = lib.get_stream_writer()
        writer({"node": "a", "x": state["x"]})
        writer("plain string")
        return {"x": state["x"] + 1, "log": ["a"]}

    def b(state: State) -> dict[str, Any]:
        return {"log": ["b"]}

    graph = lib.StateGraph(State)
    graph.add_node("a", a)
    graph.add_node("b", b)
    graph.add_edge(lib.START, "a")
    graph.add_edge("a", "b")
    graph.add_edge("b", lib.END)
    return graph.compile()


def fan_out(lib: Lib) -> Any:
    """START -> a -> (b, c, d) -> join; parallel nodes finish in the order c, d, b.

    Deterministic by construction: each parallel node waits for the commit of the one
    before it (:class:`FinishOrder`), so the completion order (which "updates" follow)
    differs from the name order (which the reducer and "tasks" starts follow), and both
    engines must show the same.
    """
    order = FinishOrder(lib, "c", "d", "b")

    def a(state: State) -> dict[str, Any]:
        return {"log": ["a"]}

    def ordered(name: str) -> Any:
        def node(state: State) -> dict[str, Any]:
            order.finish(name)
            lib.get_stream_writer()(f"{name} done")
            return {"log": [name]}

        return node

    def join(state: State) -> dict[str, Any]:
        return {"x": len(state["log"])}

    graph = lib.StateGraph(State)
    graph.add_node("a", a)
    graph.add_node("d", ordered("d"))
    graph.add_node("b", ordered("b"))
    graph.add_node("c", ordered("c"))
    graph.add_node("join", join)
    graph.add_edge(lib.START, "a")
    for name in ("d", "b", "c"):
        graph.add_edge("a", name)
    graph.add_edge(["b", "c", "d"], "join")
    graph.add_edge("join", lib.END)
    return graph.compile()


ALL_MODES = ["values", "updates", "custom", "tasks", "debug"]
MODES = ["values", "updates", "custom", "tasks"]


# --- modes and envelopes ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ALL_MODES)
def test_single_mode(mode: str) -> None:
    chunks, error = assert_same(linear, {"x": 1}, stream_mode=mode)
    assert error is None
    assert chunks


def test_values_mode_content() -> None:
    chunks, _ = assert_same(linear, {"x": 1}, stream_mode="values")
    assert chunks == [
        {"x": 1, "log": []},
        {"x": 2, "log": ["a"]},
        {"x": 2, "log": ["a", "b"]},
    ]


def test_custom_mode_content() -> None:
    chunks, _ = assert_same(linear, {"x": 1}, stream_mode="custom")
    assert chunks == [{"node": "a", "x": 1}, "plain string"]


def test_mode_list_all_modes() -> None:
    chunks, _ = assert_same(linear, {"x": 1}, stream_mode=ALL_MODES)
    assert {mode for mode, _ in chunks} == set(ALL_MODES)


def test_mode_list_of_one() -> None:
    chunks, _ = assert_same(linear, {"x": 1}, stream_mode=["updates"])
    assert chunks == [("updates", {"a": {"x": 2, "log": ["a"]}}), ("updates", {"b": {"log": ["b"]}})]


@pytest.mark.parametrize("subgraphs", [False, True])
def test_tuple_of_modes_loses_the_mode(subgraphs: bool) -> None:
    # LangGraph tests isinstance(stream_mode, list): a tuple yields bare chunks
    chunks, _ = assert_same(linear, {"x": 1}, stream_mode=("values", "updates"), subgraphs=subgraphs)
    first = chunks[0]
    assert first == (((), {"x": 1, "log": []}) if subgraphs else {"x": 1, "log": []})


def test_default_mode_is_updates() -> None:
    chunks, _ = assert_same(linear, {"x": 1})
    assert chunks == [{"a": {"x": 2, "log": ["a"]}}, {"b": {"log": ["b"]}}]


def test_empty_input_gives_no_first_values_chunk() -> None:
    def build(lib: Lib) -> Any:
        graph = lib.StateGraph(State)
        graph.add_node("a", lambda state: {"x": 5})
        graph.add_edge(lib.START, "a")
        return graph.compile()

    chunks, _ = assert_same(build, {}, stream_mode=["values", "updates", "tasks"])
    assert chunks[0][0] == "tasks"


def test_input_with_unknown_keys() -> None:
    chunks, error = assert_same(linear, {"x": 1, "nope": 2}, stream_mode=["values", "updates"])
    assert error is None


@pytest.mark.parametrize("mode", [["values", "updates", "custom", "tasks"], "debug"])
def test_fan_out_completion_order(mode: Any) -> None:
    chunks, _ = assert_same(fan_out, {"x": 0}, stream_mode=mode)
    if mode == "debug":
        return
    updates = [c for m, c in chunks if m == "updates"]
    assert updates[1:4] == [{"c": {"log": ["c"]}}, {"d": {"log": ["d"]}}, {"b": {"log": ["b"]}}]
    values = [c for m, c in chunks if m == "values"]
    assert values[2] == {"x": 0, "log": ["a", "b", "c", "d"]}


def test_config_metadata_and_tags_in_task_events() -> None:
    def build(lib: Lib) -> Any:
        graph = lib.StateGraph(State)
        graph.add_node("a", lambda state: {"x": 1}, metadata={"node_meta": "A"})
        graph.add_node("b", lambda state: {"x": 2})
        graph.add_edge(lib.START, "a")
        graph.add_edge("a", "b")
        return graph.compile()

    config = {
        "metadata": {"m": "v"},
        "tags": ["t1"],
        "configurable": {"thread_id": "t-1", "user_id": "u"},
    }
    chunks, _ = assert_same(build, {"x": 0}, config=config, stream_mode=["tasks", "debug"])
    # configurable keys (thread_id included) never reach the payload's metadata
    assert chunks[0][1]["metadata"] == {"m": "v", "node_meta": "A", "tags": ["t1"]}


def test_version_v2() -> None:
    chunks, _ = assert_same(linear, {"x": 1}, stream_mode=["values", "updates", "custom"], version="v2")
    assert chunks[0] == {"type": "values", "ns": (), "data": {"x": 1, "log": []}, "interrupts": ()}


def test_version_v2_single_mode_subgraphs() -> None:
    assert_same(nested_parent, {"log": []}, stream_mode="updates", subgraphs=True, version="v2")


# --- invoke -------------------------------------------------------------------------------


def test_invoke_returns_final_state() -> None:
    chunks, _ = assert_same_invoke(linear, {"x": 1})
    assert chunks == [{"x": 2, "log": ["a", "b"]}]


@pytest.mark.parametrize("mode", ["updates", ["updates", "values"], "custom"])
def test_invoke_with_another_mode_returns_chunks(mode: Any) -> None:
    chunks, _ = assert_same_invoke(linear, {"x": 1}, stream_mode=mode)
    assert isinstance(chunks[0], list)


def test_invoke_version_v2_with_mode() -> None:
    assert_same_invoke(linear, {"x": 1}, stream_mode="updates", version="v2")


# --- subgraphs ----------------------------------------------------------------------------


def nested_parent(lib: Lib) -> Any:
    """parent: p1 -> child -> p2; child: c1 -> grandchild -> c2; grandchild: g1."""

    def writer_node(name: str) -> Any:
        def node(state: ChildState) -> dict[str, Any]:
            lib.get_stream_writer()({"node": name})
            return {"log": [name]}

        return node

    grandchild = lib.StateGraph(ChildState)
    grandchild.add_node("g1", writer_node("g1"))
    grandchild.add_edge(lib.START, "g1")

    child = lib.StateGraph(ChildState)
    child.add_node("c1", writer_node("c1"))
    child.add_node("gchild", grandchild.compile())
    child.add_node("c2", writer_node("c2"))
    child.add_edge(lib.START, "c1")
    child.add_edge("c1", "gchild")
    child.add_edge("gchild", "c2")

    parent = lib.StateGraph(ChildState)
    parent.add_node("p1", writer_node("p1"))
    parent.add_node("child", child.compile())
    parent.add_node("p2", writer_node("p2"))
    parent.add_edge(lib.START, "p1")
    parent.add_edge("p1", "child")
    parent.add_edge("child", "p2")
    return parent.compile()


@pytest.mark.parametrize("subgraphs", [False, True])
@pytest.mark.parametrize(
    "mode", ["updates", "values", "custom", "tasks", "debug", ["updates", "values", "custom", "tasks"]]
)
def test_nested_subgraphs(mode: Any, subgraphs: bool) -> None:
    chunks, _ = assert_same(nested_parent, {"log": []}, stream_mode=mode, subgraphs=subgraphs)
    if subgraphs:
        depths = {len(chunk[0]) for chunk in chunks}
        assert depths <= {0, 1, 2}
        if mode != "debug":
            assert depths == {0, 1, 2}


def test_nested_subgraph_namespaces() -> None:
    chunks, _ = assert_same(nested_parent, {"log": []}, stream_mode="custom", subgraphs=True)
    assert chunks == [
        ((), {"node": "p1"}),
        (("child:<id1>",), {"node": "c1"}),
        (("child:<id1>", "gchild:<id2>"), {"node": "g1"}),
        (("child:<id1>",), {"node": "c2"}),
        ((), {"node": "p2"}),
    ]


def test_subgraph_update_is_child_output() -> None:
    chunks, _ = assert_same(nested_parent, {"log": []}, stream_mode="updates")
    # the subgraph node's update is the child's full output, appended again by the reducer
    assert chunks[1] == {"child": {"log": ["p1", "c1", "p1", "c1", "g1", "c2"]}}


def test_subgraph_with_different_schema_and_failure() -> None:
    def build(lib: Lib) -> Any:
        def inner(state: ChildState) -> dict[str, Any]:
            raise KeyError("inner broke")

        child = lib.StateGraph(ChildState)
        child.add_node("inner", inner)
        child.add_edge(lib.START, "inner")
        parent = lib.StateGraph(State)
        parent.add_node("child", child.compile())
        parent.add_edge(lib.START, "child")
        return parent.compile()

    chunks, error = assert_same(
        build, {"x": 0, "log": ["p"]}, stream_mode=["updates", "values", "tasks"], subgraphs=True
    )
    assert error[1] == "KeyError"
    assert len(error[3]) == 2  # one note per level


def in_node_caller(lib: Lib) -> Any:
    """A node that invokes a compiled graph twice, and streams it once, from its own code."""

    def c1(state: ChildState) -> dict[str, Any]:
        lib.get_stream_writer()({"in": "c1", "log": state["log"]})
        return {"log": ["c1"]}

    child_builder = lib.StateGraph(ChildState)
    child_builder.add_node("c1", c1)
    child_builder.add_edge(lib.START, "c1")
    child = child_builder.compile()

    def caller(state: ChildState) -> dict[str, Any]:
        first = child.invoke({"log": ["first"]})
        second = child.invoke({"log": ["second"]})
        # without the node's config, a nested stream() defaults to the graph's "updates"
        streamed = list(child.stream({"log": ["third"]}))
        return {"log": [*first["log"], *second["log"], str(streamed)]}

    parent = lib.StateGraph(ChildState)
    parent.add_node("caller", caller)
    parent.add_edge(lib.START, "caller")
    return parent.compile()


@pytest.mark.parametrize("subgraphs", [False, True])
@pytest.mark.parametrize("mode", [["updates", "values", "custom", "tasks"], "debug", "custom"])
def test_graph_invoked_inside_a_node(mode: Any, subgraphs: bool) -> None:
    chunks, _ = assert_same(in_node_caller, {"log": []}, stream_mode=mode, subgraphs=subgraphs)
    if subgraphs and mode == "custom":
        assert [ns for ns, _ in chunks] == [("caller:<id1>",), ("caller:<id1>", "1"), ("caller:<id1>", "2")]


def test_graph_invoked_inside_a_node_invoke() -> None:
    chunks, _ = assert_same_invoke(in_node_caller, {"log": []})
    assert chunks[0]["log"][:4] == ["first", "c1", "second", "c1"]


def in_node_caller_with_config(lib: Lib) -> Any:
    """A node with metadata that passes its own config on to the graphs it calls."""

    def c1(state: ChildState, config: RunnableConfig) -> dict[str, Any]:
        seen = {k: v for k, v in config["metadata"].items() if not k.startswith("langgraph_")}
        lib.get_stream_writer()({"metadata": seen, "tags": config["tags"]})
        return {"log": ["c1"]}

    child_builder = lib.StateGraph(ChildState)
    child_builder.add_node("c1", c1, metadata={"child_node": 1})
    child_builder.add_edge(lib.START, "c1")
    child = child_builder.compile()

    def caller(state: ChildState, config: RunnableConfig) -> dict[str, Any]:
        # handed the task's config, a nested stream() defaults to "values"
        streamed = list(child.stream({"log": ["s"]}, config))
        invoked = child.invoke({"log": ["i"]}, {"tags": ["extra"], "metadata": {"k": "v"}})
        return {"log": [str(streamed), *invoked["log"]]}

    parent = lib.StateGraph(ChildState)
    parent.add_node("caller", caller, metadata={"caller_node": True})
    parent.add_edge(lib.START, "caller")
    return parent.compile()


@pytest.mark.parametrize("subgraphs", [False, True])
def test_graph_invoked_inside_a_node_inherits_config(subgraphs: bool) -> None:
    config = {"metadata": {"m": 1}, "tags": ["t"], "configurable": {"thread_id": "t-1"}}
    chunks, _ = assert_same(
        in_node_caller_with_config,
        {"log": []},
        config=config,
        stream_mode=["updates", "custom", "tasks"],
        subgraphs=subgraphs,
    )
    if subgraphs:
        custom = [c for _, m, c in chunks if m == "custom"]
        assert custom[0]["metadata"]["caller_node"] is True


def test_graph_invoked_inside_a_node_fails() -> None:
    def build(lib: Lib) -> Any:
        def boom(state: ChildState) -> dict[str, Any]:
            raise KeyError("inner")

        child_builder = lib.StateGraph(ChildState)
        child_builder.add_node("boom", boom)
        child_builder.add_edge(lib.START, "boom")
        child = child_builder.compile()

        parent = lib.StateGraph(ChildState)
        parent.add_node("caller", lambda state: child.invoke({"log": ["in"]}))
        parent.add_edge(lib.START, "caller")
        return parent.compile()

    for subgraphs in (False, True):
        _, error = assert_same(build, {"log": []}, stream_mode=MODES, subgraphs=subgraphs)
        assert len(error[3]) == 2  # a note per level


def explicit_inner_stream(lib: Lib) -> Any:
    """A node iterating a child's stream(stream_mode=["custom", "updates"]) itself."""

    def inner(state: ChildState) -> dict[str, Any]:
        lib.get_stream_writer()("inner custom")
        return {"log": ["inner"]}

    child_builder = lib.StateGraph(ChildState)
    child_builder.add_node("inner", inner)
    child_builder.add_edge(lib.START, "inner")
    child = child_builder.compile()

    def caller(state: ChildState) -> dict[str, Any]:
        return {"log": [repr(list(child.stream({"log": []}, stream_mode=["custom", "updates"])))]}

    parent = lib.StateGraph(ChildState)
    parent.add_node("caller", caller)
    parent.add_edge(lib.START, "caller")
    return parent.compile()


@pytest.mark.parametrize("mode", [["updates", "values", "tasks"], "updates"])
@pytest.mark.parametrize("subgraphs", [False, True])
def test_node_streaming_a_child_explicitly(mode: Any, subgraphs: bool) -> None:
    # the child's updates reach the outer stream too when it asked for subgraphs
    assert_same(explicit_inner_stream, {"log": []}, stream_mode=mode, subgraphs=subgraphs)


def test_node_streaming_a_child_explicitly_keeps_its_custom_chunks() -> None:
    assert_same(explicit_inner_stream, {"log": []}, stream_mode=MODES, subgraphs=True)


def test_send_to_a_subgraph() -> None:
    def build(lib: Lib) -> Any:
        # deterministic: Send order = completion order of the parent's "child" tasks
        order = FinishOrder(lib, 1, 2, key=lambda name, input: input.get("x") if name == "child" else None)

        def inner(state: State) -> dict[str, Any]:
            order.finish(state["x"])
            return {"log": [f"inner{state['x']}"]}

        child = lib.StateGraph(State)
        child.add_node("inner", inner)
        child.add_edge(lib.START, "inner")
        graph = lib.StateGraph(State)
        graph.add_node("child", child.compile())
        graph.add_conditional_edges(
            lib.START, lambda state: [lib.Send("child", {"x": 1, "log": []}), lib.Send("child", {"x": 2})]
        )
        return graph.compile()

    assert_same(build, {"x": 0}, stream_mode=[*MODES, "debug"])
    # the two children start together, so their first chunks interleave at random: with
    # subgraphs the chunks are compared as a multiset, ids unnumbered
    kwargs: dict[str, Any] = {"stream_mode": [*MODES, "debug"], "subgraphs": True}
    ours, theirs = (normalize(run(lib, build, {"x": 0}, **kwargs), numbered=False) for lib in (OTEL, LANGGRAPH))
    assert ours[1] == theirs[1]
    assert unordered(ours[0]) == unordered(theirs[0])


def test_compiled_graph_added_under_its_own_name() -> None:
    def build(lib: Lib) -> Any:
        child = lib.StateGraph(State)
        child.add_node("inner", lambda state: {"log": ["inner"]})
        child.add_edge(lib.START, "inner")
        graph = lib.StateGraph(State)
        graph.add_node(child.compile(name="kid"))
        graph.add_edge(lib.START, "kid")
        return graph.compile()

    chunks, _ = assert_same(build, {"x": 0}, stream_mode=MODES, subgraphs=True)
    assert chunks[2][0] == ("kid:<id1>",)


@pytest.mark.parametrize("mode", [[*MODES, "debug"], "custom"])
@pytest.mark.parametrize("subgraphs", [False, True])
def test_version_v2_subgraphs(mode: Any, subgraphs: bool) -> None:
    assert_same(nested_parent, {"log": []}, stream_mode=mode, subgraphs=subgraphs, version="v2")


def test_subgraph_tasks_inherit_metadata_and_tags() -> None:
    def build(lib: Lib) -> Any:
        child = lib.StateGraph(State)
        child.add_node("inner", lambda state: {"log": ["inner"]}, metadata={"inner_meta": 1})
        child.add_edge(lib.START, "inner")
        graph = lib.StateGraph(State)
        graph.add_node("child", child.compile(), metadata={"child_meta": 2})
        graph.add_edge(lib.START, "child")
        return graph.compile()

    config = {"tags": ["t"], "metadata": {"m": 0}, "configurable": {"thread_id": "t-2"}}
    chunks, _ = assert_same(build, {"x": 0}, config=config, stream_mode="tasks", subgraphs=True)
    assert chunks[1][1]["metadata"] == {"m": 0, "child_meta": 2, "inner_meta": 1, "tags": ["t"]}


def test_retried_subgraph_node() -> None:
    # the child's error is noted by the outer task's failed attempt too; the retry runs the
    # child again under a numbered namespace
    def build(lib: Lib) -> Any:
        attempts = {"n": 0}

        def inner(state: ChildState) -> dict[str, Any]:
            attempts["n"] += 1
            if attempts["n"] < 2:
                raise ConnectionError("again")
            return {"log": ["inner"]}

        child = lib.StateGraph(ChildState)
        child.add_node("inner", inner)
        child.add_edge(lib.START, "inner")
        graph = lib.StateGraph(ChildState)
        policy = lib.RetryPolicy(initial_interval=0.001, jitter=False)
        graph.add_node("child", child.compile(), retry_policy=policy)
        graph.add_edge(lib.START, "child")
        return graph.compile()

    chunks, _ = assert_same(build, {"log": []}, stream_mode=MODES, subgraphs=True)
    assert chunks[4][2]["error"][3] == [
        "During task with name 'inner' and id '<id2>'",
        "During task with name 'child' and id '<id1>'",
    ]


def test_retried_node_invoking_a_graph() -> None:
    def build(lib: Lib) -> Any:
        child_builder = lib.StateGraph(ChildState)
        child_builder.add_node("inner", lambda state: {"log": ["inner"]})
        child_builder.add_edge(lib.START, "inner")
        child = child_builder.compile()
        attempts = {"n": 0}

        def caller(state: ChildState) -> Any:
            out = child.invoke({"log": []})
            attempts["n"] += 1
            if attempts["n"] < 2:
                raise ConnectionError("again")
            return out

        graph = lib.StateGraph(ChildState)
        graph.add_node("caller", caller, retry_policy=lib.RetryPolicy(initial_interval=0.001, jitter=False))
        graph.add_edge(lib.START, "caller")
        return graph.compile()

    assert_same(build, {"log": []}, stream_mode=MODES, subgraphs=True)


def test_send_tasks_invoking_a_graph() -> None:
    """Deterministic: the Send(2) task finishes after the Send(1) task was committed."""

    def build(lib: Lib) -> Any:
        order = FinishOrder(lib, 1, 2, key=lambda name, input: input if name == "work" else None)
        child_builder = lib.StateGraph(State)
        child_builder.add_node("inner", lambda state: {"log": [f"inner{state['x']}"]})
        child_builder.add_edge(lib.START, "inner")
        child = child_builder.compile()

        def work(n: int) -> Any:
            order.finish(n)
            return child.invoke({"x": n})

        graph = lib.StateGraph(State)
        graph.add_node("work", work)
        graph.add_conditional_edges(lib.START, lambda state: [lib.Send("work", 1), lib.Send("work", 2)])
        return graph.compile()

    assert_same(build, {"x": 0}, stream_mode=MODES, subgraphs=True)


def test_node_streaming_a_child_with_subgraphs_sees_absolute_namespaces() -> None:
    def build(lib: Lib) -> Any:
        child_builder = lib.StateGraph(ChildState)
        child_builder.add_node("inner", lambda state: {"log": ["inner"]})
        child_builder.add_edge(lib.START, "inner")
        child = child_builder.compile()

        def caller(state: ChildState) -> dict[str, Any]:
            return {"log": [repr(list(child.stream({"log": []}, subgraphs=True)))]}

        graph = lib.StateGraph(ChildState)
        graph.add_node("caller", caller)
        graph.add_edge(lib.START, "caller")
        return graph.compile()

    assert_same(build, {"log": []}, stream_mode="updates")


def test_invoke_version_v2_returns_graph_output() -> None:
    chunks, _ = assert_same_invoke(linear, {"x": 1}, version="v2")
    assert chunks == [("<GraphOutput>", {"value": {"x": 2, "log": ["a", "b"]}, "interrupts": ()})]


def test_get_stream_writer_outside_a_graph() -> None:
    errors = []
    for lib in (OTEL, LANGGRAPH):
        with pytest.raises(RuntimeError) as info:
            lib.get_stream_writer()
        errors.append(str(info.value))
    assert errors[0] == errors[1]


def test_error_two_subgraphs_deep() -> None:
    def build(lib: Lib) -> Any:
        def boom(state: ChildState) -> dict[str, Any]:
            raise ArithmeticError("deep")

        grandchild = lib.StateGraph(ChildState)
        grandchild.add_node("boom", boom)
        grandchild.add_edge(lib.START, "boom")
        child = lib.StateGraph(ChildState)
        child.add_node("gchild", grandchild.compile())
        child.add_edge(lib.START, "gchild")
        parent = lib.StateGraph(ChildState)
        parent.add_node("child", child.compile())
        parent.add_edge(lib.START, "child")
        return parent.compile()

    for subgraphs in (False, True):
        _, error = assert_same(build, {"log": []}, stream_mode=[*MODES, "debug"], subgraphs=subgraphs)
        assert [note.split(" and ")[0] for note in error[3]] == [
            "During task with name 'boom'",
            "During task with name 'gchild'",
            "During task with name 'child'",
        ]
