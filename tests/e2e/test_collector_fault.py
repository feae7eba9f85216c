"""The collector dies mid-run: the application's stream is unaffected, and replay says what is missing.

Observed (otelstream 0.1.0, rotel 0.0.1a15, Phoenix 20.26.1, OTel SDK 1.45.2), with every mode
carried as span events and the exporter's retry budget at 2 s (OTEL_EXPORTER_OTLP_TIMEOUT):

- the run yields all 23 chunks in-process, identical (ids and timestamps aside) to a run of the
  same graph with a healthy collector; the only trace of the crash in the application is the SDK
  exporter's log ("Transient error ... Connection refused ... retrying", then "Failed to export
  spans batch due to timeout, max retries or shutdown");
- Phoenix holds only the span of node ``first``, which ended and was delivered before the kill:
  its four chunks (seq 3-6: custom, updates, tasks result, debug task_result). The spans that
  ended while the collector was down (``hold``, ``last`` and the run span, which carries the
  run-level chunks and the ``otelstream.run.end`` event) were dropped by the SDK after its
  retries; nothing was re-sent once the collector was back;
- ``otelstream.runs`` lists the run from its chunks alone: graph "job", no trace id, no start,
  outcome None, event_count None, received 4;
- ``otelstream.replay`` yields those four chunks (each equal to the in-process chunk with the
  same seq), reports ``gaps == [Gap(0, 3)]`` (the leading run-level chunks), and
  ``complete is False`` with the note that the run-end record is missing, so the lost tail
  (seq 7-22) cannot be counted; ``strict=True`` raises IncompleteStreamError;
- asking for the modes the run streamed (``stream_mode=MODES``) raised
  ``ReplayError: run ... did not stream ['values']; it streamed ['custom', 'updates', 'tasks',
  'debug']``: the modes are inferred from the surviving chunks, and every ``values`` chunk was
  on the lost run span. An error, so not silent, but its wording is wrong (the run did stream
  values); see the report;
- after the restart, a second run goes through the same collector and replays complete.
"""

from __future__ import annotations

import functools
import operator
import threading
import uuid
from typing import Annotated, Any, TypedDict

import pytest

import otelstream
from otelstream import END, START, StateGraph, StreamMode, get_stream_writer
from tests.e2e.conftest import (
    INGEST_TIMEOUT_S,
    Collector,
    Phoenix,
    wait_for_complete_run,
    wait_until,
)

MODES: list[StreamMode] = ["values", "updates", "custom", "tasks", "debug"]
WAITING = ("custom", {"node": "hold", "waiting": True})
FINAL = ("values", {"steps": ["first", "hold", "last"]})


class Job(TypedDict):
    steps: Annotated[list[str], operator.add]


def job_graph(resume: threading.Event) -> otelstream.CompiledStateGraph:
    """first -> hold (writes WAITING, then waits for ``resume``) -> last."""

    def first(state: Job) -> dict[str, Any]:
        get_stream_writer()({"node": "first"})
        return {"steps": ["first"]}

    def hold(state: Job) -> dict[str, Any]:
        write = get_stream_writer()
        write(WAITING[1])
        if not resume.wait(INGEST_TIMEOUT_S * 2):
            raise TimeoutError("the test never set the resume event")
        write({"node": "hold", "resumed": True})
        return {"steps": ["hold"]}

    def last(state: Job) -> dict[str, Any]:
        get_stream_writer()({"node": "last"})
        return {"steps": ["last"]}

    graph = StateGraph(Job)
    graph.add_node("first", first)
    graph.add_node("hold", hold)
    graph.add_node("last", last)
    graph.add_edge(START, "first")
    graph.add_edge("first", "hold")
    graph.add_edge("hold", "last")
    graph.add_edge("last", END)
    return graph.compile(name="job")


def produced_by(node: str, mode: str, chunk: Any) -> bool:
    """Whether ``chunk`` is one the node's own span carries (not a run-level chunk)."""
    if mode == "custom":
        return bool(chunk.get("node") == node)
    if mode == "updates":
        return node in chunk
    if mode == "tasks":
        return bool(chunk["name"] == node and "result" in chunk)
    if mode == "debug":
        return bool(chunk["type"] == "task_result" and chunk["payload"]["name"] == node)
    return False


