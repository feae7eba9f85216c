"""Instrumented LangGraph under control flow: interrupts and resume, break, close, throw, errors.

Each scenario is played on plain and on instrumented LangGraph in the same test and must
produce the same entries (chunks, states, raised errors, the order of side effects).
"""

from __future__ import annotations

import asyncio
import operator
import threading
import time
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, Send, interrupt

import otelstream
from tests.conftest import Telemetry, make_telemetry
from tests.differential import LANGGRAPH, Result
from tests.langgraph_harness import acompare, compare, needs, stream_records
from tests.test_differential import explicit_inner_stream, in_node_caller_with_config
from tests.test_differential_checkpoint import approval, parallel_interrupts, subgraph_interrupt

# how long the staggered nodes of these tests wait (TODO(#16): FinishOrder, as tests/differential.py)
STAGGER = 0.05

ALL = ["values", "updates", "custom", "tasks", "checkpoints", "debug"]


class State(TypedDict):
    x: int
    log: Annotated[list[str], operator.add]


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    yield make_telemetry()
    otelstream.configure()


def stream_records_of(telemetry: Telemetry) -> list[Any]:
    return stream_records(telemetry.logs)


def _state(graph: Any, config: Any) -> Any:
    snapshot = graph.get_state(config)
    return ("state", snapshot.values, snapshot.next, [(t.name, t.interrupts) for t in snapshot.tasks])


def _stream(entries: list[Any], graph: Any, input: Any, config: Any, **kwargs: Any) -> None:
    chunks: list[Any] = []
    try:
        for chunk in graph.stream(input, config, **kwargs):
            chunks.append(chunk)
    except Exception as exc:
        chunks.append(("raised", exc))
    entries.append(("stream", chunks))


# --- interrupts, resume, Command -----------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("mode", [ALL, "updates", "values", None], ids=repr)
def test_interrupt_then_resume(telemetry: Telemetry, mode: Any, version: str) -> None:
    def session() -> Result:
        graph = approval(LANGGRAPH, InMemorySaver())
        config = {"configurable": {"thread_id": "t-1"}}
        entries: list[Any] = []
        _stream(entries, graph, {"x": 1, "log": []}, config, stream_mode=mode, version=version)
        entries.append(_state(graph, config))
        _stream(entries, graph, Command(resume="yes"), config, stream_mode=mode, version=version)
        entries.append(_state(graph, config))
        _stream(entries, graph, {"x": 10}, config, stream_mode=mode, version=version)  # new input, same thread
        return Result(entries)

    entries, _ = compare(session, telemetry.logs, min_records=1)
    assert "<Interrupt>" in repr(entries[0])


def test_invoke_with_interrupts_and_command_update(telemetry: Telemetry) -> None:
    def session() -> Result:
        graph = approval(LANGGRAPH, InMemorySaver())
        entries: list[Any] = []
        for version in ("v1", "v2"):
            config = {"configurable": {"thread_id": f"t-{version}"}}
            entries.append(graph.invoke({"x": 1, "log": []}, config, version=version))
            entries.append(graph.invoke(Command(resume="later", update={"log": ["edited"]}), config, version=version))
            entries.append(_state(graph, config))
        return Result(entries)

    compare(session, telemetry.logs, min_records=1)


def test_parallel_interrupts_resumed_by_id(telemetry: Telemetry) -> None:
    def session() -> Result:
        graph = parallel_interrupts(LANGGRAPH, InMemorySaver())
        config = {"configurable": {"thread_id": "t-1"}}
        entries: list[Any] = []
        modes = ["updates", "values", "tasks"]
        _stream(entries, graph, {"x": 0, "log": []}, config, stream_mode=modes)
        state = graph.get_state(config)
        _stream(entries, graph, Command(resume="plain"), config, stream_mode=modes)  # RuntimeError
        answers = {i.id: f"answer-{i.value}" for i in state.interrupts}
        _stream(entries, graph, Command(resume=answers), config, stream_mode=modes)
        entries.append(_state(graph, config))
        return Result(entries)

    entries, _ = compare(session, telemetry.logs, min_records=1)
    assert entries[1][1][-1][0] == "raised"


