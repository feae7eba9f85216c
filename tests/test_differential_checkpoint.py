"""Differential tests: threads, checkpoints, interrupts and resume, against real LangGraph.

Each test runs a *session* — several calls on one thread (stream, resume, get_state,
history) — on both engines and compares everything the calls returned, in order, with
ids numbered across the whole session: a task keeps its id across a resume, an interrupt
id found by ``get_state()`` is the one the stream showed. otelstream runs with each of its
checkpointers (in memory, SQLite); LangGraph with its ``InMemorySaver``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

import otelstream
from tests.differential import LANGGRAPH, OTEL, FinishOrder, Lib, Result, compare

ALL_MODES = ["updates", "values", "custom", "tasks", "checkpoints"]


class State(TypedDict):
    x: int
    log: Annotated[list[str], operator.add]


class Session:
    """Records every call's outcome on one engine: what it returned or raised."""

    def __init__(self, lib: Lib, saver: Any) -> None:
        self.lib = lib
        self.saver = saver
        self.entries: list[Any] = []

    def stream(self, graph: Any, input: Any, config: dict[str, Any], **kwargs: Any) -> None:
        chunks: list[Any] = []
        try:
            for chunk in graph.stream(input, config, **kwargs):
                chunks.append(chunk)
        except Exception as exc:
            chunks.append(("raised", exc))
        self.entries.append(("stream", chunks))

    async def astream(self, graph: Any, input: Any, config: dict[str, Any], **kwargs: Any) -> None:
        chunks: list[Any] = []
        try:
            async for chunk in graph.astream(input, config, **kwargs):
                chunks.append(chunk)
        except Exception as exc:
            chunks.append(("raised", exc))
        self.entries.append(("astream", chunks))

    def call(self, label: str, fn: Callable[[], Any]) -> Any:
        try:
            value = fn()
        except Exception as exc:
            self.entries.append((label, "raised", exc))
            return None
        self.entries.append((label, value))
        return value

    def state(self, graph: Any, config: dict[str, Any]) -> Any:
        return self.call("get_state", lambda: tuple(graph.get_state(config)))

    def history(self, graph: Any, config: dict[str, Any]) -> None:
        self.call("history", lambda: [tuple(s) for s in graph.get_state_history(config)])


@pytest.fixture(params=["memory", "sqlite"])
def saver_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[Lib], Any]]:
    """Make a fresh checkpointer per engine: otelstream's in-memory or SQLite one."""
    opened: list[otelstream.SqliteSaver] = []

    def make(lib: Lib) -> Any:
        if lib is LANGGRAPH or request.param == "memory":
            return lib.InMemorySaver()
        saver = otelstream.SqliteSaver(tmp_path / f"threads-{len(opened)}.db")
        opened.append(saver)
        return saver

    yield make
    for saver in opened:
        saver.close()


def assert_sessions_match(play: Callable[[Session], None], saver_factory: Callable[[Lib], Any]) -> list[Any]:
    """Play the session on both engines; assert the same entries; return ours, normalised."""
    results = {}
    for lib in (OTEL, LANGGRAPH):
        session = Session(lib, saver_factory(lib))
        play(session)
        results[lib.name] = Result(session.entries)
    return compare(results)[0]


CFG = {"configurable": {"thread_id": "t-1"}}


def approval(lib: Lib, saver: Any, **compile_kwargs: Any) -> Any:
    """START -> a -> ask (interrupts) -> b -> END."""

    def a(state: State) -> dict[str, Any]:
        return {"x": state["x"] + 1, "log": ["a"]}

    def ask(state: State) -> dict[str, Any]:
        lib.get_stream_writer()("ask entered")
        answer = lib.interrupt({"question": "ok?", "x": state["x"]})
        return {"log": [f"ask:{answer}"]}

    def b(state: State) -> dict[str, Any]:
        return {"log": ["b"]}

    graph = lib.StateGraph(State)
    graph.add_node(a)
    graph.add_node(ask)
    graph.add_node(b)
    graph.add_edge(lib.START, "a")
    graph.add_edge("a", "ask")
    graph.add_edge("ask", "b")
    graph.add_edge("b", lib.END)
    return graph.compile(checkpointer=saver, **compile_kwargs)


