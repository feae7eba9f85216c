"""Replay of instrumented LangGraph runs: rebuilt from exported records alone, equal to what the app got."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

import otelstream
from otelstream import ExportOptions
from tests.conftest import Telemetry, make_telemetry
from tests.differential import LANGGRAPH, Build
from tests.langgraph_harness import VERSIONS, instrumented, needs
from tests.test_differential import explicit_inner_stream, in_node_caller, linear, nested_parent
from tests.test_differential_checkpoint import approval
from tests.test_differential_messages import _with_child

# "tools" is LangGraph's own (1.2) and not a mode replay knows
MODES: list[Any] = [
    "values",
    "updates",
    "custom",
    "messages",
    "tasks",
    "debug",
    ["updates", "values"],
    ["messages", "custom", "updates"],
    ["values", "updates", "custom", "messages", "tasks", "debug"],
]
GRAPHS: dict[str, tuple[Build, Any]] = {
    "linear": (linear, {"x": 1, "log": []}),
    "nested": (nested_parent, {"log": []}),
    "in_node_caller": (in_node_caller, {"log": []}),
    "explicit_inner_stream": (explicit_inner_stream, {"log": []}),
    "messages_with_child": (_with_child, {"messages": [HumanMessage("hi", id="h-1")]}),
}


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    yield make_telemetry()
    otelstream.configure()


def _replay(telemetry: Telemetry, run_id: str, mode: Any, subgraphs: bool, version: str) -> Any:
    return otelstream.replay(
        (telemetry.spans, telemetry.logs), run_id=run_id, stream_mode=mode, subgraphs=subgraphs, version=version
    )


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("subgraphs", [False, True])
@pytest.mark.parametrize("mode", MODES, ids=repr)
@pytest.mark.parametrize("graph", list(GRAPHS))
def test_replay_equals_what_the_application_got(
    telemetry: Telemetry, graph: str, mode: Any, subgraphs: bool, version: str
) -> None:
    build, input = GRAPHS[graph]
    with instrumented():  # default export modes: "updates" is recorded for every run
        streamed = list(
            build(LANGGRAPH).stream(input, {"run_id": "r-1"}, stream_mode=mode, subgraphs=subgraphs, version=version)
        )
    replayed = _replay(telemetry, "r-1", mode, subgraphs, version)
    assert replayed.complete, (replayed.gaps, replayed.notes)
    if graph == "messages_with_child":
        # the child's reducer gives c2's returned message its id on the child's thread, racing
        # the consumer: the application's object may already carry it when it arrives, the
        # record (emitted just before) may not. Plain LangGraph hands over the same live object.
        assert _without_message_ids(list(replayed)) == _without_message_ids(streamed)
    else:
        assert list(replayed) == streamed


def _without_message_ids(value: Any) -> Any:
    if isinstance(value, BaseMessage):
        return value.model_copy(update={"id": None})
    if isinstance(value, dict):
        return {k: _without_message_ids(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_without_message_ids(v) for v in value)
    return value


@pytest.mark.parametrize("version", VERSIONS)
def test_replay_of_a_thread_with_an_interrupt(telemetry: Telemetry, version: str) -> None:
    graph = approval(LANGGRAPH, InMemorySaver())
    modes = ["updates", "values", "custom"]
    with instrumented():
        first = list(
            graph.stream(
                {"x": 1, "log": []},
                {"run_id": "r-1", "configurable": {"thread_id": "t"}},
                stream_mode=modes,
                version=version,
            )
        )
        resumed = list(
            graph.stream(
                Command(resume="yes"),
                {"run_id": "r-2", "configurable": {"thread_id": "t"}},
                stream_mode=modes,
                version=version,
            )
        )
    assert list(_replay(telemetry, "r-1", modes, False, version)) == first
    assert list(_replay(telemetry, "r-2", modes, False, version)) == resumed
    runs = otelstream.replay_thread((telemetry.spans, telemetry.logs), "t", stream_mode=modes, version=version)
    assert [list(r) for r in runs] == [first, resumed]
    assert [r.run.outcome for r in runs] == ["interrupted", "completed"]


def test_replay_of_an_async_run_from_the_default_recorded_shape(telemetry: Telemetry) -> None:
    build, input = GRAPHS["nested"]

    async def consume() -> list[Any]:
        return [c async for c in build(LANGGRAPH).astream(input, {"run_id": "a-1"}, stream_mode="custom")]

    with instrumented():
        streamed = asyncio.run(consume())
    # no stream_mode: the modes and shape the run span recorded (a bare "custom" stream)
    assert list(otelstream.replay((telemetry.spans, telemetry.logs), run_id="a-1")) == streamed


def test_replay_of_an_invoke_run_holds_the_exported_updates(telemetry: Telemetry) -> None:
    build, input = GRAPHS["linear"]
    with instrumented():
        result = build(LANGGRAPH).invoke(input, {"run_id": "i-1"})
    updates = list(_replay(telemetry, "i-1", "updates", False, "v1"))
    assert [next(iter(u)) for u in updates] == ["a", "b"]
    values = list(_replay(telemetry, "i-1", "values", False, "v1"))
    assert values[-1] == result


def test_replay_from_the_otlp_json_file(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.otlp.jsonl"
    otelstream.configure(export=ExportOptions(file=str(path)))
    try:
        build, input = GRAPHS["messages_with_child"]
        with instrumented():
            streamed = list(
                build(LANGGRAPH).stream(input, {"run_id": "f-1"}, stream_mode=["messages", "updates"], subgraphs=True)
            )
        otelstream.force_flush()
        replayed = otelstream.replay(str(path), run_id="f-1", subgraphs=True)
        assert replayed.complete
        assert list(replayed) == streamed
    finally:
        otelstream.configure()


@needs((1, 1), 'stream(version="v2")')
def test_replay_of_functional_api_custom_writes_in_v2(telemetry: Telemetry) -> None:
    from langgraph.config import get_stream_writer
    from langgraph.func import entrypoint, task

    @task
    def step(n: int) -> int:
        get_stream_writer()({"step": n})
        return n

    @entrypoint()
    def workflow(n: int) -> int:
        return step(n).result() + 1

    graph: Any = workflow
    with instrumented():
        streamed = list(graph.stream(1, {"run_id": "fn-1"}, stream_mode=["custom", "updates"], version="v2"))
    # the task's custom write carries the task's namespace though subgraphs=False
    assert streamed[0]["ns"] != ()
    assert list(_replay(telemetry, "fn-1", ["custom", "updates"], True, "v2")) == streamed