@pytest.mark.parametrize("subgraphs", [False, True])
def test_interrupt_inside_a_subgraph(telemetry: Telemetry, subgraphs: bool) -> None:
    def session() -> Result:
        graph = subgraph_interrupt(LANGGRAPH, InMemorySaver())
        config = {"configurable": {"thread_id": "t-1"}}
        entries: list[Any] = []
        modes = ["updates", "values", "tasks", "checkpoints"]
        _stream(entries, graph, {"x": 0, "log": []}, config, stream_mode=modes, subgraphs=subgraphs)
        entries.append(_state(graph, config))
        _stream(entries, graph, Command(resume="ok"), config, stream_mode=modes, subgraphs=subgraphs)
        entries.append(_state(graph, config))
        return Result(entries)

    compare(session, telemetry.logs, min_records=1)


def test_static_breakpoints(telemetry: Telemetry) -> None:
    def session() -> Result:
        graph = approval(LANGGRAPH, InMemorySaver(), interrupt_before=["b"], interrupt_after=["a"])
        config = {"configurable": {"thread_id": "t-1"}}
        entries: list[Any] = []
        _stream(entries, graph, {"x": 1, "log": []}, config, stream_mode=["updates", "values", "debug"])
        _stream(entries, graph, None, config, stream_mode=["updates", "values"])
        _stream(entries, graph, Command(resume="yes"), config, stream_mode=["updates", "values"])
        _stream(entries, graph, None, config, stream_mode="updates")
        return Result(entries)

    compare(session, telemetry.logs, min_records=1)


def test_command_goto_and_send(telemetry: Telemetry) -> None:
    def build() -> Any:
        def a(state: State) -> Any:
            return Command(goto=[Send("w", {"x": 5, "log": []}), "b"], update={"log": ["a"]})

        graph = StateGraph(State)
        graph.add_node("a", a, destinations=("w", "b"))
        graph.add_node("w", lambda s: {"log": [f"w{s['x']}"]})
        graph.add_node("b", lambda s: Command(goto=END, update={"x": 9}))
        graph.add_edge(START, "a")
        return graph.compile()

    for version in ("v1", "v2"):

        def collect(version: str = version) -> Result:
            return Result(list(build().stream({"x": 0, "log": []}, stream_mode=ALL, version=version)))

        compare(collect, telemetry.logs)


# --- early break, close, throw ---------------------------------------------------------------


def _slow_graph(events: list[str]) -> Any:
    def first(state: State) -> dict[str, Any]:
        return {"log": ["first"]}

    def slow(state: State) -> dict[str, Any]:
        time.sleep(STAGGER)
        events.append("slow done")
        return {"log": ["slow"]}

    def fast(state: State) -> dict[str, Any]:
        events.append("fast done")
        return {"log": ["fast"]}

    graph = StateGraph(State)
    graph.add_node("first", first)
    graph.add_node("slow", slow)
    graph.add_node("fast", fast)
    graph.add_node("last", lambda s: {"log": ["last"]})
    graph.add_edge(START, "first")
    graph.add_edge("first", "slow")
    graph.add_edge("first", "fast")
    graph.add_edge(["slow", "fast"], "last")
    return graph.compile()


