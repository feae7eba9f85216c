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


# --- credential shapes in text: one rule each, and the look-alikes that must stay --------------

SECRET = "Xq7pL2vR9s"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # URL userinfo: the password goes, the user, host and path stay readable
        (f"postgresql://user:{SECRET}@host/db", "postgresql://user:[REDACTED]@host/db"),
        (f"https://admin:{SECRET}@internal.example/x", "https://admin:[REDACTED]@internal.example/x"),
        (f"redis://:{SECRET}@cache:6379/0", "redis://:[REDACTED]@cache:6379/0"),
        (f"mysql+pymysql://u:{SECRET}@h", "mysql+pymysql://u:[REDACTED]@h"),
        (f"postgresql://user:p@{SECRET}@host/db", "postgresql://user:[REDACTED]@host/db"),  # "@" unescaped
        (f"connect('amqp://guest:{SECRET}@mq')", "connect('amqp://guest:[REDACTED]@mq')"),
        # key=value and key: value, the value up to whitespace, &, comma, semicolon or a quote
        (f"password={SECRET}", "password=[REDACTED]"),
        (f"db_password: {SECRET}", "db_password: [REDACTED]"),
        (f"DB_PASSWORD = {SECRET} next", "DB_PASSWORD = [REDACTED] next"),
        (f"login failed; password={SECRET}, user=ada", "login failed; password=[REDACTED], user=ada"),
        (f"X-Api-Key: {SECRET}", "X-Api-Key: [REDACTED]"),
        (f"accessToken={SECRET};", "accessToken=[REDACTED];"),
        (f"mysql --user=ada --password={SECRET}", "mysql --user=ada --password=[REDACTED]"),
        (f"note: password={SECRET}", "note: password=[REDACTED]"),
        (f"Authorization: Token {SECRET}", "Authorization: [REDACTED]"),
        (f"Cookie: session={SECRET}; theme=dark", "Cookie: [REDACTED]; theme=dark"),
        # quoted values (reprs, JSON, code in a stack trace, JSON inside a JSON string)
        (f"{{'db_password': '{SECRET} x', 'user': 'ada'}}", "{'db_password': '[REDACTED]', 'user': 'ada'}"),
        (f'{{"api_key": "{SECRET}", "n": 1}}', '{"api_key": "[REDACTED]", "n": 1}'),
        (f'connect(password="{SECRET} x")', 'connect(password="[REDACTED]")'),
        (f'{{\\"token\\": \\"{SECRET}\\"}}', '{\\"token\\": \\"[REDACTED]\\"}'),
        (f"secret = b'{SECRET}'", "secret = b'[REDACTED]'"),
        # query strings: credential-named parameters only
        (
            f"https://api.example/v1?password={SECRET}&token={SECRET}2&page=2",
            "https://api.example/v1?password=[REDACTED]&token=[REDACTED]&page=2",
        ),
        (f"/cb#access_token={SECRET}&state=s", "/cb#access_token=[REDACTED]&state=s"),
        # a URL password under a "token" user name is redacted once, the host kept
        (f"https://token:{SECRET}@github.com/o/r", "https://token:[REDACTED]@github.com/o/r"),
    ],
)
def test_credential_text_is_redacted_and_the_rest_stays_readable(text: str, expected: str) -> None:
    assert Redactor().scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "input_tokens=5",
        "max_tokens: 100, token_count=3",
        "https://example.com/path?page=2&limit=50",
        "postgresql://user@host/db",
        "https://example.com:8443/a@b",
        "mailto:ada@example.com",
        "author: ada; key=value",
        "Error: request failed at 10:30:00",
        "password=",
        "api_key=[REDACTED]",
    ],
)
def test_look_alikes_are_left_alone(text: str) -> None:
    assert Redactor().scrub(text) == text


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "PASSWD",
        "passphrase",
        "pwd",
        "client_secret",
        "github_token",
        "apiKey",
        "api-key",
        "APIKEY",
        "private_key",
        "secret_key",
        "aws_access_key",
        "signing_key",
        "Authorization",
        "auth",
        "Set-Cookie",
        "credentials",
        "sessionId",
        "session_id",
    ],
)
def test_every_default_credential_key_is_found_in_text(key: str) -> None:
    redactor = Redactor()
    assert redactor.secret_key(key)
    assert redactor.scrub(f"{key}={SECRET}") == f"{key}=[REDACTED]"
    assert redactor.scrub(f"got {key}: {SECRET} back") == f"got {key}: [REDACTED] back"


def test_a_custom_key_pattern_applies_to_text_and_none_turns_the_key_rule_off() -> None:
    assert Redactor(key_pattern=r"ssn").scrub("ssn=123-45-6789 password=x") == "ssn=[REDACTED] password=x"
    no_keys = Redactor(key_pattern=None)
    assert no_keys.scrub(f"password={SECRET}") == f"password={SECRET}"
    # URL passwords are redacted whatever the key and value patterns
    assert Redactor(key_pattern=None, value_patterns=()).scrub(f"db://u:{SECRET}@h") == "db://u:[REDACTED]@h"


