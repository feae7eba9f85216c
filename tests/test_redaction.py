"""Credentials never leave the process in telemetry; the application's stream is never altered."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

import otelstream
from otelstream import START, StateGraph, get_stream_writer
from otelstream.telemetry.codec import decode, encode
from otelstream.telemetry.redact import MARKER, Redactor
from tests.conftest import Telemetry, make_telemetry
from tests.helpers import rebuild

OPENAI_KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz012345"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


def _keep(a: Any, b: Any) -> Any:
    return b


class State(TypedDict):
    request: Annotated[dict[str, Any], _keep]


CHUNK = {
    "user": "ada",
    "api_key": "not-shaped-like-a-key",
    "headers": {"Authorization": "Basic YWRhOmxvdmVsYWNl", "Cookie": "session=abc", "Accept": "json"},
    "note": f"called with {OPENAI_KEY} and Bearer {JWT}",
    "aws": "AKIAIOSFODNN7EXAMPLE",
}


def _graph() -> otelstream.CompiledStateGraph:
    def call(state: State) -> dict[str, Any]:
        get_stream_writer()(CHUNK)
        return {"request": {"password": "hunter2", "url": "https://example.test"}}

    g = StateGraph(State)
    g.add_node("call", call)
    g.add_edge(START, "call")
    return g.compile(name="secrets")


def test_the_stream_is_untouched_and_telemetry_carries_no_credentials(telemetry: Telemetry) -> None:
    streamed = list(_graph().stream({"request": {}}, stream_mode=["custom", "updates"]))
    assert streamed == [
        ("custom", CHUNK),
        ("updates", {"call": {"request": {"password": "hunter2", "url": "https://example.test"}}}),
    ]

    exported = [(mode, chunk) for _, mode, chunk in rebuild(telemetry.logs.get_finished_logs())]
    assert exported == [
        (
            "custom",
            {
                "user": "ada",
                "api_key": MARKER,
                "headers": {"Authorization": MARKER, "Cookie": MARKER, "Accept": "json"},
                "note": f"called with {MARKER} and {MARKER}",
                "aws": MARKER,
            },
        ),
        ("updates", {"call": {"request": {"password": MARKER, "url": "https://example.test"}}}),
    ]


def test_no_secret_or_environment_value_appears_in_any_exported_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_SERVICE_PASSWORD", "env-secret-value-123")
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    path = tmp_path / "out.jsonl"
    otelstream.configure(export=otelstream.ExportOptions(file=str(path)))
    try:
        list(_graph().stream({"request": {"token": os.environ["OPENAI_API_KEY"]}}, stream_mode=["custom", "values"]))
    finally:
        otelstream.shutdown()
        otelstream.configure()
    exported = path.read_bytes()
    for secret in ("hunter2", OPENAI_KEY, JWT, "AKIAIOSFODNN7EXAMPLE", "env-secret-value-123", "YWRhOmxvdmVsYWNl"):
        assert secret.encode() not in exported, secret
    assert b"[REDACTED]" in exported


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("token", True),
        ("github_token", True),
        ("accessToken", True),
        ("X-Api-Key", True),
        ("Authorization", True),
        ("client_secret", True),
        ("input_tokens", False),
        ("max_tokens", False),
        ("token_count", False),
        ("author", False),
        ("key", False),
    ],
)
def test_credential_keys_are_matched_as_words(key: str, secret: bool) -> None:
    assert Redactor().secret_key(key) is secret


def test_custom_patterns_and_a_callback_extend_redaction() -> None:
    redactor = Redactor(
        key_pattern=r"ssn",
        value_patterns=[r"\b\d{4}-\d{4}-\d{4}-\d{4}\b"],
        callback=lambda text: text.replace("internal.example", "[HOST]"),
    )
    encoded = encode({"ssn": "123-45-6789", "card": "pay 4111-1111-1111-1111 at internal.example"}, redactor)
    assert decode(encoded) == {"ssn": MARKER, "card": f"pay {MARKER} at [HOST]"}


@pytest.fixture
def metadata_only() -> Iterator[Telemetry]:
    telemetry = make_telemetry()
    otelstream.configure(
        tracer_provider=telemetry.tracer_provider, logger_provider=telemetry.logger_provider, payloads="none"
    )
    yield telemetry
    otelstream.configure()


def test_metadata_only_telemetry_sends_no_payload_and_replay_says_so(metadata_only: Telemetry) -> None:
    streamed = list(_graph().stream({"request": {}}, stream_mode="custom"))
    assert streamed == [CHUNK]
    [record] = [r for r in metadata_only.logs.get_finished_logs() if r.log_record.event_name == "otelstream.custom"]
    attributes = dict(record.log_record.attributes or {})
    assert "otelstream.payload" not in attributes and attributes["otelstream.payload.omitted"] is True
    replayed = otelstream.replay((metadata_only.spans, metadata_only.logs))
    [chunk] = list(replayed)
    assert isinstance(chunk, otelstream.TruncatedPayload) and chunk.head == ""
    assert not replayed.complete


def test_redaction_can_be_turned_off_explicitly(telemetry: Telemetry) -> None:
    otelstream.configure(
        tracer_provider=telemetry.tracer_provider, logger_provider=telemetry.logger_provider, redact=False
    )
    list(_graph().stream({"request": {}}, stream_mode="custom"))
    assert [chunk for _, _, chunk in rebuild(telemetry.logs.get_finished_logs())] == [CHUNK]