class _RootErrors(BaseCallbackHandler):
    """Records what LangGraph's root run ended with: the error it saw, by type."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def on_chain_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        if parent_run_id is None:
            self.errors.append(type(error).__name__)


@pytest.mark.parametrize("mode", ["updates", ["updates", "custom"], "values"], ids=repr)
def test_break_waits_for_running_nodes_as_langgraph_does(telemetry: Telemetry, mode: Any) -> None:
    def session() -> Result:
        events: list[str] = []
        handler = _RootErrors()
        for chunk in _slow_graph(events).stream({"x": 0, "log": []}, {"callbacks": [handler]}, stream_mode=mode):
            events.append(f"got {chunk!r}")
            if "fast" in repr(chunk) or len(events) > 2:
                break
        events.append("after break")
        return Result([events, handler.errors])

    entries, _ = compare(session, telemetry.logs, min_records=1)
    assert entries[1] == ["GeneratorExit"]


def test_close_and_throw_reach_langgraph(telemetry: Telemetry) -> None:
    def session() -> Result:
        entries: list[Any] = []
        handler = _RootErrors()
        stream = _slow_graph([]).stream({"x": 0, "log": []}, {"callbacks": [handler]}, stream_mode="updates")
        entries.append(next(stream))
        try:
            stream.throw(KeyError("thrown by the app"))
        except KeyError as exc:
            entries.append(("raised", exc))
        entries.append(list(stream))  # a finished generator yields nothing more
        closed = _slow_graph([]).stream({"x": 0, "log": []}, {"callbacks": [handler]})
        entries.append(next(closed))
        closed.close()
        never_started = _slow_graph([]).stream({"x": 0, "log": []}, {"callbacks": [handler]})
        never_started.close()
        entries.append(handler.errors)
        return Result(entries)

    entries, _ = compare(session, telemetry.logs, min_records=2)
    assert entries[-1] == ["KeyError", "GeneratorExit"]


async def test_async_break_aclose_and_athrow(telemetry: Telemetry) -> None:
    async def session() -> Result:
        entries: list[Any] = []
        handler = _RootErrors()
        events: list[str] = []
        async for chunk in _slow_graph(events).astream({"x": 0, "log": []}, {"callbacks": [handler]}):
            events.append(f"got {chunk!r}")
            break
        events.append("after break")
        stream = _slow_graph([]).astream({"x": 0, "log": []}, {"callbacks": [handler]}, stream_mode="updates")
        entries.append(await stream.__anext__())
        await stream.aclose()
        thrown = _slow_graph([]).astream({"x": 0, "log": []}, {"callbacks": [handler]}, stream_mode="updates")
        entries.append(await thrown.__anext__())
        try:
            await thrown.athrow(KeyError("thrown"))
        except KeyError as exc:
            entries.append(("raised", exc))
        await asyncio.sleep(2 * STAGGER)  # the abandoned nodes finish either way
        entries.append(handler.errors)
        return Result(entries)

    entries, _ = await acompare(session, telemetry.logs, min_records=2)
    assert "KeyError" in entries[-1]


async def test_cancelled_consumer(telemetry: Telemetry) -> None:
    async def session() -> Result:
        started = asyncio.Event()

        async def slow(state: State) -> dict[str, Any]:
            started.set()
            await asyncio.sleep(10)
            return {"log": ["never"]}

        graph = StateGraph(State)
        graph.add_node("slow", slow)
        graph.add_edge(START, "slow")
        compiled = graph.compile()

        async def consume() -> list[Any]:
            return [c async for c in compiled.astream({"x": 0, "log": []})]

        task = asyncio.create_task(consume())
        await started.wait()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return Result(["cancelled"])
        return Result(["not cancelled"])

    entries, _ = await acompare(session, telemetry.logs, min_records=0)
    assert entries == ["cancelled"]


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("subgraphs", [False, True])
def test_node_errors_with_notes(telemetry: Telemetry, subgraphs: bool) -> None:
    def build() -> Any:
        def boom(state: State) -> dict[str, Any]:
            raise KeyError("inner broke")

        child = StateGraph(State)
        child.add_node("boom", boom)
        child.add_edge(START, "boom")
        graph = StateGraph(State)
        graph.add_node("ok", lambda s: {"log": ["ok"]})
        graph.add_node("child", child.compile())
        graph.add_edge(START, "ok")
        graph.add_edge("ok", "child")
        return graph.compile()

    def collect() -> Result:
        chunks: list[Any] = []
        try:
            for chunk in build().stream({"x": 0, "log": []}, stream_mode=["updates", "tasks"], subgraphs=subgraphs):
                chunks.append(chunk)
        except KeyError as exc:
            return Result(chunks, exc)
        return Result(chunks)

    _, error = compare(collect, telemetry.logs)
    assert error[1] == "KeyError" and len(error[3]) == 2


# --- graphs run inside nodes ------------------------------------------------------------------


@pytest.mark.parametrize("subgraphs", [False, True])
def test_child_on_its_own_thread_is_a_run_of_its_own(telemetry: Telemetry, subgraphs: bool) -> None:
    def build() -> Any:
        child = StateGraph(State)
        child.add_node("c", lambda s: {"log": ["c"]})
        child.add_edge(START, "c")
        compiled_child = child.compile(checkpointer=InMemorySaver())

        def caller(state: State) -> dict[str, Any]:
            out = compiled_child.invoke({"x": 0, "log": []}, {"configurable": {"thread_id": "child-thread"}})
            return {"log": out["log"]}

        graph = StateGraph(State)
        graph.add_node("caller", caller)
        graph.add_edge(START, "caller")
        return graph.compile()

    compare(
        lambda: Result(
            list(build().stream({"x": 0, "log": []}, stream_mode=["updates", "values"], subgraphs=subgraphs))
        ),
        telemetry.logs,
    )
    runs = {r.attributes["otelstream.run_id"] for r in stream_records_of(telemetry)}
    assert len(runs) == 2  # the child's chunks are its own run's, not the parent's


@pytest.mark.parametrize("subgraphs", [False, True])
def test_nested_config_and_explicit_inner_streams(telemetry: Telemetry, subgraphs: bool) -> None:
    config = {"metadata": {"m": 1}, "tags": ["t"], "configurable": {"thread_id": "t-1"}}
    compare(
        lambda: Result(
            list(
                in_node_caller_with_config(LANGGRAPH).stream(
                    {"log": []}, config, stream_mode=["updates", "custom", "tasks"], subgraphs=subgraphs
                )
            )
        ),
        telemetry.logs,
    )
    compare(
        lambda: Result(
            list(
                explicit_inner_stream(LANGGRAPH).stream(
                    {"log": []}, stream_mode=["updates", "custom"], subgraphs=subgraphs
                )
            )
        ),
        telemetry.logs,
    )


@needs((1, 2), 'stream_events(version="v3")')
@pytest.mark.filterwarnings("ignore:The v3 streaming protocol")
def test_stream_events_v3(telemetry: Telemetry) -> None:
    def collect() -> Result:
        graph = approval(LANGGRAPH, None)
        events = list(graph.stream_events({"x": 1, "log": []}, version="v3"))
        for event in events:
            event.get("params", {}).pop("timestamp", None)  # wall-clock milliseconds
        return Result([events])

    compare(collect, telemetry.logs, min_records=1)


async def test_astream_events_v2(telemetry: Telemetry) -> None:
    async def collect() -> Result:
        graph = approval(LANGGRAPH, None)
        events = [
            (e["event"], e["name"], e.get("data", {}).get("chunk"))
            async for e in graph.astream_events({"x": 1, "log": []}, version="v2")
        ]
        return Result([events])

    await acompare(collect, telemetry.logs, min_records=1)


def test_threads_keep_their_own_runs(telemetry: Telemetry) -> None:
    # two threads of one graph streaming at once: each run its own run id, no chunk crosses
    def collect() -> Result:
        graph = approval(LANGGRAPH, InMemorySaver())
        out: dict[int, list[Any]] = {}

        def worker(i: int) -> None:
            out[i] = list(graph.stream({"x": i, "log": []}, {"configurable": {"thread_id": f"t{i}"}}))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return Result([out[i] for i in range(4)])

    compare(collect, telemetry.logs, min_records=8)


# --- the functional API, pydantic state ---------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("mode", [["updates", "custom", "values"], "debug", "tasks", None], ids=repr)
def test_functional_api(telemetry: Telemetry, mode: Any, version: str) -> None:
    from langgraph.func import entrypoint, task

    def build() -> Any:
        @task
        def double(n: int) -> int:
            time.sleep((3 - n) * STAGGER)  # deterministic: they finish in the order 3, 2, 1
            get_stream_writer()({"doubling": n})
            return 2 * n

        @entrypoint(checkpointer=InMemorySaver())
        def workflow(numbers: list[int]) -> list[int]:
            results = [f.result() for f in [double(n) for n in numbers]]
            answer = interrupt("continue?")  # after the tasks: their chunks come first
            return [*results, len(str(answer))]

        return workflow

    def session() -> Result:
        graph = build()
        config = {"configurable": {"thread_id": "f-1"}}
        entries = [list(graph.stream([1, 2, 3], config, stream_mode=mode, version=version))]
        entries.append(list(graph.stream(Command(resume="go"), config, stream_mode=mode, version=version)))
        return Result(entries)

    compare(session, telemetry.logs, min_records=2)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_pydantic_state_with_interrupts(telemetry: Telemetry, version: str) -> None:
    from pydantic import BaseModel

    class Model(BaseModel):
        x: int = 0
        note: str = ""

    def build() -> Any:
        def ask(state: Model) -> dict[str, Any]:
            return {"note": str(interrupt({"x": state.x}))}

        graph = StateGraph(Model)
        graph.add_node("bump", lambda s: {"x": s.x + 1})
        graph.add_node("ask", ask)
        graph.add_edge(START, "bump")
        graph.add_edge("bump", "ask")
        return graph.compile(checkpointer=InMemorySaver())

    def session() -> Result:
        graph = build()
        config = {"configurable": {"thread_id": "p-1"}}
        modes = ["values", "updates", "checkpoints", "debug"]
        entries = [list(graph.stream(Model(), config, stream_mode=modes, version=version))]
        entries.append(list(graph.stream(Command(resume="done"), config, stream_mode=modes, version=version)))
        entries.append(graph.invoke(Model(x=5), {"configurable": {"thread_id": "p-2"}}, version=version))
        return Result(entries)

    compare(session, telemetry.logs, min_records=2)
