"""Differential tests: astream/ainvoke, and the sync/async parity of one graph.

Parallel nodes finish in a fixed order (a :class:`FinishOrder`: a node waits for the commit
of the tasks before it), so completion order is deterministic.
"""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any, TypedDict

import pytest

from tests.differential import LIBS, FinishOrder, Lib, Result, arun, assert_same, assert_same_async, normalize

MODES = ["values", "updates", "custom", "tasks"]

CANCELLED_S = 60.0
"""How long a node sleeps that must still run when a sibling's failure cancels it.

Its length orders nothing: the node is cancelled long before; it only bounds a run whose
engine failed to cancel it.
"""


class State(TypedDict):
    x: int
    log: Annotated[list[str], operator.add]


def async_graph(lib: Lib) -> Any:
    """START -> a -> (slow, fast) -> b; async nodes, an async subgraph, a sync node."""
    order = FinishOrder(lib, "fast", "slow")

    async def a(state: State, writer: StreamWriter) -> dict[str, Any]:
        writer({"a": state["x"]})
        return {"x": state["x"] + 1, "log": ["a"]}

    async def slow(state: State) -> dict[str, Any]:
        await order.afinish("slow")
        lib.get_stream_writer()("slow")
        return {"log": ["slow"]}

    async def fast(state: State) -> dict[str, Any]:
        await order.afinish("fast")
        lib.get_stream_writer()("fast")
        return {"log": ["fast"]}

    def b(state: State) -> dict[str, Any]:  # a sync node runs under astream too
        return {"log": ["b"]}

    async def inner(state: State) -> dict[str, Any]:
        lib.get_stream_writer()("inner")
        return {"log": ["inner"]}

    child = lib.StateGraph(State)
    child.add_node("inner", inner)
    child.add_edge(lib.START, "inner")

    graph = lib.StateGraph(State)
    graph.add_node("a", a)
    graph.add_node("slow", slow)
    graph.add_node("fast", fast)
    graph.add_node("b", b)
    graph.add_node("child", child.compile())
    graph.add_edge(lib.START, "a")
    graph.add_edge("a", "slow")
    graph.add_edge("a", "fast")
    graph.add_edge(["slow", "fast"], "b")
    graph.add_edge("b", "child")
    return graph.compile()


@pytest.mark.parametrize("subgraphs", [False, True])
@pytest.mark.parametrize("mode", [MODES, "debug", "updates"])
async def test_async_nodes(mode: Any, subgraphs: bool) -> None:
    chunks, error = await assert_same_async(async_graph, {"x": 0}, stream_mode=mode, subgraphs=subgraphs)
    assert error is None


def test_async_nodes_under_sync_stream_fail() -> None:
    chunks, error = assert_same(async_graph, {"x": 0}, stream_mode=[*MODES, "debug"])
    assert error[1] == "TypeError"


def async_routing(lib: Lib) -> Any:
    """An async routing function loops a -> b -> a until x reaches 2."""

    async def route(state: State) -> str:
        await asyncio.sleep(0)  # kept: a routing function that really suspends; nothing runs beside it
        lib.get_stream_writer()(f"route {state['x']}")
        return "b" if state["x"] < 2 else lib.END

    graph = lib.StateGraph(State)
    graph.add_node("a", lambda state: {"log": ["a"]})
    graph.add_node("b", lambda state: {"x": state["x"] + 1})
    graph.add_edge(lib.START, "a")
    graph.add_conditional_edges("a", route)
    graph.add_edge("b", "a")
    return graph.compile()


async def test_async_routing_function() -> None:
    chunks, error = await assert_same_async(async_routing, {"x": 0}, stream_mode=MODES)
    assert error is None
    assert ("custom", "route 2") in chunks


def test_async_routing_function_under_sync_stream_fails() -> None:
    chunks, error = assert_same(async_routing, {"x": 0}, stream_mode=MODES)
    assert error[1] == "TypeError"


def sync_graph(lib: Lib) -> Any:
    """Sync nodes, a deterministic parallel step (c, w, b), a subgraph and a Send."""
    order = FinishOrder(lib, "c", "w", "b")

    def a(state: State) -> Any:
        lib.get_stream_writer()("a")
        return lib.Command(goto=[lib.Send("w", 1), "b", "c"], update={"log": ["a"]})

    def b(state: State) -> dict[str, Any]:
        order.finish("b")
        return {"log": ["b"]}

    def c(state: State) -> dict[str, Any]:
        order.finish("c")
        return {"log": ["c"]}

    def w(n: int) -> dict[str, Any]:
        order.finish("w")
        return {"x": n}

    child = lib.StateGraph(State)
    child.add_node("inner", lambda state: {"log": ["inner"]})
    child.add_edge(lib.START, "inner")

    graph = lib.StateGraph(State)
    graph.add_node("a", a)
    graph.add_node("b", b)
    graph.add_node("c", c)
    graph.add_node("w", w)
    graph.add_node("child", child.compile())
    graph.add_edge(lib.START, "a")
    graph.add_edge("c", "child")
    return graph.compile()


@pytest.mark.parametrize("subgraphs", [False, True])
async def test_astream_matches_stream(subgraphs: bool) -> None:
    kwargs: dict[str, Any] = {"stream_mode": [*MODES, "debug"], "subgraphs": subgraphs}
    sync_chunks, _ = assert_same(sync_graph, {"x": 0}, **kwargs)
    async_chunks, _ = await assert_same_async(sync_graph, {"x": 0}, **kwargs)
    assert async_chunks == sync_chunks