def test_interrupt_then_resume_streams_and_states_like_langgraph(saver_factory: Callable[[Lib], Any]) -> None:
    def play(s: Session) -> None:
        graph = approval(s.lib, s.saver)
        s.stream(graph, {"x": 1, "log": []}, CFG, stream_mode=ALL_MODES)
        s.state(graph, CFG)
        s.stream(graph, s.lib.Command(resume="yes"), CFG, stream_mode=ALL_MODES)
        s.state(graph, CFG)
        s.stream(graph, None, CFG, stream_mode=ALL_MODES)  # a finished thread: one values chunk
        s.stream(graph, {"x": 10}, CFG, stream_mode=["checkpoints", "updates"])  # new input, same thread
        s.history(graph, CFG)

    entries = assert_sessions_match(play, saver_factory)
    first, resumed = entries[0][1], entries[2][1]
    assert [c for c in first if c[0] == "updates" and "__interrupt__" in c[1]]
    assert ("custom", "ask entered") in resumed  # the paused node ran again from its start


def test_default_mode_and_invoke_show_interrupts_like_langgraph(saver_factory: Callable[[Lib], Any]) -> None:
    def play(s: Session) -> None:
        graph = approval(s.lib, s.saver)
        s.stream(graph, {"x": 1, "log": []}, CFG)
        s.stream(graph, s.lib.Command(resume="no"), CFG)
        updated = {"configurable": {"thread_id": "t-upd"}}
        s.stream(graph, {"x": 1, "log": []}, updated)
        s.stream(graph, s.lib.Command(resume="ok", update={"log": ["edited"], "x": 7}), updated, stream_mode="values")
        other = {"configurable": {"thread_id": "t-2"}}
        s.call("invoke", lambda: graph.invoke({"x": 1, "log": []}, other))
        s.call("invoke", lambda: graph.invoke(s.lib.Command(resume="later"), other))
        third = {"configurable": {"thread_id": "t-3"}}
        s.call("invoke v2", lambda: graph.invoke({"x": 1, "log": []}, third, version="v2"))
        s.stream(graph, s.lib.Command(resume="v2"), third, stream_mode=["values", "updates"], version="v2")

    assert_sessions_match(play, saver_factory)


def parallel_interrupts(lib: Lib, saver: Any) -> Any:
    """START -> p1, p2 (both interrupt), p3 (finishes) -> join; they finish in that order."""
    order = FinishOrder(lib, "p1", "p2", "p3")  # a resume runs p1, p2 again, in that order

    def p1(state: State) -> dict[str, Any]:
        order.finish("p1")
        return {"log": [f"p1:{lib.interrupt('q1')}"]}

    def p2(state: State) -> dict[str, Any]:
        order.finish("p2")
        return {"log": [f"p2:{lib.interrupt('q2')}"]}

    def p3(state: State) -> dict[str, Any]:
        order.finish("p3")
        return {"log": ["p3"]}

    def join(state: State) -> dict[str, Any]:
        return {"log": ["join"]}

    graph = lib.StateGraph(State)
    for node in (p1, p2, p3, join):
        graph.add_node(node)
    for name in ("p1", "p2", "p3"):
        graph.add_edge(lib.START, name)
    graph.add_edge(["p1", "p2", "p3"], "join")
    return graph.compile(checkpointer=saver)


def test_parallel_interrupts_need_ids_to_resume_like_langgraph(saver_factory: Callable[[Lib], Any]) -> None:
    def play(s: Session) -> None:
        graph = parallel_interrupts(s.lib, s.saver)
        modes = ["updates", "values", "tasks"]
        s.stream(graph, {"x": 0, "log": []}, CFG, stream_mode=modes)
        state = s.state(graph, CFG)
        s.stream(graph, s.lib.Command(resume="plain"), CFG, stream_mode=modes)  # RuntimeError
        answers = {i.id: f"answer-{i.value}" for i in state[-1]}
        s.stream(graph, s.lib.Command(resume=answers), CFG, stream_mode=modes)
        s.state(graph, CFG)

    entries = assert_sessions_match(play, saver_factory)
    raised = entries[2][1][-1]
    assert raised[0] == "raised" and raised[1][1] == "RuntimeError"