def _stored_chunks(phoenix: Phoenix, project: str, run_id: str) -> int | None:
    try:
        listed = otelstream.runs(phoenix.url, project=project)
    except otelstream.ReplaySourceError:
        return None  # no span of the project is stored yet
    return next((run.received for run in listed if run.run_id == run_id and run.received), None)


def test_a_collector_crash_mid_run_is_reported_by_replay_never_presented_as_complete(
    phoenix: Phoenix,
    otlp_app: None,
    collector: Collector,
    project: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # while the collector is down, each export gives up after 2 s of retries
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2")
    otelstream.configure(export=otelstream.ExportOptions(otlp=True), span_event_modes=MODES)
    resume = threading.Event()

    streamed: list[Any] = []
    crashed_run = str(uuid.uuid4())
    killed = False
    for chunk in job_graph(resume).stream({"steps": []}, {"run_id": crashed_run}, stream_mode=MODES):
        streamed.append(chunk)
        if chunk == WAITING:
            # node "first" has ended and its span (its chunks as events) went out through the
            # collector: wait until Phoenix stores it, so that what is lost is the crash's doing
            killed = True
            wait_until(
                functools.partial(_stored_chunks, phoenix, project, crashed_run),
                timeout_s=INGEST_TIMEOUT_S,
                what="node first's span in Phoenix",
            )
            collector.kill()
            resume.set()
    assert killed, "node hold never wrote its waiting chunk"
    # the run ended while the collector was down: these exports fail and are given up
    otelstream.force_flush()

    collector.restart()
    reference_run = str(uuid.uuid4())
    reference = list(job_graph(resume).stream({"steps": []}, {"run_id": reference_run}, stream_mode=MODES))
    assert otelstream.force_flush()

    # the application is unaffected: its stream is whole, chunk for chunk like a healthy run's
    # (tasks and debug chunks hold task ids and timestamps of their own)
    assert streamed[-1] == FINAL
    assert [mode for mode, _ in streamed] == [mode for mode, _ in reference]
    assert [c for c in streamed if c[0] in ("values", "updates", "custom")] == [
        c for c in reference if c[0] in ("values", "updates", "custom")
    ]

    # the restarted collector delivers: the healthy run replays complete
    wait_for_complete_run(phoenix, project, reference_run)
    healthy = otelstream.replay(phoenix.url, project=project, run_id=reference_run, stream_mode=MODES)
    assert list(healthy) == reference
    assert healthy.complete

    # the crashed run: the backend holds node first's chunks only, and replay says it is partial
    stored = [(seq, chunk) for seq, chunk in enumerate(streamed) if produced_by("first", *chunk)]
    assert stored, "node first produced chunks"
    [summary] = [run for run in otelstream.runs(phoenix.url, project=project) if run.run_id == crashed_run]
    assert (summary.graph, summary.outcome, summary.event_count, summary.received) == ("job", None, None, len(stored))
    assert summary.missing is None  # unknown, not zero

    crashed = otelstream.replay(phoenix.url, project=project, run_id=crashed_run)
    assert list(crashed) == [chunk for _, chunk in stored]
    assert [seq for seq, _ in crashed.numbered()] == [seq for seq, _ in stored]
    first_stored = stored[0][0]
    assert crashed.gaps == [otelstream.Gap(0, first_stored)]
    assert not crashed.complete
    assert any("run.end record is not in the source" in note for note in crashed.notes)
    with pytest.raises(otelstream.IncompleteStreamError):
        otelstream.replay(phoenix.url, project=project, run_id=crashed_run, strict=True)

    # asking for every mode the run streamed: an error (observed) or an incomplete replay
    try:
        asked = otelstream.replay(phoenix.url, project=project, run_id=crashed_run, stream_mode=MODES)
    except otelstream.ReplayError:
        pass
    else:
        assert not asked.complete
