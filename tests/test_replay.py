"""Replay yields exactly what stream() yielded, from any exported form, and says what is missing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

import otelstream
from otelstream import START, StateGraph, StreamMode, get_stream_writer
from tests.conftest import Telemetry, make_telemetry


def _concat(a: list[str], b: list[str]) -> list[str]:
    return a + b


class State(TypedDict):
    log: Annotated[list[str], _concat]
    blob: str


def _graph() -> otelstream.CompiledStateGraph:
    def step(state: State) -> dict[str, Any]:
        write = get_stream_writer()
        write({"progress": 1, "total": 2, "pair": ("a", 1)})
        write({"progress": 2, "total": 2, "when": {1, 2}})
        return {"log": ["inner"]}

    inner = StateGraph(State)
    inner.add_node("step", step)
    inner.add_edge(START, "step")

    g = StateGraph(State)
    g.add_node("first", lambda s: {"log": ["first"], "blob": "x" * 100})
    g.add_node("inner", inner.compile(name="inner"))
    g.add_edge(START, "first")
    g.add_edge("first", "inner")
    return g.compile(name="replayed")


MODES: list[StreamMode] = ["values", "updates", "custom"]


def test_replay_from_in_memory_exporters_equals_the_stream(telemetry: Telemetry) -> None:
    streamed = list(_graph().stream({"log": []}, stream_mode=MODES, subgraphs=True))
    replayed = otelstream.replay((telemetry.spans, telemetry.logs), stream_mode=MODES, subgraphs=True)
    assert list(replayed) == streamed
    assert replayed.complete and replayed.gaps == [] and replayed.notes == []


def test_replay_defaults_to_the_recorded_modes_and_filters_like_stream(telemetry: Telemetry) -> None:
    streamed = list(_graph().stream({"log": []}, stream_mode=MODES, subgraphs=True))
    source = (telemetry.spans, telemetry.logs)
    assert list(otelstream.replay(source, subgraphs=True)) == streamed
    # a string mode gives bare chunks, subgraphs=False keeps the root graph's chunks only
    assert list(otelstream.replay(source, stream_mode="updates")) == [
        {"first": {"log": ["first"], "blob": "x" * 100}},
        {"inner": {"log": ["first", "inner"], "blob": "x" * 100}},
    ]
    assert list(otelstream.replay(source, stream_mode="custom", subgraphs=True)) == [
        (c[0], c[2]) for c in streamed if c[1] == "custom"
    ]


def test_replay_from_an_otlp_json_file_equals_the_stream(tmp_path: Path) -> None:
    path = tmp_path / "run.otlp.jsonl"
    otelstream.configure(export=otelstream.ExportOptions(file=str(path)))
    try:
        streamed = list(_graph().stream({"log": []}, stream_mode=MODES, subgraphs=True))
    finally:
        otelstream.shutdown()
        otelstream.configure()
    assert list(otelstream.replay(path, subgraphs=True)) == streamed
    [run] = otelstream.runs(path)
    assert (run.graph, run.outcome, run.stream_modes, run.subgraphs) == (
        "replayed",
        "completed",
        tuple(MODES),
        True,
    )
    assert run.event_count == run.received == len(streamed)
    assert run.duration_s is not None and run.duration_s > 0


def test_runs_lists_every_run_and_replay_needs_a_run_id_when_there_are_several(telemetry: Telemetry) -> None:
    list(_graph().stream({"log": []}, stream_mode="updates"))
    list(_graph().stream({"log": []}, stream_mode="custom", subgraphs=True))
    first, second = otelstream.runs(telemetry.spans.get_finished_spans() + telemetry.logs.get_finished_logs())
    assert (first.stream_modes, second.stream_modes) == (("updates",), ("custom",))
    with pytest.raises(otelstream.ReplayError, match="the source holds 2 runs; name one with run_id="):
        otelstream.replay((telemetry.spans, telemetry.logs))
    replayed = otelstream.replay((telemetry.spans, telemetry.logs), run_id=second.run_id, subgraphs=True)
    assert [chunk for _, chunk in replayed] == [
        {"progress": 1, "total": 2, "pair": ("a", 1)},
        {"progress": 2, "total": 2, "when": {1, 2}},
    ]


def test_missing_records_are_reported_as_gaps_not_invented(telemetry: Telemetry) -> None:
    streamed = list(_graph().stream({"log": []}, stream_mode=MODES, subgraphs=True))
    records = [
        r
        for r in telemetry.logs.get_finished_logs()
        if (r.log_record.attributes or {}).get("otelstream.seq") not in (2, 3)
    ]
    replayed = otelstream.replay([*telemetry.spans.get_finished_spans(), *records], subgraphs=True)
    assert list(replayed) == streamed[:2] + streamed[4:]
    assert replayed.gaps == [otelstream.Gap(first_seq=2, count=2)]
    assert not replayed.complete
    with pytest.raises(otelstream.IncompleteStreamError, match="gaps"):
        otelstream.replay([*telemetry.spans.get_finished_spans(), *records], strict=True)


def test_lost_tail_is_a_gap_thanks_to_the_run_end_count(telemetry: Telemetry) -> None:
    streamed = list(_graph().stream({"log": []}, stream_mode="updates"))
    records = [r for r in telemetry.logs.get_finished_logs() if r.log_record.attributes.get("otelstream.seq") != 1]  # type: ignore[union-attr]
    replayed = otelstream.replay(records)
    assert list(replayed) == streamed[:1]
    assert replayed.gaps == [otelstream.Gap(1, 1)] and replayed.run.missing == 1


def test_a_sampled_out_run_is_reported_not_invented() -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    telemetry = make_telemetry(sampler=ALWAYS_OFF)
    try:
        list(_graph().stream({"log": []}))
    finally:
        otelstream.configure()
    assert otelstream.runs((telemetry.spans, telemetry.logs)) == []
    with pytest.raises(otelstream.ReplayError, match="sampled out"):
        otelstream.replay((telemetry.spans, telemetry.logs), run_id="0b6c3a5e")


def test_replaying_a_mode_the_run_did_not_stream_is_an_error(telemetry: Telemetry) -> None:
    list(_graph().stream({"log": []}, stream_mode="updates"))
    with pytest.raises(otelstream.ReplayError, match=r"did not stream \['custom'\]; it streamed \['updates'\]"):
        otelstream.replay((telemetry.spans, telemetry.logs), stream_mode="custom")
    replayed = otelstream.replay((telemetry.spans, telemetry.logs), subgraphs=True)
    assert replayed.notes == ["the run was streamed without subgraphs=True: no subgraph chunks were recorded"]


def test_truncated_payloads_come_back_as_markers_while_the_live_stream_is_whole() -> None:
    telemetry = make_telemetry()
    otelstream.configure(
        tracer_provider=telemetry.tracer_provider,
        logger_provider=telemetry.logger_provider,
        max_payload_bytes=64,
    )
    try:
        streamed = list(_graph().stream({"log": []}, stream_mode="updates"))
    finally:
        otelstream.configure()
    assert streamed[0] == {"first": {"log": ["first"], "blob": "x" * 100}}
    replayed = otelstream.replay((telemetry.spans, telemetry.logs))
    chunks = list(replayed)
    assert isinstance(chunks[0], otelstream.TruncatedPayload)
    assert chunks[0].head == '{"first":{"log":["first"],"blob":"' + "x" * 30
    assert chunks[0].size == len('{"first":{"log":["first"],"blob":"' + "x" * 100 + '"}}')
    assert replayed.truncated == [0, 1] and not replayed.complete


def test_unreadable_sources_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(otelstream.ReplaySourceError, match="no such file"):
        otelstream.runs(tmp_path / "missing.jsonl")
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("not json\n{also not\n")
    with pytest.raises(otelstream.ReplaySourceError, match="holds no OTLP JSON"):
        otelstream.runs(garbage)
    with pytest.raises(otelstream.ReplaySourceError, match="cannot read http://127.0.0.1:9/v1/projects"):
        otelstream.runs("http://127.0.0.1:9")


def test_malformed_records_are_listed_as_problems(tmp_path: Path) -> None:
    record = {
        "eventName": "otelstream.updates",
        "attributes": [
            {"key": "otelstream.run_id", "value": {"stringValue": "r1"}},
            {"key": "otelstream.seq", "value": {"stringValue": "zero"}},
            {"key": "otelstream.payload", "value": {"stringValue": "{}"}},
        ],
    }
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [record]}]}]}) + "\n")
    assert otelstream.runs(path) == []


def test_the_callers_run_id_names_the_run_to_replay(telemetry: Telemetry) -> None:
    config: Any = {"run_id": "0b6c3a5e-0000-4000-8000-000000000001"}
    streamed = list(_graph().stream({"log": []}, config, stream_mode="custom", subgraphs=True))
    list(_graph().stream({"log": []}, stream_mode="updates"))
    replayed = otelstream.replay((telemetry.spans, telemetry.logs), run_id=config["run_id"], subgraphs=True)
    assert list(replayed) == streamed


def test_a_run_id_already_streaming_is_rejected(telemetry: Telemetry) -> None:
    config: Any = {"run_id": "same"}
    first = _graph().stream({"log": []}, config, stream_mode="updates")
    next(first)
    with pytest.raises(otelstream.InvalidStreamArgumentError, match="run_id same is already streaming"):
        _graph().stream({"log": []}, config)
    first.close()


def test_when_run_span_and_end_record_are_lost_unknown_modes_are_a_note_not_an_error(telemetry: Telemetry) -> None:
    otelstream.configure(
        tracer_provider=telemetry.tracer_provider,
        logger_provider=telemetry.logger_provider,
        span_event_modes=["values", "updates"],
    )
    streamed = list(_graph().stream({"log": []}, stream_mode=["values", "updates"]))
    node_spans = [s for s in telemetry.spans.get_finished_spans() if s.name.startswith("invoke_node")]
    [run] = otelstream.runs(node_spans)
    assert run.stream_modes == ("updates",) and not run.modes_known
    replayed = otelstream.replay(node_spans, stream_mode=["values", "updates"])
    assert list(replayed) == [c for c in streamed if c[0] == "updates"]
    assert not replayed.complete
    assert any("whether it streamed them is unknown" in note for note in replayed.notes)
