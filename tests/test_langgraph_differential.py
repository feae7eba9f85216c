"""Differential suite: plain LangGraph vs LangGraph instrumented by otelstream, chunk for chunk.

The graphs are the project's differential corpus (``tests/test_differential*.py``), built
with the real LangGraph; every run is collected on plain and on instrumented LangGraph in
this test run and compared after normalisation (see ``tests/langgraph_harness.py``), over
stream modes x subgraphs x v1/v2 x sync/async, ``invoke``/``ainvoke``, errors, and the
export-mode settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

import otelstream
from tests.conftest import Telemetry, make_telemetry
from tests.differential import LANGGRAPH, Build, Result, arun, invoke, run
from tests.langgraph_harness import acompare, compare
from tests.test_differential import explicit_inner_stream, in_node_caller, linear, nested_parent
from tests.test_differential_async import async_graph, sync_graph
from tests.test_differential_flow import counter_loop, map_reduce
from tests.test_differential_messages import _with_child

MODE_MATRIX: list[Any] = [
    None,
    "values",
    "updates",
    "custom",
    "messages",
    "checkpoints",
    "tasks",
    "debug",
    ["values"],
    ["updates", "values"],
    ("updates", "values"),
    ["messages", "custom", "updates"],
    ["values", "updates", "custom", "messages", "checkpoints", "tasks", "debug"],
]
GRAPHS: dict[str, tuple[Build, Any]] = {
    "linear": (linear, {"x": 1, "log": []}),
    "nested": (nested_parent, {"log": []}),
    "in_node_caller": (in_node_caller, {"log": []}),
    "explicit_inner_stream": (explicit_inner_stream, {"log": []}),
    "messages_with_child": (_with_child, {"messages": [HumanMessage("hi", id="h-1")]}),
}
EXPORTS: dict[str, list[str] | None] = {
    "default": None,
    "none": [],
    "free": ["updates", "values", "tasks", "checkpoints", "debug"],
}


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    yield make_telemetry()
    otelstream.configure()


def _collect(build: Build, input: Any, **kwargs: Any) -> Any:
    return lambda: run(LANGGRAPH, build, input, **kwargs)


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("subgraphs", [False, True])
@pytest.mark.parametrize("mode", MODE_MATRIX, ids=repr)
@pytest.mark.parametrize("graph", list(GRAPHS))
def test_stream_matrix(telemetry: Telemetry, graph: str, mode: Any, subgraphs: bool, version: str) -> None:
    build, input = GRAPHS[graph]
    compare(_collect(build, input, stream_mode=mode, subgraphs=subgraphs, version=version), telemetry.logs)


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("subgraphs", [False, True])
@pytest.mark.parametrize("mode", MODE_MATRIX, ids=repr)
@pytest.mark.parametrize("graph", ["linear", "nested", "messages_with_child"])
async def test_astream_matrix(telemetry: Telemetry, graph: str, mode: Any, subgraphs: bool, version: str) -> None:
    build, input = GRAPHS[graph]
    await acompare(
        lambda: arun(LANGGRAPH, build, input, stream_mode=mode, subgraphs=subgraphs, version=version),
        telemetry.logs,
    )


@pytest.mark.parametrize("export", list(EXPORTS))
@pytest.mark.parametrize("mode", [None, "values", "custom", ["updates", "messages"]], ids=repr)
@pytest.mark.parametrize("graph", list(GRAPHS))
def test_export_modes_leave_the_stream_alone(telemetry: Telemetry, graph: str, mode: Any, export: str) -> None:
    build, input = GRAPHS[graph]
    for subgraphs in (False, True):
        compare(
            _collect(build, input, stream_mode=mode, subgraphs=subgraphs), telemetry.logs, export_modes=EXPORTS[export]
        )


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("mode", [None, "values", "updates", ["updates", "custom"], "debug"], ids=repr)
@pytest.mark.parametrize("graph", list(GRAPHS))
def test_invoke(telemetry: Telemetry, graph: str, mode: Any, version: str) -> None:
    build, input = GRAPHS[graph]
    kwargs: dict[str, Any] = {"version": version}
    if mode is not None:
        kwargs["stream_mode"] = mode
    chunks, _ = compare(lambda: invoke(LANGGRAPH, build, input, **kwargs), telemetry.logs)
    assert chunks


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("graph", list(GRAPHS))
async def test_ainvoke(telemetry: Telemetry, graph: str, version: str) -> None:
    build, input = GRAPHS[graph]

    async def collect() -> Result:
        compiled = build(LANGGRAPH)
        try:
            return Result([await compiled.ainvoke(input, version=version)])
        except Exception as exc:
            return Result([], exc)

    await acompare(collect, telemetry.logs)


@pytest.mark.parametrize("subgraphs", [False, True])
@pytest.mark.parametrize("mode", [["updates", "values", "custom", "tasks"], "debug"], ids=repr)
def test_send_and_command(telemetry: Telemetry, mode: Any, subgraphs: bool) -> None:
    # Send fan-out (completion order differs from Send order), Command(goto=[Send, ...]), a subgraph
    compare(_collect(map_reduce, {"items": []}, stream_mode=mode), telemetry.logs)
    compare(_collect(sync_graph, {"x": 0, "log": []}, stream_mode=mode, subgraphs=subgraphs), telemetry.logs)


@pytest.mark.parametrize("subgraphs", [False, True])
async def test_async_nodes(telemetry: Telemetry, subgraphs: bool) -> None:
    await acompare(
        lambda: arun(
            LANGGRAPH, async_graph, {"x": 0}, stream_mode=["values", "updates", "custom", "tasks"], subgraphs=subgraphs
        ),
        telemetry.logs,
    )


def test_errors_come_out_the_same(telemetry: Telemetry) -> None:
    # a recursion limit: every chunk before it, then the same error (type, message, notes)
    _, error = compare(
        _collect(counter_loop, {"x": -1}, config={"recursion_limit": 4}, stream_mode=["updates", "custom"]),
        telemetry.logs,
    )
    assert error[1] == "GraphRecursionError"
    # an async node under sync stream(): LangGraph's own TypeError
    _, error = compare(_collect(async_graph, {"x": 0}, stream_mode="updates"), telemetry.logs)
    assert error[1] == "TypeError"