def test_static_breakpoints_pause_before_and_after_like_langgraph(saver_factory: Callable[[Lib], Any]) -> None:
    def play(s: Session) -> None:
        graph = approval(s.lib, s.saver, interrupt_before=["b"], interrupt_after=["a"])
        resume = s.lib.Command(resume="yes")
        s.stream(graph, {"x": 1, "log": []}, CFG, stream_mode=["updates", "values", "debug"])
        s.state(graph, CFG)
        s.stream(graph, None, CFG, stream_mode=["updates", "values", "debug"])
        s.stream(graph, resume, CFG, stream_mode=["updates", "values"])
        s.state(graph, CFG)
        s.stream(graph, None, CFG, stream_mode=["updates", "values"])
        s.history(graph, CFG)
        other = {"configurable": {"thread_id": "t-2"}}
        s.stream(graph, {"x": 1, "log": []}, other, stream_mode="updates", interrupt_before="*")
        s.stream(graph, None, other, stream_mode="updates", interrupt_before="*")

    assert_sessions_match(play, saver_factory)


def flaky(lib: Lib, saver: Any, failures: list[bool]) -> Any:
    """START -> boom (fails while ``failures`` says so), steady (finishes) -> END."""
    order = FinishOrder(lib, "steady", "boom")  # boom fails after steady finished

    def boom(state: State) -> dict[str, Any]:
        order.finish("boom")
        if failures and failures.pop():
            raise ValueError("boom!")
        return {"log": ["boom"]}

    def steady(state: State) -> dict[str, Any]:
        order.finish("steady")
        return {"log": ["steady"]}

    graph = lib.StateGraph(State)
    graph.add_node(boom)
    graph.add_node(steady)
    graph.add_edge(lib.START, "boom")
    graph.add_edge(lib.START, "steady")
    return graph.compile(checkpointer=saver)


def test_resume_after_an_error_reuses_finished_tasks_like_langgraph(saver_factory: Callable[[Lib], Any]) -> None:
    def play(s: Session) -> None:
        graph = flaky(s.lib, s.saver, [False, True])
        s.stream(graph, {"x": 0, "log": []}, CFG, stream_mode=["updates", "values", "tasks"])
        s.state(graph, CFG)
        s.stream(graph, None, CFG, stream_mode=["updates", "values", "tasks", "checkpoints"])
        s.state(graph, CFG)

    entries = assert_sessions_match(play, saver_factory)
    resumed = entries[2][1]
    assert ("updates", {"steady": {"log": ["steady"]}, "__metadata__": {"cached": True}}) in resumed


def test_thread_errors_like_langgraph(saver_factory: Callable[[Lib], Any]) -> None:
    def play(s: Session) -> None:
        graph = approval(s.lib, s.saver)
        s.stream(graph, None, {"configurable": {"thread_id": "fresh"}})  # nothing to resume
        s.state(graph, {"configurable": {"thread_id": "unknown"}})

    assert_sessions_match(play, saver_factory)


def test_a_thread_id_is_required_with_a_checkpointer(saver_factory: Callable[[Lib], Any]) -> None:
    messages = []
    for lib in (OTEL, LANGGRAPH):
        graph = approval(lib, saver_factory(lib))
        with pytest.raises(ValueError) as raised:  # otelstream's CheckpointError is a ValueError
            list(graph.stream({"x": 1, "log": []}, {}))
        messages.append(str(raised.value))
    assert messages[0] == messages[1]
    assert isinstance(raised_error(OTEL, saver_factory), otelstream.CheckpointError)


def raised_error(lib: Lib, saver_factory: Callable[[Lib], Any]) -> BaseException:
    graph = approval(lib, saver_factory(lib))
    try:
        graph.invoke({"x": 1, "log": []})
    except Exception as exc:
        return exc
    raise AssertionError("no error raised")


