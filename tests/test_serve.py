"""The gateway's HTTP side on a real run's telemetry: OTLP in (protobuf, JSON, gzip, refusals), runs and streams out."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any, TypedDict

import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from starlette.testclient import TestClient

import otelstream
from otelstream import START, StateGraph, StreamMode, get_stream_writer
from otelstream._otlp.records import STREAM_MODE_NAMES
from otelstream.engine.types import STREAM_MODES
from otelstream.serve import GatewayOptions, StoreLimits, create_app
from tests.conftest import Telemetry
from tests.serve_helpers import chunks_of, logs_request, parse_sse, spans_request

PROTOBUF = {"Content-Type": "application/x-protobuf"}
MODES: list[StreamMode] = ["values", "updates", "custom"]


class State(TypedDict):
    n: int
    tags: list[str]


def _graph() -> otelstream.CompiledStateGraph:
    def work(state: State) -> dict[str, Any]:
        write = get_stream_writer()
        write({"progress": 1, "total": 2, "pair": ("a", 1)})
        write({"progress": 2, "total": 2, "when": {3}})
        return {"n": state["n"] + 1}

    inner = StateGraph(State)
    inner.add_node("work", work)
    inner.add_edge(START, "work")
    graph = StateGraph(State)
    graph.add_node("first", lambda s: {"tags": ["first"]})
    graph.add_node("inner", inner.compile(name="inner"))
    graph.add_edge(START, "first")
    graph.add_edge("first", "inner")
    return graph.compile(name="served")


@pytest.fixture
def streamed(telemetry: Telemetry) -> tuple[list[Any], Telemetry]:
    return list(_graph().stream({"n": 0, "tags": []}, stream_mode=MODES, subgraphs=True)), telemetry


def _client(**options: Any) -> TestClient:
    options.setdefault("join_grace_s", 0.0)
    options.setdefault("limits", StoreLimits(reorder_window_s=0.0))
    return TestClient(create_app(GatewayOptions(**options)))


@pytest.fixture
def client() -> Iterator[TestClient]:
    with _client() as test_client:
        yield test_client


def _post_all(client: TestClient, telemetry: Telemetry, headers: dict[str, str] | None = None) -> None:
    logs = logs_request(telemetry.logs.get_finished_logs()).SerializeToString()
    spans = spans_request(telemetry.spans.get_finished_spans()).SerializeToString()
    for path, body in (("/v1/logs", logs), ("/v1/traces", spans)):
        response = client.post(path, content=body, headers={**PROTOBUF, **(headers or {})})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/x-protobuf"
        assert response.content == b""  # success: partial_success unset


def _run_id(client: TestClient) -> str:
    runs = client.get("/runs").json()["runs"]
    assert len(runs) == 1
    return str(runs[0]["run_id"])


def test_the_stream_served_is_the_stream_the_application_saw(client: TestClient, streamed: Any) -> None:
    chunks, telemetry = streamed
    _post_all(client, telemetry)
    run = client.get("/runs").json()["runs"][0]
    assert run["graph"] == "served" and run["status"] == "ended" and run["outcome"] == "completed"
    assert run["chunks"] == run["event_count"] == len(chunks) and run["gaps"] == []
    body = client.get(f"/runs/{run['run_id']}/stream", params={"subgraphs": "true"}).text
    events = parse_sse(body)
    served = chunks_of(events)
    assert [e for e, _, _ in served] == ["|".join((mode, *ns)) if ns else mode for ns, mode, _ in chunks]
    assert [i for _, _, i in served] == list(range(len(chunks)))  # ids: the seqs, strictly increasing
    assert events[-1]["event"] == "end"
    end = json.loads(events[-1]["data"])
    assert end["outcome"] == "completed" and end["complete"] is True and end["gaps"] == []


def test_stream_mode_and_subgraphs_filter_like_stream(client: TestClient, streamed: Any) -> None:
    _post_all(client, streamed[1])
    run_id = _run_id(client)
    for params in ({"stream_mode": "custom"}, {"stream_mode": '["custom"]'}, {"stream_mode": "custom,values"}):
        served = chunks_of(parse_sse(client.get(f"/runs/{run_id}/stream", params=params).text))
        # subgraphs=false (the default, as in stream()): the subgraph's custom chunks are left out
        assert all("|" not in event for event, _, _ in served)
        assert {event for event, _, _ in served} <= {"custom", "values"}
    served = chunks_of(parse_sse(client.get(f"/runs/{run_id}/stream?stream_mode=custom&subgraphs=true").text))
    assert [data["progress"] for _, data, _ in served] == [1, 2]
    assert served[0][1]["pair"] == {"$t": "tuple", "v": ["a", 1]}  # otelstream's encoding, for remote_stream


def test_last_event_id_resumes_strictly_after_it(client: TestClient, streamed: Any) -> None:
    _post_all(client, streamed[1])
    run_id = _run_id(client)
    whole = chunks_of(parse_sse(client.get(f"/runs/{run_id}/stream?subgraphs=1").text))
    resumed = chunks_of(
        parse_sse(client.get(f"/runs/{run_id}/stream?subgraphs=1", headers={"Last-Event-ID": "3"}).text)
    )
    assert resumed == [c for c in whole if c[2] > 3]
    # EventSource cannot set headers: the query parameter does the same
    assert chunks_of(parse_sse(client.get(f"/runs/{run_id}/stream?subgraphs=1&last_event_id=3").text)) == resumed


def test_duplicates_are_dropped_and_json_reads_like_protobuf(client: TestClient, streamed: Any) -> None:
    chunks, telemetry = streamed
    request = logs_request(telemetry.logs.get_finished_logs())
    document = MessageToDict(request)  # protobuf's JSON: ids in base64, not OTLP's hex
    for resource in document["resourceLogs"]:
        for scope in resource["scopeLogs"]:
            for record in scope["logRecords"]:
                for key in ("traceId", "spanId"):
                    if key in record:
                        record[key] = _hex(record[key])
    body = json.dumps(document).encode()
    for _ in range(2):  # sent twice, as an exporter retrying an ambiguous failure would
        response = client.post("/v1/logs", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 200 and response.json() == {}
        assert response.headers["content-type"] == "application/json"
    run = client.get("/runs").json()["runs"][0]
    assert run["chunks"] == len(chunks) and run["duplicates"] == len(chunks) and run["gaps"] == []
    assert run["trace_ids"] == [format(telemetry.spans.get_finished_spans()[0].context.trace_id, "032x")]


def _hex(base64_id: str) -> str:
    import base64

    return base64.b64decode(base64_id).hex().upper()  # OTLP/JSON ids are case-insensitive hex


def test_gzip_bodies_are_read_and_bombs_are_refused_after_decompression(streamed: Any) -> None:
    telemetry = streamed[1]
    with _client(max_body=64 * 1024) as client:
        body = logs_request(telemetry.logs.get_finished_logs()).SerializeToString()
        ok = client.post("/v1/logs", content=gzip.compress(body), headers={**PROTOBUF, "Content-Encoding": "gzip"})
        assert ok.status_code == 200
        bomb = gzip.compress(b"\0" * (1024 * 1024))
        assert len(bomb) < 64 * 1024
        refused = client.post("/v1/logs", content=bomb, headers={**PROTOBUF, "Content-Encoding": "gzip"})
        assert refused.status_code == 413
        too_big = client.post("/v1/logs", content=b"\0" * (65 * 1024), headers=PROTOBUF)
        assert too_big.status_code == 413
        assert client.get("/runs").json()["runs"][0]["chunks"] == len(streamed[0])  # the rest is untouched


@pytest.mark.parametrize(
    ("body", "headers", "status", "reason"),
    [
        (b"\xff\xfe not protobuf", PROTOBUF, 400, "not an OTLP logs protobuf message"),
        (b"{not json", {"Content-Type": "application/json"}, 400, "not JSON"),
        (b"[]", {"Content-Type": "application/json"}, 400, "JSON object"),
        (b'{"resourceLogs": {}}', {"Content-Type": "application/json"}, 400, "not a JSON array"),
        (
            b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "AAECAwQFBgcICQoLDA0ODw=="}]}]}]}',
            {"Content-Type": "application/json"},
            400,
            "not a hex id",
        ),
        (b"x", {**PROTOBUF, "Content-Encoding": "gzip"}, 400, "gzip"),
        (b"x", {"Content-Type": "text/plain"}, 415, "Content-Type"),
        (b"x", {**PROTOBUF, "Content-Encoding": "br"}, 415, "Content-Encoding"),
    ],
)
def test_malformed_otlp_gets_a_clear_refusal_and_disturbs_nothing(
    client: TestClient, streamed: Any, body: bytes, headers: dict[str, str], status: int, reason: str
) -> None:
    _post_all(client, streamed[1])
    before = client.get("/runs").json()["runs"]
    response = client.post("/v1/logs", content=body, headers=headers)
    assert response.status_code == status
    if headers["Content-Type"] == "application/json":
        assert reason in response.json()["message"]
    else:
        from google.rpc import status_pb2  # type: ignore[import-untyped]

        assert reason in status_pb2.Status.FromString(response.content).message
    assert client.get("/runs").json()["runs"] == before


def test_unreadable_otelstream_records_are_a_partial_success(client: TestClient) -> None:
    record = {
        "eventName": "otelstream.custom",
        "attributes": [{"key": "otelstream.run_id", "value": {"stringValue": "r1"}}],  # no seq, no payload
    }
    good = {
        "eventName": "otelstream.custom",
        "timeUnixNano": "1700000000000000000",
        "attributes": [
            {"key": "otelstream.run_id", "value": {"stringValue": "r1"}},
            {"key": "otelstream.seq", "value": {"intValue": "0"}},  # int64 as a string
            {"key": "otelstream.payload", "value": {"stringValue": '{"x":1}'}},
        ],
    }
    document = {"resourceLogs": [{"scopeLogs": [{"logRecords": [record, good], "unknownField": 1}]}]}
    response = client.post("/v1/logs", json=document)
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedLogRecords"] == "1" and "unreadable otelstream.custom record" in partial["errorMessage"]
    proto = client.post("/v1/logs", content=json.dumps(document), headers={"Content-Type": "application/json"})
    assert proto.status_code == 200
    run = client.get("/runs/r1").json()
    assert run["chunks"] == 1 and run["duplicates"] == 1


def test_protobuf_partial_success(client: TestClient) -> None:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    request = ExportLogsServiceRequest()
    record = request.resource_logs.add().scope_logs.add().log_records.add()
    record.event_name = "otelstream.updates"
    attribute = record.attributes.add()
    attribute.key, attribute.value.string_value = "otelstream.run_id", "r2"
    response = client.post("/v1/logs", content=request.SerializeToString(), headers=PROTOBUF)
    assert response.status_code == 200
    assert ExportLogsServiceResponse.FromString(response.content).partial_success.rejected_log_records == 1


def test_bearer_token_guards_otlp_and_reading_but_not_the_page(streamed: Any) -> None:
    with _client(token="s3cret") as client:
        body = logs_request(streamed[1].logs.get_finished_logs()).SerializeToString()
        assert client.post("/v1/logs", content=body, headers=PROTOBUF).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert client.post("/v1/logs", content=body, headers={**PROTOBUF, **wrong}).status_code == 401
        assert client.get("/runs").status_code == 401
        assert client.get("/runs", headers=wrong).status_code == 401
        assert client.get("/").status_code == 200
        _post_all(client, streamed[1], {"Authorization": "Bearer s3cret"})
        listed = client.get("/runs", headers={"Authorization": "Bearer s3cret"}).json()["runs"]
        assert len(listed) == 1
        assert client.get(f"/runs/{listed[0]['run_id']}/stream").status_code == 401


def test_runs_filters_and_invalid_arguments(client: TestClient, streamed: Any) -> None:
    _post_all(client, streamed[1])
    run_id = _run_id(client)
    assert len(client.get("/runs?graph=served&status=ended").json()["runs"]) == 1
    assert len(client.get("/runs?status=completed").json()["runs"]) == 1
    assert client.get("/runs?graph=other").json()["runs"] == []
    assert client.get("/runs?status=running").json()["runs"] == []
    assert client.get("/runs?limit=0").status_code == 400
    assert client.get("/runs?colour=red").status_code == 400
    assert client.get(f"/runs/{run_id}/stream?stream_mode=bogus").status_code == 400
    assert client.get(f"/runs/{run_id}/stream?subgraphs=maybe").status_code == 400
    assert client.get(f"/runs/{run_id}/stream", headers={"Last-Event-ID": "abc"}).status_code == 400
    assert client.get("/runs/nope/stream").status_code == 404
    assert client.get("/runs/nope").status_code == 404
    nodes = client.get(f"/runs/{run_id}").json()["nodes"]
    assert {n["node"] for n in nodes} >= {"first", "inner", "work"}


def test_langgraph_join_endpoint(client: TestClient, streamed: Any) -> None:
    _post_all(client, streamed[1])
    run_id = _run_id(client)
    url = f"/threads/t1/runs/{run_id}/stream"
    # no Last-Event-ID: the live tail (LangGraph's semantics) -- the run has ended, so just the end
    tail = parse_sse(client.get(url).text)
    assert [e["event"] for e in tail] == ["metadata", "end"]
    response = client.get(
        url, params=[("stream_mode", "custom"), ("stream_mode", "values")], headers={"Last-Event-ID": "-1"}
    )
    assert response.headers["location"] == f"{url}?stream_mode=custom&stream_mode=values"
    assert response.headers["content-location"] == f"/threads/t1/runs/{run_id}"
    events = parse_sse(response.text)
    assert events[0]["event"] == "metadata" and json.loads(events[0]["data"]) == {"run_id": run_id, "attempt": 1}
    assert events[-1]["event"] == "end" and json.loads(events[-1]["data"])["status"] == "success"
    custom = [json.loads(e["data"]) for e in events if e["event"].startswith("custom")]
    # plain JSON, as LangGraph Server sends: tuples are arrays, sets too
    assert custom[0]["pair"] == ["a", 1] and custom[1]["when"] == [3]
    # `base|ns` passes a `base` filter, as in LangGraph Server's join
    assert {e["event"].split("|")[0] for e in events[1:-1]} == {"values", "custom"}
    assert any("|inner:" in e["event"] for e in events[1:-1])
    status = client.get(f"/threads/t1/runs/{run_id}").json()
    assert status["status"] == "success" and status["run_id"] == run_id
    assert client.get("/threads/t1/runs/nope").status_code == 404
    assert client.get(f"{url}?stream_mode=bogus").status_code == 422
    for path in ("/threads/t1/runs/stream", "/threads/t1/runs", "/runs/stream", "/runs/wait"):
        refused = client.post(path, json={})
        assert refused.status_code == 405 and "does not create or execute runs" in refused.json()["detail"]


def test_metrics_are_accepted_and_not_kept(client: TestClient) -> None:
    assert client.post("/v1/metrics", content=b"", headers=PROTOBUF).status_code == 200


def test_stream_mode_names_agree_with_the_engine() -> None:
    assert STREAM_MODE_NAMES == STREAM_MODES
