"""Sampling at 1%: every stream is whole in-process; the backend holds the sampled runs only.

The sampler is the one the OTel SDK builds from ``OTEL_TRACES_SAMPLER=traceidratio`` and
``OTEL_TRACES_SAMPLER_ARG=0.01`` for otelstream's private tracer provider. It keeps a trace
when the low 64 bits of its trace id fall in the lowest 1% of their range. Each run here is
started under a remote parent context (as a request carrying a ``traceparent`` would be) whose
trace id comes from a seeded generator, so the test knows which runs the sampler keeps: with
seed 11, two of the sixty.
"""

from __future__ import annotations

import operator
import random
import uuid
from typing import Annotated, Any, TypedDict

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

import otelstream
from otelstream import END, START, StateGraph, StreamMode, get_stream_writer
from tests.e2e.conftest import Phoenix, wait_for_complete_run

RUNS = 60
RATIO = 0.01
SEED = 11
MODES: list[StreamMode] = ["values", "updates", "custom"]


class Counter(TypedDict):
    n: int
    log: Annotated[list[str], operator.add]


def counter_graph() -> otelstream.CompiledStateGraph:
    def step(state: Counter) -> dict[str, Any]:
        get_stream_writer()({"run": state["n"]})
        return {"log": [f"run {state['n']}"]}

    graph = StateGraph(Counter)
    graph.add_node("step", step)
    graph.add_edge(START, "step")
    graph.add_edge("step", END)
    return graph.compile(name="counter")


def expected_stream(n: int) -> list[Any]:
    return [
        ("values", {"n": n, "log": []}),
        ("custom", {"run": n}),
        ("updates", {"step": {"log": [f"run {n}"]}}),
        ("values", {"n": n, "log": [f"run {n}"]}),
    ]


def _sampled(trace_id: int) -> bool:
    return trace_id & TraceIdRatioBased.TRACE_ID_LIMIT < TraceIdRatioBased.get_bound_for_rate(RATIO)


def test_at_one_percent_every_stream_is_whole_and_only_sampled_runs_reach_the_backend(
    phoenix: Phoenix,
    otlp_app: None,
    project: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", str(RATIO))
    otelstream.configure(export=otelstream.ExportOptions(otlp=True), span_event_modes=MODES)

    rng = random.Random(SEED)
    trace_ids = [rng.getrandbits(128) or 1 for _ in range(RUNS)]
    graph = counter_graph()
    run_ids = [str(uuid.uuid4()) for _ in range(RUNS)]
    for n, trace_id in enumerate(trace_ids):
        parent = trace.NonRecordingSpan(trace.SpanContext(trace_id=trace_id, span_id=n + 1, is_remote=True))
        with trace.use_span(parent, end_on_exit=False):
            streamed = list(graph.stream({"n": n, "log": []}, {"run_id": run_ids[n]}, stream_mode=MODES))
        # sampled or not, the application's stream is whole
        assert streamed == expected_stream(n), f"run {n}"
    assert otelstream.force_flush()

    sampled = [n for n in range(RUNS) if _sampled(trace_ids[n])]
    assert sampled == [16, 39]  # what seed 11 gives: both outcomes are exercised

    for n in sampled:
        wait_for_complete_run(phoenix, project, run_ids[n])
    listed = otelstream.runs(phoenix.url, project=project)
    assert [(run.run_id, run.trace_id) for run in listed] == [
        (run_ids[n], format(trace_ids[n], "032x")) for n in sampled
    ]
    for n in sampled:
        replayed = otelstream.replay(phoenix.url, project=project, run_id=run_ids[n])
        assert list(replayed) == expected_stream(n)
        assert replayed.complete

    for n in range(RUNS):
        if n in sampled:
            continue
        with pytest.raises(otelstream.ReplayError, match="sampled out"):
            otelstream.replay(phoenix.url, project=project, run_id=run_ids[n])