def test_interrupt_without_checkpointer_streams_like_langgraph() -> None:
    def play(s: Session) -> None:
        graph = approval(s.lib, None)
        s.stream(graph, {"x": 1, "log": []}, {}, stream_mode=["updates", "values", "tasks"])
        s.call("invoke", lambda: graph.invoke({"x": 1, "log": []}))
        s.call("get_state", lambda: graph.get_state(CFG))

    assert_sessions_match(play, lambda lib: None)


def subgraph_interrupt(lib: Lib, saver: Any) -> Any:
    """START -> before -> child (inner_a -> inner_ask, which interrupts) -> END."""

    def inner_a(state: State) -> dict[str, Any]:
        return {"log": ["inner_a"]}

    def inner_ask(state: State) -> dict[str, Any]:
        return {"log": [f"inner_ask:{lib.interrupt('sub-q')}"]}

    def before(state: State) -> dict[str, Any]:
        return {"log": ["before"]}

    inner = lib.StateGraph(State)
    inner.add_node(inner_a)
    inner.add_node(inner_ask)
    inner.add_edge(lib.START, "inner_a")
    inner.add_edge("inner_a", "inner_ask")
    outer = lib.StateGraph(State)
    outer.add_node(before)
    outer.add_node("child", inner.compile())
    outer.add_edge(lib.START, "before")
    outer.add_edge("before", "child")
    return outer.compile(checkpointer=saver)


def test_interrupt_inside_a_subgraph_pauses_and_resumes_it_like_langgraph(
    saver_factory: Callable[[Lib], Any],
) -> None:
    # the child interrupt is emitted at both levels with one id; on resume the subgraph
    # continues from its own checkpoint (inner_a does not run again)
    def play(s: Session) -> None:
        graph = subgraph_interrupt(s.lib, s.saver)
        modes = ["updates", "values", "tasks", "checkpoints"]
        s.stream(graph, {"x": 0, "log": []}, CFG, stream_mode=modes, subgraphs=True)
        s.state(graph, CFG)
        s.stream(graph, s.lib.Command(resume="ok"), CFG, stream_mode=modes, subgraphs=True)
        s.state(graph, CFG)
        other = {"configurable": {"thread_id": "t-2"}}
        s.stream(graph, {"x": 0, "log": []}, other, stream_mode="updates")  # subgraphs=False
        s.stream(graph, s.lib.Command(resume="quiet"), other, stream_mode="updates")

    entries = assert_sessions_match(play, saver_factory)
    resumed = entries[2][1]
    assert not [c for c in resumed if c[1] == "updates" and "inner_a" in c[2]]


async def test_astream_interrupt_and_resume_like_langgraph(saver_factory: Callable[[Lib], Any]) -> None:
    results = {}
    for lib in (OTEL, LANGGRAPH):
        session = Session(lib, saver_factory(lib))
        graph = approval(lib, session.saver)
        await session.astream(graph, {"x": 1, "log": []}, CFG, stream_mode=ALL_MODES)
        await session.astream(graph, lib.Command(resume="async"), CFG, stream_mode=ALL_MODES)
        session.state(graph, CFG)
        results[lib.name] = Result(session.entries)
    compare(results)


def test_node_interrupting_twice_gets_each_answer_in_order(saver_factory: Callable[[Lib], Any]) -> None:
    def play(s: Session) -> None:
        def ask_twice(state: State) -> dict[str, Any]:
            first = s.lib.interrupt("first?")
            second = s.lib.interrupt(f"second after {first}?")
            return {"log": [first, second]}

        graph = s.lib.StateGraph(State)
        graph.add_node(ask_twice)
        graph.add_edge(s.lib.START, "ask_twice")
        compiled = graph.compile(checkpointer=s.saver)
        s.stream(compiled, {"x": 0, "log": []}, CFG, stream_mode=["updates", "values"])
        s.stream(compiled, s.lib.Command(resume="one"), CFG, stream_mode=["updates", "values"])
        s.stream(compiled, s.lib.Command(resume="two"), CFG, stream_mode=["updates", "values"])
        s.state(graph=compiled, config=CFG)

    entries = assert_sessions_match(play, saver_factory)
    assert entries[-1][1][0] == {"x": 0, "log": ["one", "two"]}