async def test_ainvoke() -> None:
    results = []
    for lib in LIBS:
        graph = async_graph(lib)
        results.append(
            (
                await graph.ainvoke({"x": 0}),
                await graph.ainvoke({"x": 0}, stream_mode="updates"),
                await graph.ainvoke({"x": 0}, version="v2"),
            )
        )
    ours, theirs = (normalize(Result(list(r))) for r in results)
    assert ours == theirs


async def test_astream_failing_node_cancels_async_siblings() -> None:
    """Async: the failing task cancels its still-running sibling, whose chunks never appear.

    boom fails once quick was committed and slow has started; slow then waits to be cancelled.
    """

    def build(lib: Lib) -> Any:
        order = FinishOrder(lib, "quick", "boom")
        slow_started = asyncio.Event()

        async def boom(state: State) -> dict[str, Any]:
            await order.afinish("boom")
            await slow_started.wait()
            raise ConnectionError("async down")

        async def slow(state: State) -> dict[str, Any]:
            lib.get_stream_writer()("slow started")
            slow_started.set()
            await asyncio.sleep(CANCELLED_S)  # kept: still running when boom fails, so cancelled
            lib.get_stream_writer()("slow finished")
            return {"log": ["slow"]}

        async def quick(state: State) -> dict[str, Any]:
            await order.afinish("quick")
            return {"log": ["quick"]}

        graph = lib.StateGraph(State)
        graph.add_node("boom", boom)
        graph.add_node("slow", slow)
        graph.add_node("quick", quick)
        for name in ("boom", "slow", "quick"):
            graph.add_edge(lib.START, name)
        return graph.compile()

    chunks, error = await assert_same_async(build, {"x": 0}, stream_mode=[*MODES, "debug"])
    assert error[1] == "ConnectionError"
    assert ("custom", "slow finished") not in chunks
    assert ("updates", {"quick": {"log": ["quick"]}}) in chunks


async def test_astream_sync_failing_node_among_sync_siblings() -> None:
    """Sync nodes under astream run in threads; LangGraph still cancels (their results are dropped)."""

    def build(lib: Lib) -> Any:
        def boom(state: State) -> dict[str, Any]:
            raise ConnectionError("down")

        async def slow(state: State) -> dict[str, Any]:
            await asyncio.sleep(CANCELLED_S)  # kept: still running when boom fails, so cancelled
            return {"log": ["slow"]}

        graph = lib.StateGraph(State)
        graph.add_node("boom", boom)
        graph.add_node("slow", slow)
        graph.add_edge(lib.START, "boom")
        graph.add_edge(lib.START, "slow")
        return graph.compile()

    chunks, error = await assert_same_async(build, {"x": 0}, stream_mode=MODES)
    assert error[1] == "ConnectionError"


async def test_async_retry_policy() -> None:
    def build(lib: Lib) -> Any:
        attempts = {"n": 0}

        async def flaky(state: State) -> dict[str, Any]:
            attempts["n"] += 1
            lib.get_stream_writer()(f"attempt {attempts['n']}")
            if attempts["n"] < 2:
                raise ConnectionError("again")
            return {"log": ["ok"]}

        graph = lib.StateGraph(State)
        graph.add_node("flaky", flaky, retry_policy=lib.RetryPolicy(initial_interval=0.001, jitter=False))
        graph.add_edge(lib.START, "flaky")
        return graph.compile()

    await assert_same_async(build, {"x": 0}, stream_mode=[*MODES, "debug"])


async def test_async_recursion_limit() -> None:
    def build(lib: Lib) -> Any:
        async def loop(state: State) -> dict[str, Any]:
            return {"x": state["x"] + 1}

        graph = lib.StateGraph(State)
        graph.add_node("loop", loop)
        graph.add_edge(lib.START, "loop")
        graph.add_edge("loop", "loop")
        return graph.compile()

    chunks, error = await assert_same_async(build, {"x": 0}, config={"recursion_limit": 3}, stream_mode="values")
    assert error[1] == "GraphRecursionError"
    assert len(chunks) == 4


async def test_graph_invoked_inside_async_node() -> None:
    def build(lib: Lib) -> Any:
        child = lib.StateGraph(State)
        child.add_node("inner", lambda state: {"log": ["inner"]})
        child.add_edge(lib.START, "inner")
        compiled = child.compile()

        async def caller(state: State) -> dict[str, Any]:
            first = await compiled.ainvoke({"x": 1})
            second = await compiled.ainvoke({"x": 2})
            return {"log": [*first["log"], *second["log"]]}

        graph = lib.StateGraph(State)
        graph.add_node("caller", caller)
        graph.add_edge(lib.START, "caller")
        return graph.compile()

    for subgraphs in (False, True):
        await assert_same_async(build, {"x": 0}, stream_mode=MODES, subgraphs=subgraphs)


async def test_arun_collects_chunks_before_the_error() -> None:
    def build(lib: Lib) -> Any:
        async def boom(state: State) -> dict[str, Any]:
            raise KeyError("k")

        graph = lib.StateGraph(State)
        graph.add_node("ok", lambda state: {"log": ["ok"]})
        graph.add_node("boom", boom)
        graph.add_edge(lib.START, "ok")
        graph.add_edge("ok", "boom")
        return graph.compile()

    results = [await arun(lib, build, {"x": 0}, stream_mode="updates") for lib in LIBS]
    assert normalize(results[0]) == normalize(results[1])
    assert results[0].chunks == [{"ok": {"log": ["ok"]}}]


StreamWriter = Any
