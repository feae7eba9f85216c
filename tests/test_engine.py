"""The engine on its own: graphs run with a list-collecting observer, no OpenTelemetry involved.

The engine reports through the small ``RunObserver`` protocol; these tests stand in for the
telemetry layer with an observer that only appends what it is told, and drive the loop with
the engine's own ``drive()``, so they pin exactly what the engine produces and when.
"""

from __future__ import annotations

import contextlib
import operator
import subprocess
import sys
import textwrap
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated, Any, TypedDict

from otelstream import END, START, Send, StateGraph
from otelstream.engine.drive import drive
from otelstream.engine.events import Outcome, RunInfo, StreamEvent, Task
from otelstream.engine.loop import RunLoop
from otelstream.engine.runner import SyncStepRunner

SRC = Path(__file__).resolve().parents[1] / "src"


class ListObserver:
    """Wants ``modes`` of the root graph and records every call it receives."""

    def __init__(self, modes: set[str]) -> None:
        self.modes = modes
        self.log: list[tuple[Any, ...]] = []

    def wants(self, namespace: tuple[str, ...], mode: str) -> bool:
        return mode in self.modes

    def emit(self, event: StreamEvent, run: RunInfo, task: Task | None) -> None:
        self.log.append(("chunk", event.mode, event.payload, event.node))

    def run_started(self, run: RunInfo) -> None:
        self.log.append(("run_started", run.graph_name))

    def run_ended(self, run: RunInfo, outcome: Outcome, error: BaseException | None) -> None:
        self.log.append(("run_ended", outcome))

    def task_scope(self, task: Task, run: RunInfo) -> AbstractContextManager[None]:
        self.log.append(("task_scope", task.name))
        return contextlib.nullcontext()

    def node_returned(self, task: Task, run: RunInfo, result: Any) -> None:
        self.log.append(("node_returned", task.name, result))

    def task_ended(self, task: Task, error: BaseException | None) -> None:
        self.log.append(("task_ended", task.name, None if error is None else type(error).__name__))

    def writer_for(self, run: RunInfo, task: Task) -> Callable[[Any], None]:
        return lambda chunk: self.log.append(("custom", task.name, chunk))

    def trace_reference(self, run: RunInfo) -> dict[str, str] | None:
        return None


class State(TypedDict):
    items: Annotated[list[str], operator.add]


def _run(graph: Any, input: Any, observer: ListObserver) -> RunLoop:
    run = RunInfo(run_id="r", graph_name=graph.name, namespace=(), parent_task=None, config={})
    loop = RunLoop(graph.topology, run, observer)
    loop.start(input)
    for _ in drive(loop, SyncStepRunner(), None, live=False):
        pass
    return loop


def test_a_chain_reports_each_task_and_its_update_in_order() -> None:
    builder = StateGraph(State)
    builder.add_node("a", lambda s: {"items": ["a"]})
    builder.add_node("b", lambda s: {"items": ["b"]})
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    graph = builder.compile(name="chain")
    observer = ListObserver({"updates", "values"})

    loop = _run(graph, {"items": []}, observer)

    assert observer.log == [
        ("chunk", "values", {"items": []}, None),
        ("task_scope", "a"),
        ("node_returned", "a", {"items": ["a"]}),
        ("chunk", "updates", {"a": {"items": ["a"]}}, "a"),
        ("task_ended", "a", None),
        ("chunk", "values", {"items": ["a"]}, None),
        ("task_scope", "b"),
        ("node_returned", "b", {"items": ["b"]}),
        ("chunk", "updates", {"b": {"items": ["b"]}}, "b"),
        ("task_ended", "b", None),
        ("chunk", "values", {"items": ["a", "b"]}, None),
    ]
    assert loop.output_values() == {"items": ["a", "b"]}


def test_payloads_are_built_only_for_the_modes_someone_wants() -> None:
    builder = StateGraph(State)
    builder.add_node("a", lambda s: {"items": ["a"]})
    builder.add_edge(START, "a")
    observer = ListObserver(set())

    _run(builder.compile(), {"items": []}, observer)

    assert [entry for entry in observer.log if entry[0] == "chunk"] == []


def test_send_packets_run_in_order_and_their_writes_apply_in_send_order() -> None:
    class Fan(TypedDict):
        items: Annotated[list[str], operator.add]
        topic: str

    def fan_out(state: Fan) -> list[Send]:
        return [Send("work", {"items": [], "topic": t}) for t in ("x", "y", "z")]

    builder = StateGraph(Fan)
    builder.add_node("work", lambda s: {"items": [s["topic"]]})
    builder.add_conditional_edges(START, fan_out)
    builder.add_edge("work", END)
    observer = ListObserver({"values"})

    loop = _run(builder.compile(), {"items": [], "topic": ""}, observer)

    assert [e[1] for e in observer.log if e[0] == "task_scope"] == ["work", "work", "work"]
    assert loop.output_values() == {"items": ["x", "y", "z"], "topic": ""}
    assert observer.log[-1] == ("chunk", "values", {"items": ["x", "y", "z"], "topic": ""}, None)


def test_a_custom_write_goes_to_the_observer_writer() -> None:
    from otelstream import get_stream_writer

    def node(state: State) -> dict[str, Any]:
        get_stream_writer()({"progress": 1})
        return {}

    builder = StateGraph(State)
    builder.add_node("n", node)
    builder.add_edge(START, "n")
    observer = ListObserver(set())

    _run(builder.compile(), {"items": []}, observer)

    assert ("custom", "n", {"progress": 1}) in observer.log


def test_the_engine_runs_without_opentelemetry_importable() -> None:
    # the package facade wires the OpenTelemetry pipeline; the engine below it must not need it
    script = textwrap.dedent(
        f"""
        import importlib.abc, sys, types

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "opentelemetry" or name.startswith("opentelemetry."):
                    raise ImportError("blocked: " + name)
                return None

        sys.meta_path.insert(0, Block())
        # load otelstream's subpackages without running the facade (which wires telemetry)
        package = types.ModuleType("otelstream")
        package.__path__ = [{str(SRC / "otelstream")!r}]
        sys.modules["otelstream"] = package

        import operator
        from typing import Annotated, TypedDict
        from otelstream.engine.drive import drive
        from otelstream.engine.events import NullObserver, RunInfo
        from otelstream.engine.graph import StateGraph
        from otelstream.engine.loop import RunLoop
        from otelstream.engine.runner import SyncStepRunner
        from otelstream.engine.types import START

        class State(TypedDict):
            items: Annotated[list, operator.add]

        builder = StateGraph(State)
        builder.add_node("a", lambda s: {{"items": ["a"]}})
        builder.add_edge(START, "a")
        graph = builder.compile()
        run = RunInfo(run_id="r", graph_name="g", namespace=(), parent_task=None, config={{}})
        loop = RunLoop(graph.topology, run, NullObserver())
        loop.start({{"items": []}})
        for _ in drive(loop, SyncStepRunner(), None, live=False):
            pass
        assert loop.output_values() == {{"items": ["a"]}}, loop.output_values()
        assert not any(m.startswith("opentelemetry") for m in sys.modules)
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