def test_breaking_out_of_a_stream_keeps_the_finished_superstep_like_langgraph(
    saver_factory: Callable[[Lib], Any],
) -> None:
    def play(s: Session) -> None:
        graph = approval(s.lib, s.saver)
        for chunk in graph.stream({"x": 1, "log": []}, CFG, stream_mode="updates"):
            s.entries.append(("first chunk", chunk))
            break
        s.state(graph, CFG)
        s.stream(graph, None, CFG, stream_mode=["updates", "values"])

    entries = assert_sessions_match(play, saver_factory)
    assert entries[1][1][1] == ("ask",)


class Items(TypedDict):
    items: Annotated[list[str], operator.add]


def test_send_workers_interrupt_and_resume_by_id_like_langgraph(saver_factory: Callable[[Lib], Any]) -> None:
    def play(s: Session) -> None:
        lib = s.lib
        # Send order = completion order; the resume runs workers 0 and 2 again
        order = FinishOrder(lib, 0, 1, 2, key=lambda name, input: input["i"] if name == "worker" else None)

        def fan(state: Items) -> list[Any]:
            return [lib.Send("worker", {"i": i}) for i in range(3)]

        def worker(packet: dict[str, Any]) -> dict[str, Any]:
            order.finish(packet["i"])
            if packet["i"] == 1:
                return {"items": ["w1 needs no answer"]}
            return {"items": [f"w{packet['i']}:{lib.interrupt({'worker': packet['i']})}"]}

        graph = lib.StateGraph(Items)
        graph.add_node(worker)
        graph.add_conditional_edges(lib.START, fan)
        compiled = graph.compile(checkpointer=s.saver)
        s.stream(compiled, {"items": []}, CFG, stream_mode=["updates", "values", "tasks"])
        state = s.state(compiled, CFG)
        answers = {i.id: f"ok{i.value['worker']}" for i in state[-1]}
        s.stream(compiled, lib.Command(resume=answers), CFG, stream_mode=["updates", "values", "tasks"])

    entries = assert_sessions_match(play, saver_factory)
    assert entries[-1][1][-1] == ("values", {"items": ["w0:ok0", "w1 needs no answer", "w2:ok2"]})


async def test_astream_resumes_a_subgraph_interrupt_like_langgraph(saver_factory: Callable[[Lib], Any]) -> None:
    results = {}
    for lib in (OTEL, LANGGRAPH):
        session = Session(lib, saver_factory(lib))
        graph = subgraph_interrupt(lib, session.saver)
        modes = ["updates", "values", "checkpoints"]
        await session.astream(graph, {"x": 0, "log": []}, CFG, stream_mode=modes, subgraphs=True)
        await session.astream(graph, lib.Command(resume="async"), CFG, stream_mode=modes, subgraphs=True)
        results[lib.name] = Result(session.entries)
    compare(results)


async def test_async_node_interrupts_and_resumes_like_langgraph(saver_factory: Callable[[Lib], Any]) -> None:
    results = {}
    for lib in (OTEL, LANGGRAPH):
        session = Session(lib, saver_factory(lib))

        async def ask(state: State, interrupt: Callable[[Any], Any] = lib.interrupt) -> dict[str, Any]:
            return {"log": [f"async:{interrupt('async question')}"]}

        graph = lib.StateGraph(State)
        graph.add_node(ask)
        graph.add_edge(lib.START, "ask")
        compiled = graph.compile(checkpointer=session.saver)
        await session.astream(compiled, {"x": 0, "log": []}, CFG, stream_mode=["updates", "values", "tasks"])
        await session.astream(compiled, lib.Command(resume="fine"), CFG, stream_mode=["updates", "values", "tasks"])
        session.state(compiled, CFG)
        results[lib.name] = Result(session.entries)
    ours = compare(results)[0]
    assert ours[-1][1][0] == {"x": 0, "log": ["async:fine"]}
