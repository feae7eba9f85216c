"""What Phoenix stores, after a real collector hop, replays to the exact stream the application saw.

app --OTLP/HTTP--> rotel --OTLP/gRPC--> Phoenix --REST--> otelstream.replay
"""

from __future__ import annotations

import datetime
import operator
import threading
import uuid
from typing import Annotated, Any, TypedDict

import otelstream
from otelstream import END, START, Send, StateGraph, StreamMode, get_stream_writer
from tests.e2e.conftest import Phoenix, wait_for_complete_run

# every stream mode otelstream produces without an LLM or a checkpointer
MODES: list[StreamMode] = ["values", "updates", "custom", "tasks", "debug"]


class Research(TypedDict):
    topic: str
    items: list[str]
    results: Annotated[list[str], operator.add]
    review: str


class Review(TypedDict):
    topic: str
    review: str


def research_graph() -> otelstream.CompiledStateGraph:
    """plan --Send x3 (in parallel)--> work --> review (a compiled subgraph: check -> polish)."""
    # the three workers wait for each other: the test fails unless they really run at once
    all_working = threading.Barrier(3, timeout=20)

    def plan(state: Research) -> dict[str, Any]:
        get_stream_writer()({"stage": "plan", "topic": state["topic"], "pair": ("x", 1)})
        return {"items": ["alpha", "beta", "gamma"]}

    def fan_out(state: Research) -> list[Send]:
        return [Send("work", {"topic": state["topic"], "item": item}) for item in state["items"]]

    def work(packet: dict[str, Any]) -> dict[str, Any]:
        write = get_stream_writer()
        write({"stage": "work", "item": packet["item"], "tags": frozenset({"started"})})
        all_working.wait()
        write({"stage": "work", "item": packet["item"], "at": datetime.date(2026, 1, 2)})
        return {"results": [f"{packet['topic']}:{packet['item']}"]}

    def check(state: Review) -> dict[str, Any]:
        get_stream_writer()({"stage": "check", "topic": state["topic"]})
        return {"review": "checked"}

    def polish(state: Review) -> dict[str, Any]:
        return {"review": state["review"] + " and polished"}

    review = StateGraph(Review)
    review.add_node("check", check)
    review.add_node("polish", polish)
    review.add_edge(START, "check")
    review.add_edge("check", "polish")

    graph = StateGraph(Research)
    graph.add_node("plan", plan)
    graph.add_node("work", work)
    graph.add_node("review", review.compile(name="review"))
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", fan_out, ["work"])
    graph.add_edge("work", "review")
    graph.add_edge("review", END)
    return graph.compile(name="research")


def test_phoenix_replays_the_stream_the_application_saw(phoenix: Phoenix, otlp_app: None, project: str) -> None:
    # Phoenix stores traces only: every streamed mode travels as span events
    otelstream.configure(export=otelstream.ExportOptions(otlp=True), span_event_modes=MODES)

    run_id = str(uuid.uuid4())
    streamed = list(
        research_graph().stream({"topic": "otel", "results": []}, {"run_id": run_id}, stream_mode=MODES, subgraphs=True)
    )
    assert otelstream.force_flush()

    # the in-process stream really has every mode, the subgraph and the three parallel workers
    assert {mode for _, mode, _ in streamed} == set(MODES)
    assert any(namespace and namespace[0].startswith("review:") for namespace, _, _ in streamed)
    worker_updates = [chunk["work"] for _, mode, chunk in streamed if mode == "updates" and "work" in chunk]
    assert sorted(update["results"][0] for update in worker_updates) == ["otel:alpha", "otel:beta", "otel:gamma"]
    assert streamed[-1] == (
        (),
        "values",
        {
            "topic": "otel",
            "items": ["alpha", "beta", "gamma"],
            "results": ["otel:alpha", "otel:beta", "otel:gamma"],
            "review": "checked and polished",
        },
    )

    wait_for_complete_run(phoenix, project, run_id)

    replayed = otelstream.replay(phoenix.url, project=project, run_id=run_id, stream_mode=MODES, subgraphs=True)
    assert list(replayed) == streamed
    assert replayed.complete
    assert (replayed.gaps, replayed.truncated, replayed.notes) == ([], [], [])

    [run] = otelstream.runs(phoenix.url, project=project)
    assert (run.run_id, run.graph, run.outcome, run.stream_modes, run.subgraphs) == (
        run_id,
        "research",
        "completed",
        tuple(MODES),
        True,
    )
    assert run.event_count == run.received == len(streamed)
    # without stream_mode, replay takes the shape the run was streamed with
    assert list(otelstream.replay(phoenix.url, project=project, run_id=run_id, subgraphs=True)) == streamed
