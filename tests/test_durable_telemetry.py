"""Telemetry of durable runs: interrupts are not errors, resumes link to what they continue.

A human-in-the-loop thread is several runs. Each run span carries the thread id
(``gen_ai.conversation.id``); a run that continues a thread links to the span of the run
that wrote the checkpoint it starts from; replaying the thread gives back each run's
stream, in order.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

import otelstream
from otelstream import StreamMode
from otelstream.telemetry import semconv
from tests.conftest import Telemetry

MODES: list[StreamMode] = ["updates", "values", "custom", "tasks", "checkpoints"]


class State(TypedDict):
    request: str
    log: Annotated[list[str], operator.add]


def approval_graph(saver: otelstream.BaseCheckpointSaver) -> otelstream.CompiledStateGraph:
    def draft(state: State) -> dict[str, Any]:
        otelstream.get_stream_writer()({"drafting": state["request"]})
        return {"log": ["drafted"]}

    def review(state: State) -> dict[str, Any]:
        verdict = otelstream.interrupt({"approve?": state["request"]})
        return {"log": [f"review:{verdict}"]}

    def publish(state: State) -> dict[str, Any]:
        return {"log": ["published"]}

    graph = otelstream.StateGraph(State)
    graph.add_node(draft)
    graph.add_node(review)
    graph.add_node(publish)
    graph.add_edge(otelstream.START, "draft")
    graph.add_edge("draft", "review")
    graph.add_edge("review", "publish")
    return graph.compile(checkpointer=saver, name="approval")


def _run_spans(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return sorted(
        (s for s in spans if s.name == "invoke_workflow approval"),
        key=lambda s: s.start_time or 0,
    )


def test_an_interrupt_ends_the_run_as_interrupted_not_failed(telemetry: Telemetry) -> None:
    graph = approval_graph(otelstream.InMemorySaver())
    config = {"configurable": {"thread_id": "thread-7"}, "run_id": "first"}
    list(graph.stream({"request": "post", "log": []}, config))

    spans = telemetry.spans.get_finished_spans()
    (run,) = _run_spans(list(spans))
    assert run.attributes is not None
    assert run.attributes[semconv.OUTCOME] == "interrupted"
    assert run.attributes[semconv.GEN_AI_CONVERSATION_ID] == "thread-7"
    assert run.status.status_code is StatusCode.UNSET
    (review,) = [s for s in spans if s.name == "invoke_node review"]
    assert review.attributes is not None
    assert review.attributes[semconv.OUTCOME] == "interrupted"
    assert review.attributes[semconv.INTERRUPTS] == 1
    assert review.status.status_code is StatusCode.UNSET
    assert not review.events  # no exception recorded: a pause is not an error
    end = [r for r in telemetry.logs.get_finished_logs() if r.log_record.event_name == semconv.RUN_END_EVENT]
    assert end[0].log_record.attributes is not None
    assert end[0].log_record.attributes[semconv.OUTCOME] == "interrupted"
    assert end[0].log_record.attributes[semconv.GEN_AI_CONVERSATION_ID] == "thread-7"


def test_a_resumed_run_links_to_the_interrupted_run(telemetry: Telemetry) -> None:
    graph = approval_graph(otelstream.InMemorySaver())
    thread = {"configurable": {"thread_id": "thread-8"}}
    list(graph.stream({"request": "post", "log": []}, thread))
    list(graph.stream(otelstream.Command(resume="yes"), thread))
    list(graph.stream({"request": "again"}, thread))  # new input on the thread: linked too

    first, resumed, again = _run_spans(list(telemetry.spans.get_finished_spans()))
    assert [s.attributes[semconv.OUTCOME] for s in (first, resumed, again) if s.attributes] == [
        "interrupted",
        "completed",
        "interrupted",
    ]
    assert not first.links
    for earlier, later in ((first, resumed), (resumed, again)):
        (link,) = later.links
        assert earlier.context is not None and later.context is not None
        assert link.context.trace_id == earlier.context.trace_id
        assert link.context.span_id == earlier.context.span_id
        assert link.attributes is not None
        assert link.attributes[semconv.LINK_REASON] == semconv.LINK_CONTINUES_THREAD
        # a link, not re-parenting: each run is the root of its own trace
        assert later.parent is None and later.context.trace_id != earlier.context.trace_id
    assert {s.attributes[semconv.GEN_AI_CONVERSATION_ID] for s in (first, resumed, again) if s.attributes} == {
        "thread-8"
    }


def test_a_thread_links_across_processes_through_the_sqlite_checkpoint(telemetry: Telemetry, tmp_path: Any) -> None:
    path = tmp_path / "threads.db"
    thread = {"configurable": {"thread_id": "thread-9"}}
    with otelstream.SqliteSaver(path) as saver:
        list(approval_graph(saver).stream({"request": "post", "log": []}, thread))
    with otelstream.SqliteSaver(path) as reopened:  # as a new process would
        list(approval_graph(reopened).stream(otelstream.Command(resume="ok"), thread))
    first, resumed = _run_spans(list(telemetry.spans.get_finished_spans()))
    assert first.context is not None
    assert resumed.links[0].context.span_id == first.context.span_id


def test_replaying_a_thread_gives_each_runs_stream_in_order(telemetry: Telemetry) -> None:
    graph = approval_graph(otelstream.InMemorySaver())
    thread = {"configurable": {"thread_id": "thread-10"}}
    streamed = [
        list(graph.stream({"request": "post", "log": []}, thread, stream_mode=MODES)),
        list(graph.stream(otelstream.Command(resume="yes"), thread, stream_mode=MODES)),
    ]
    other = {"configurable": {"thread_id": "another"}}
    list(graph.stream({"request": "unrelated", "log": []}, other, stream_mode=MODES))

    replays = otelstream.replay_thread((telemetry.spans, telemetry.logs), "thread-10")
    assert [list(r) for r in replays] == streamed
    assert [r.run.outcome for r in replays] == ["interrupted", "completed"]
    assert all(r.complete for r in replays)
    assert [r.run_id for r in otelstream.runs((telemetry.spans, telemetry.logs), thread_id="another")]


def test_replaying_an_unknown_thread_says_why_nothing_is_there(telemetry: Telemetry) -> None:
    graph = approval_graph(otelstream.InMemorySaver())
    list(graph.stream({"request": "post", "log": []}, {"configurable": {"thread_id": "known"}}))
    try:
        otelstream.replay_thread((telemetry.spans, telemetry.logs), "unknown")
    except otelstream.ReplayError as exc:
        assert "no run of thread unknown" in str(exc)
    else:
        raise AssertionError("replay_thread found runs of a thread that never ran")