def test_plain_data_is_redacted_by_key_and_by_shape() -> None:
    content = [{"role": "user", "content": f"use password={SECRET}", "api_key": SECRET}, (f"sk-{SECRET * 2}", 5)]
    assert Redactor().redact(content) == [
        {"role": "user", "content": "use password=[REDACTED]", "api_key": MARKER},
        [MARKER, 5],
    ]
    cycle: list[Any] = []
    cycle.append(cycle)
    assert "[REDACTED]" in str(Redactor().redact(cycle))  # cut off, not a RecursionError


def test_exception_notes_in_payloads_are_redacted() -> None:
    error = ValueError(f"password={SECRET}")
    error.add_note(f"while connecting to postgresql://app:{SECRET}@db/prod")
    encoded = encode(error, Redactor())
    assert SECRET not in encoded
    decoded = decode(encoded)
    assert decoded.args == ("password=[REDACTED]",)
    assert decoded.__notes__ == ["while connecting to postgresql://app:[REDACTED]@db/prod"]


# --- a failed span's exception goes through the same redactor --------------------------------


def _failing_graph() -> otelstream.CompiledStateGraph:
    def connect(state: State) -> dict[str, Any]:
        try:
            raise ConnectionError(f"cannot reach postgresql://app:{SECRET}@db/prod")
        except ConnectionError as cause:
            error = RuntimeError(f"login failed with password={SECRET} and {OPENAI_KEY}")
            error.add_note(f"headers: {{'X-Api-Key': '{SECRET}'}}")
            raise error from cause

    g = StateGraph(State)
    g.add_node("connect", connect)
    g.add_edge(START, "connect")
    return g.compile(name="failing")


def _exception_records(telemetry: Telemetry) -> list[tuple[str, dict[str, Any], str]]:
    """``(span name, exception event attributes, status description)`` of each failed span."""
    out = []
    for span in telemetry.spans.get_finished_spans():
        for event in span.events:
            if event.name == "exception":
                out.append((span.name, dict(event.attributes or {}), span.status.description or ""))
    return sorted(out, key=lambda item: item[0])


def test_a_failed_spans_exception_and_status_are_redacted(telemetry: Telemetry) -> None:
    with pytest.raises(RuntimeError) as raised:
        list(_failing_graph().stream({"request": {}}))
    assert SECRET in str(raised.value)  # the application gets its exception as raised
    records = _exception_records(telemetry)
    assert [name for name, _, _ in records] == ["invoke_node connect", "invoke_workflow failing"]
    for _, attributes, status in records:
        assert attributes["exception.type"] == "RuntimeError"
        assert attributes["exception.message"] == f"login failed with password={MARKER} and {MARKER}"
        assert status == f"RuntimeError: login failed with password={MARKER} and {MARKER}"
        stacktrace = str(attributes["exception.stacktrace"])
        # the cause, the note and the frames are all there, without the secrets
        assert "ConnectionError: cannot reach postgresql://app:[REDACTED]@db/prod" in stacktrace
        assert "headers: {'X-Api-Key': '[REDACTED]'}" in stacktrace
        assert "in connect" in stacktrace
        assert SECRET not in stacktrace and OPENAI_KEY not in stacktrace
        assert attributes["exception.escaped"] == "False"


def test_with_redaction_off_exception_text_is_exported_as_raised(telemetry: Telemetry) -> None:
    otelstream.configure(
        tracer_provider=telemetry.tracer_provider, logger_provider=telemetry.logger_provider, redact=False
    )
    with pytest.raises(RuntimeError):
        list(_failing_graph().stream({"request": {}}))
    [(_, node, node_status), _] = _exception_records(telemetry)
    assert node["exception.message"] == f"login failed with password={SECRET} and {OPENAI_KEY}"
    assert node_status == f"RuntimeError: login failed with password={SECRET} and {OPENAI_KEY}"
    assert f"postgresql://app:{SECRET}@db/prod" in str(node["exception.stacktrace"])


def test_an_exception_whose_str_fails_still_ends_its_span(telemetry: Telemetry) -> None:
    class Hostile(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    def node(state: State) -> dict[str, Any]:
        raise Hostile()

    g = StateGraph(State)
    g.add_node("node", node)
    g.add_edge(START, "node")
    with pytest.raises(Hostile):
        list(g.compile(name="hostile").stream({"request": {}}))
    [(_, attributes, status), _] = _exception_records(telemetry)
    assert attributes["exception.message"] == f"<unprintable {Hostile.__qualname__} object>"
    assert status.startswith("Hostile: <unprintable")
