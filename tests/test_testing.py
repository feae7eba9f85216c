"""otelstream.testing: captures isolate and restore, and the rebuilt stream is checked against the yielded one."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

import otelstream
import otelstream.testing
from otelstream import START, StateGraph, get_stream_writer
from otelstream.checkpoint import InMemorySaver
from tests.conftest import Telemetry, make_telemetry


def _concat(a: list[str], b: list[str]) -> list[str]:
    return a + b


class State(TypedDict):
    log: Annotated[list[str], _concat]
    blob: str


def _graph(checkpointer: InMemorySaver | None = None) -> otelstream.CompiledStateGraph:
    def step(state: State) -> dict[str, Any]:
        write = get_stream_writer()
        write({"progress": 1, "pair": ("a", 1)})
        write({"progress": 2, "when": {1, 2}})
        return {"log": ["inner"]}

    inner = StateGraph(State)
    inner.add_node("step", step)
    inner.add_edge(START, "step")

    g = StateGraph(State)
    g.add_node("first", lambda s: {"log": ["first"], "blob": "x" * 100})
    g.add_node("inner", inner.compile(name="inner"))
    g.add_edge(START, "first")
    g.add_edge("first", "inner")
    return g.compile(name="captured", checkpointer=checkpointer)


def _async_graph() -> otelstream.CompiledStateGraph:
    async def first(state: State) -> dict[str, Any]:
        get_stream_writer()({"async": True})
        await asyncio.sleep(0)
        return {"log": ["first"]}

    async def second(state: State) -> dict[str, Any]:
        return {"log": ["second"], "blob": "done"}

    g = StateGraph(State)
    g.add_node("first", first)
    g.add_node("second", second)
    g.add_edge(START, "first")
    g.add_edge("first", "second")
    return g.compile(name="async_captured")


@pytest.fixture(autouse=True)
def _default_configuration() -> Iterator[None]:
    # every test starts and ends on the default configuration, whatever it set itself
    otelstream.configure()
    yield
    otelstream.configure()


def test_a_capture_holds_the_run_spans_and_stream_records() -> None:
    with otelstream.testing.capture() as captured:
        yielded = list(_graph().stream({"log": []}, stream_mode=["updates", "custom"], subgraphs=True))
    [run] = captured.runs()
    assert (run.graph, run.outcome, run.stream_modes, run.subgraphs) == (
        "captured",
        "completed",
        ("updates", "custom"),
        True,
    )
    assert run.event_count == run.received == len(yielded) == 5
    names = sorted(span.name for span in captured.spans())
    assert names == [
        "invoke_node first",
        "invoke_node inner",
        "invoke_node step",
        "invoke_workflow captured",
        "invoke_workflow inner",
    ]
    records = captured.records()
    assert [r.log_record.event_name for r in records] == [
        "otelstream.updates",
        "otelstream.custom",
        "otelstream.custom",
        "otelstream.updates",
        "otelstream.updates",
    ]
    assert [(r.log_record.attributes or {})["otelstream.seq"] for r in records] == [0, 1, 2, 3, 4]
    assert len(captured.records(mode="custom")) == 2
    assert captured.records(run.run_id) == records and captured.records("another run") == []
    # the run-end record is a log too, but carries no chunk
    assert [r.log_record.event_name for r in captured.logs()] == [
        *(r.log_record.event_name for r in records),
        "otelstream.run.end",
    ]


@pytest.mark.parametrize(
    ("stream_mode", "subgraphs"),
    [
        ("values", False),
        ("updates", True),
        (["updates", "custom"], False),
        (["values", "updates", "custom", "debug", "tasks", "checkpoints"], True),
    ],
)
def test_the_rebuilt_stream_equals_the_yielded_one(stream_mode: Any, subgraphs: bool) -> None:
    config: Any = {"configurable": {"thread_id": "t"}}
    with otelstream.testing.capture() as captured:
        yielded = list(
            _graph(InMemorySaver()).stream({"log": []}, config, stream_mode=stream_mode, subgraphs=subgraphs)
        )
    assert yielded
    captured.assert_same_stream(yielded)
    assert list(captured.replay()) == yielded
    assert captured.replay().complete


def test_the_rebuilt_stream_follows_the_runs_own_subgraphs_flag() -> None:
    with otelstream.testing.capture() as captured:
        yielded = list(_graph().stream({"log": []}, stream_mode="custom", subgraphs=True))
    # otelstream.replay() defaults to subgraphs=False, which would drop every chunk here
    assert list(otelstream.replay((captured.span_exporter, captured.log_exporter))) == []
    assert [ns for ns, _ in captured.replay()] == [ns for ns, _ in yielded] and yielded[0][0]
    captured.assert_same_stream(yielded)
    assert list(captured.replay(subgraphs=False)) == []


async def test_an_async_stream_is_captured_and_rebuilt() -> None:
    with otelstream.testing.capture() as captured:
        yielded = [c async for c in _async_graph().astream({"log": []}, stream_mode=["updates", "custom", "values"])]
    assert ("custom", {"async": True}) in yielded
    captured.assert_same_stream(yielded)


def test_version_v2_chunks_are_rebuilt_when_asked_for() -> None:
    with otelstream.testing.capture() as captured:
        yielded = list(_graph().stream({"log": []}, stream_mode=["updates", "values"], subgraphs=True, version="v2"))
    assert yielded[0]["type"] == "values"
    captured.assert_same_stream(yielded, version="v2")


def test_chunks_carried_as_span_events_are_rebuilt_too() -> None:
    with otelstream.testing.capture(span_event_modes=["updates"]) as captured:
        yielded = list(_graph().stream({"log": []}, stream_mode=["updates", "custom"], subgraphs=True))
    assert captured.records(mode="updates") == [] and len(captured.records(mode="custom")) == 2
    events = [e.name for s in captured.spans() for e in s.events if e.name == "otelstream.updates"]
    assert len(events) == 3
    captured.assert_same_stream(yielded)


def test_several_runs_need_a_run_id() -> None:
    with otelstream.testing.capture() as captured:
        first = list(_graph().stream({"log": []}, {"run_id": "run-a"}, stream_mode="updates"))
        second = list(_graph().stream({"log": []}, {"run_id": "run-b"}, stream_mode="custom", subgraphs=True))
    assert [r.run_id for r in captured.runs()] == ["run-a", "run-b"]
    captured.assert_same_stream(first, run_id="run-a")
    captured.assert_same_stream(second, run_id="run-b")
    with pytest.raises(AssertionError, match=r"run run-a rebuilds 2; first mismatch at chunk \[0\]"):
        captured.assert_same_stream(second, run_id="run-a", subgraphs=True)
    with pytest.raises(otelstream.ReplayError, match="the source holds 2 runs; name one with run_id="):
        captured.assert_same_stream(first)
    with pytest.raises(otelstream.ReplayError, match="run run-c has no telemetry"):
        captured.replay("run-c")
    assert [len(captured.records(run)) for run in ("run-a", "run-b")] == [2, 2]


def _mismatch(yielded: list[Any], captured: otelstream.testing.Capture) -> str:
    with pytest.raises(AssertionError) as raised:
        captured.assert_same_stream(yielded)
    return str(raised.value)


def test_assert_same_stream_names_the_first_mismatch() -> None:
    with otelstream.testing.capture() as captured:
        yielded = list(_graph().stream({"log": []}, stream_mode=["updates", "custom"], subgraphs=True))
    run = captured.runs()[0].run_id

    altered = list(yielded)
    ns, mode, _ = altered[3]
    altered[3] = (ns, mode, {"step": {"log": ["outer"]}})
    altered[4] = ("changed too", "but", "not reported")
    message = _mismatch(altered, captured)
    assert message.splitlines()[:2] == [
        f"stream() yielded 5 chunks, the telemetry of run {run} rebuilds 5; "
        "first mismatch at chunk [3] (otelstream.seq 3):",
        "  at [3][2]['step']['log'][0]: 'outer' != 'inner'",
    ]
    assert "  yielded:" in message and "  rebuilt:" in message and "not reported" not in message

    # a tuple the telemetry brings back as a list would be a decoding bug: the types are named
    altered = list(yielded)
    altered[1] = (altered[1][0], "custom", {"progress": 1, "pair": ["a", 1]})
    assert "  at [1][2]['pair']: ['a', 1] != ('a', 1) (yielded list, rebuilt tuple)" in _mismatch(altered, captured)

    altered = list(yielded)
    altered[0] = ((), "updates", {"first": {"log": ["first"]}})
    assert "  at [0][2]['first']['blob']: <missing> != 'xxxx" in _mismatch(altered, captured)

    message = _mismatch(yielded[:4], captured)
    assert message.splitlines()[0].endswith("rebuilds 5; first mismatch at chunk [4] (otelstream.seq 4):")
    assert message.splitlines()[1] == "  stream() yielded no such chunk; the telemetry holds:"

    message = _mismatch([*yielded, ((), "custom", {"extra": 1})], captured)
    assert message.splitlines()[0] == (
        f"stream() yielded 6 chunks, the telemetry of run {run} rebuilds 5; first mismatch at chunk [5]:"
    )
    assert message.splitlines()[1:] == [
        "  the telemetry has no such chunk; stream() yielded:",
        "    ((), 'custom', {'extra': 1})",
    ]


def test_a_payload_cut_in_telemetry_is_reported_as_the_mismatch() -> None:
    with otelstream.testing.capture(max_payload_bytes=40) as captured:
        yielded = list(_graph().stream({"log": []}, stream_mode="updates"))
    message = _mismatch(yielded, captured)
    assert re.search(r"at \[0\]: \{'first': .*\} != TruncatedPayload\(seq=0", message.splitlines()[1])
    assert "  the rebuilt stream is incomplete: gaps [], truncated chunks (seq) [0, 1], emitted count 2" in message


def test_assert_same_stream_reads_any_replay_source(tmp_path: Path) -> None:
    path = tmp_path / "run.otlp.jsonl"
    otelstream.configure(export=otelstream.ExportOptions(file=str(path)))
    yielded = list(_graph().stream({"log": []}, stream_mode=["values", "custom"], subgraphs=True))
    otelstream.force_flush()
    otelstream.testing.assert_same_stream(yielded, path)
    with pytest.raises(AssertionError, match=r"first mismatch at chunk \[0\]"):
        otelstream.testing.assert_same_stream(yielded[1:], path)


def _run(stream_mode: Any = "updates") -> list[Any]:
    return list(_graph().stream({"log": []}, stream_mode=stream_mode))


def test_a_capture_restores_the_previous_configuration() -> None:
    before: Telemetry = make_telemetry()
    otelstream.configure(
        tracer_provider=before.tracer_provider,
        logger_provider=before.logger_provider,
        span_event_modes=["updates"],
    )
    with otelstream.testing.capture() as captured:
        inside = _run()
    after = _run()
    # the capture saw its run only, with its own (default) carrier: log records
    assert len(captured.runs()) == 1 and len(captured.records(mode="updates")) == len(inside) == 2
    # the previous providers saw the run after the capture only, still with span events
    [run] = otelstream.runs((before.spans, before.logs))
    assert run.run_id != captured.runs()[0].run_id
    assert not any(r.log_record.event_name == "otelstream.updates" for r in before.logs.get_finished_logs())
    assert len([e for s in before.spans.get_finished_spans() for e in s.events if e.name == "otelstream.updates"]) == 2
    otelstream.testing.assert_same_stream(after, (before.spans, before.logs))


def test_a_file_export_keeps_working_after_a_capture(tmp_path: Path) -> None:
    path = tmp_path / "app.otlp.jsonl"
    otelstream.configure(export=otelstream.ExportOptions(file=str(path)), service_name="app")
    first = _run()
    with otelstream.testing.capture() as captured:
        _run()
    second = _run(["updates", "custom"])
    otelstream.force_flush()
    [run_one, run_two] = otelstream.runs(path)
    otelstream.testing.assert_same_stream(first, path, run_id=run_one.run_id)
    otelstream.testing.assert_same_stream(second, path, run_id=run_two.run_id)
    assert captured.runs()[0].run_id not in (run_one.run_id, run_two.run_id)


def test_two_captures_in_sequence_are_isolated() -> None:
    with otelstream.testing.capture() as first:
        _run()
    with otelstream.testing.capture() as second:
        assert second.spans() == [] and second.logs() == []
        _run("custom")
    assert [r.stream_modes for r in first.runs()] == [("updates",)]
    assert [r.stream_modes for r in second.runs()] == [("custom",)]
    assert {s.context.trace_id for s in first.spans() if s.context}.isdisjoint(
        {s.context.trace_id for s in second.spans() if s.context}
    )
    first.clear()
    assert first.spans() == [] and first.runs() == [] and len(second.runs()) == 1


def test_a_nested_capture_hands_back_to_the_outer_one() -> None:
    with otelstream.testing.capture() as outer:
        with otelstream.testing.capture(span_event_modes=["updates"]) as inner:
            _run()
        _run()
    assert len(inner.runs()) == 1 and inner.records() == []
    # the outer capture's own carrier is back: the second run's updates are log records
    assert len(outer.runs()) == 1 and len(outer.records(mode="updates")) == 2


def test_an_exception_in_the_block_still_restores() -> None:
    before = make_telemetry()
    with pytest.raises(RuntimeError, match="boom"), otelstream.testing.capture() as captured:
        _run()
        raise RuntimeError("boom")
    _run()
    assert len(captured.runs()) == 1 and len(otelstream.runs((before.spans, before.logs))) == 1


def test_an_invalid_option_changes_nothing() -> None:
    before = make_telemetry()
    with pytest.raises(otelstream.InvalidStreamArgumentError, match="Unknown span_event_modes"):
        with otelstream.testing.capture(span_event_modes=["bogus"]):
            pass  # pragma: no cover - never entered
    _run()
    assert len(otelstream.runs((before.spans, before.logs))) == 1


def test_a_run_left_open_at_exit_keeps_exporting_to_its_capture() -> None:
    with otelstream.testing.capture() as captured:
        stream = _graph().stream({"log": []}, stream_mode="updates")
        first = next(stream)
    rest = list(stream)
    captured.assert_same_stream([first, *rest])
    assert captured.runs()[0].outcome == "completed"


def test_additional_processors_keep_receiving_after_a_capture() -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    otelstream.configure(additional_span_processors=[SimpleSpanProcessor(exporter)])
    _run()
    with otelstream.testing.capture():
        _run()
    _run()
    assert len(otelstream.runs(exporter)) == 2
