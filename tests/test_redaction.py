"""Credentials never leave the process in telemetry; the application's stream is never altered."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import otelstream
from otelstream import START, InMemorySaver, StateGraph, ToolNode, add_messages, get_stream_writer, llm_call
from otelstream.engine.types import STREAM_MODES
from otelstream.telemetry import environment
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


def test_metadata_only_telemetry_records_a_failures_type_without_its_text(metadata_only: Telemetry) -> None:
    def fails(state: Any) -> dict[str, Any]:
        raise RuntimeError("customer 4711 has balance 12,345.67")  # application data, no credential

    builder = StateGraph(State)
    builder.add_node("fails", fails)
    builder.add_edge(START, "fails")
    with pytest.raises(RuntimeError):
        list(builder.compile().stream({"request": {}}))
    failed = [s for s in metadata_only.spans.get_finished_spans() if s.status.description]
    assert failed, "the failed spans carry an ERROR status"
    for span in failed:
        assert span.status.description == "RuntimeError"
        [event] = [e for e in span.events if e.name == "exception"]
        assert dict(event.attributes or {}) == {"exception.type": "RuntimeError", "exception.escaped": "False"}
    exported = repr([(s.attributes, s.events, s.status) for s in metadata_only.spans.get_finished_spans()])
    assert "4711" not in exported and "12,345" not in exported


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


# --- the scan: every credential shape, in every place, through every carrier and sink ----------
#
# Each (place, shape) gets its own secret and its own canary (a readable, non-secret marker
# next to the secret). Every exported byte is searched: no secret may occur anywhere, and every
# canary must occur with the text around the secret redacted - so a place that was not
# exported at all (which would make the first check pass trivially) fails the second.

_SHAPES: dict[str, Callable[[str, str], tuple[Any, str]]] = {
    # shape: (canary, secret) -> (the value placed, the redacted text expected in the export)
    "sk_key": lambda c, s: (f"openai {c} sk-proj-{s}", f"openai {c} [REDACTED]"),
    "bearer": lambda c, s: (f"Authorization: Bearer {s} {c}", f"Authorization: [REDACTED] {c}"),
    "postgres_url": lambda c, s: (
        f"postgresql://{c}:{s}@db.internal:5432/prod",
        f"postgresql://{c}:[REDACTED]@db.internal:5432/prod",
    ),
    "https_userinfo": lambda c, s: (
        f"https://{c}:{s}@internal.example/api",
        f"https://{c}:[REDACTED]@internal.example/api",
    ),
    "password_kv": lambda c, s: (f"{c} password={s}", f"{c} password=[REDACTED]"),
    "db_password_colon": lambda c, s: (f"{c} db_password: {s}", f"{c} db_password: [REDACTED]"),
    "query_password": lambda c, s: (
        f"https://api.example/{c}?password={s}&page=2",
        f"https://api.example/{c}?password=[REDACTED]&page=2",
    ),
    "query_token": lambda c, s: (
        f"https://api.example/{c}?page=2&token={s}",
        f"https://api.example/{c}?page=2&token=[REDACTED]",
    ),
    # a mapping under a credential key; text places carry its repr
    "credential_key": lambda c, s: ({"X-Api-Key": s, "canary": c}, c),
}
_PLACES = (
    "state",
    "update",
    "custom",
    "message",
    "tool_args",
    "tool_result",
    "configurable",
    "metadata",
    "tags",
    "exception",  # the exception message, hence the status description too
    "stack_trace",  # the exception's cause: only in the stack trace
    "exception_note",
    "llm_input",
    "llm_error",
    "tool_error",
    "span_attribute",
    "environment",  # never exported, redacted or not
)
_NEVER_EXPORTED = frozenset({"environment"})


def _canary(place: str, shape: str) -> str:
    return f"cn{_PLACES.index(place):02d}{list(_SHAPES).index(shape):02d}"


def _secret(place: str, shape: str) -> str:
    # same length and distinct prefixes: no secret is a substring of another
    return f"Zq{_PLACES.index(place):02d}{list(_SHAPES).index(shape):02d}Kx7Wm4Tn"


def _values(place: str) -> dict[str, Any]:
    # neutral keys: a key named after its shape ("query_password") would be redacted whole
    return {
        f"field{i}": make(_canary(place, shape), _secret(place, shape))[0]
        for i, (shape, make) in enumerate(_SHAPES.items())
    }


def _text(place: str) -> str:
    return " | ".join(str(value) for value in _values(place).values())


def _redacted_text(place: str) -> str:
    """What :func:`_text` becomes once redacted."""
    parts = []
    for shape, make in _SHAPES.items():
        value, expected = make(_canary(place, shape), _secret(place, shape))
        parts.append(expected if isinstance(value, str) else str(value).replace(_secret(place, shape), MARKER))
    return " | ".join(parts)


class ScanState(TypedDict):
    request: Annotated[dict[str, Any], _keep]
    messages: Annotated[list[Any], add_messages]


def _scan_graph() -> otelstream.CompiledStateGraph:
    from langchain_core.messages import AIMessage
    from langchain_core.tools import tool

    @tool
    def lookup(query: str, options: dict[str, Any]) -> str:
        """Look something up."""
        return _text("tool_result")

    @tool
    def broken(query: str) -> str:
        """Fail."""
        raise ValueError(_text("tool_error"))

    def prepare(state: ScanState) -> dict[str, Any]:
        get_stream_writer()(_values("custom"))
        return {"request": _values("update")}

    def agent(state: ScanState) -> dict[str, Any]:
        attributes = {f"acme.{key}": str(value) for key, value in _values("span_attribute").items()}
        attributes["acme.api_key"] = _secret("span_attribute", "credential_key")
        llm_input = [{"role": "user", "content": _text("llm_input")}, {"role": "system", **_values("llm_input")}]
        with llm_call(model="scan", provider="acme", input_messages=llm_input, attributes=attributes) as call:
            for value in _values("message").values():
                call.chunk(f"{value} | ")  # a secret split across tokens is beyond any redactor
            call.finish(finish_reason="stop")
        with pytest.raises(ConnectionError), llm_call(model="flaky", provider="acme") as failing:
            failing.chunk("partial")
            raise ConnectionError(_text("llm_error"))
        calls = [
            {"name": "lookup", "args": {"query": _text("tool_args"), "options": _values("tool_args")}, "id": "c1"},
            {"name": "broken", "args": {"query": "x"}, "id": "c2"},
        ]
        return {"messages": [call.message, AIMessage("", tool_calls=calls)]}

    def fail(state: ScanState) -> dict[str, Any]:
        try:
            raise ConnectionError(_text("stack_trace"))
        except ConnectionError as cause:
            error = RuntimeError(_text("exception"))
            error.add_note(_text("exception_note"))
            raise error from cause

    g = StateGraph(ScanState)
    g.add_node("prepare", prepare)
    g.add_node("agent", agent)
    g.add_node(ToolNode([lookup, broken], handle_tool_errors=True))
    g.add_node("fail", fail)
    g.add_edge(START, "prepare")
    g.add_edge("prepare", "agent")
    g.add_edge("agent", "tools")
    g.add_edge("tools", "fail")
    return g.compile(name="scan", checkpointer=InMemorySaver())


def _run_scan() -> list[Any]:
    """Run the scan graph with every stream mode; return what the application's stream yielded."""
    config = {
        "configurable": {"thread_id": "scan-thread", **_values("configurable")},
        "metadata": _values("metadata"),
        "tags": [str(value) for value in _values("tags").values()],
    }
    streamed: list[Any] = []
    with pytest.raises(RuntimeError):
        for chunk in _scan_graph().stream(
            {"request": _values("state"), "messages": []}, config, stream_mode=sorted(STREAM_MODES)
        ):
            streamed.append(chunk)
    return streamed


class Sink:
    """One destination of otelstream's telemetry, and every byte it received."""

    def __init__(self, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.name = name
        self.path = tmp_path / f"{name}.jsonl"
        self.monkeypatch = monkeypatch
        self.telemetry: Telemetry | None = None
        self.metrics: InMemoryMetricReader | None = None
        self.receiver: subprocess.Popen[str] | None = None

    def configure(self, **settings: Any) -> None:
        if self.name == "memory":
            self.telemetry = make_telemetry()
            self.metrics = InMemoryMetricReader()
            otelstream.configure(
                tracer_provider=self.telemetry.tracer_provider,
                logger_provider=self.telemetry.logger_provider,
                meter_provider=MeterProvider(metric_readers=[self.metrics]),
                **settings,
            )
        elif self.name == "file":
            otelstream.configure(export=otelstream.ExportOptions(file=str(self.path)), **settings)
        else:
            self.receiver = subprocess.Popen(
                [sys.executable, "-m", "tests.otlp_receiver", str(self.path)],
                cwd=Path(__file__).resolve().parent.parent,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert self.receiver.stdout is not None
            line = self.receiver.stdout.readline()
            assert line.startswith("port="), f"receiver did not start: {line!r}"
            self.monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{line.strip().split('=')[1]}")
            self.monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
            otelstream.configure(export=otelstream.ExportOptions(otlp=True), **settings)

    def exported(self) -> bytes:
        """Every exported byte: spans (events, attributes, status, resource), log records, metrics."""
        if self.telemetry is None:
            otelstream.shutdown()  # flushes the private providers' batch processors into the sink
            return self.path.read_bytes()
        assert self.metrics is not None
        metrics = self.metrics.get_metrics_data()
        parts = [span.to_json(indent=None) for span in self.telemetry.spans.get_finished_spans()]
        parts += [record.to_json(indent=None) for record in self.telemetry.logs.get_finished_logs()]
        parts += [metrics.to_json(indent=None)] if metrics is not None else []
        return "\n".join(parts).encode()

    def spans(self) -> list[tuple[str, str, set[str]]]:
        """``(name, status description, event names)`` of every exported span."""
        if self.telemetry is not None:
            return [
                (span.name, span.status.description or "", {event.name for event in span.events})
                for span in self.telemetry.spans.get_finished_spans()
            ]
        return [
            (span["name"], span.get("status", {}).get("message", ""), {e["name"] for e in span.get("events", [])})
            for line in self.path.read_text().splitlines()
            for resource in json.loads(line).get("resourceSpans", [])
            for scope in resource["scopeSpans"]
            for span in scope["spans"]
        ]

    def close(self) -> None:
        otelstream.shutdown()
        otelstream.configure()
        if self.receiver is not None:
            self.receiver.send_signal(signal.SIGTERM)
            try:
                self.receiver.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.receiver.kill()
                self.receiver.wait()
            if self.receiver.stdout is not None:
                self.receiver.stdout.close()


@pytest.fixture(params=["memory", "file", "otlp"])
def sink(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sink]:
    for key, value in _values("environment").items():
        monkeypatch.setenv(f"SCAN_{key.upper()}", str(value))
    monkeypatch.setenv("MY_SERVICE_PASSWORD", _secret("environment", "password_kv"))
    monkeypatch.setenv(environment.CAPTURE_MESSAGE_CONTENT.name, "SPAN_ONLY")
    sink = Sink(request.param, tmp_path, monkeypatch)
    yield sink
    sink.close()


@pytest.mark.parametrize("carrier", ["log_records", "span_events"])
def test_no_credential_shape_leaves_the_process_from_any_place_carrier_or_sink(sink: Sink, carrier: str) -> None:
    span_event_modes = sorted(STREAM_MODES) if carrier == "span_events" else []
    sink.configure(span_event_modes=span_event_modes, capture_message_content=True)
    streamed = _run_scan()
    exported = sink.exported()

    leaks = [(place, shape) for place in _PLACES for shape in _SHAPES if _secret(place, shape).encode() in exported]
    assert leaks == []
    missing = [
        (place, shape, expected)
        for place in _PLACES
        if place not in _NEVER_EXPORTED
        for shape, make in _SHAPES.items()
        if (expected := make(_canary(place, shape), _secret(place, shape))[1]).encode() not in exported
    ]
    assert missing == []
    spans = sink.spans()
    # the chunks travelled by the carrier under test
    assert any("otelstream.custom" in events for _, _, events in spans) is (carrier == "span_events")
    # every kind of span recorded its failure, with a redacted status description
    failed = {name: status for name, status, events in spans if "exception" in events}
    assert failed == {
        "invoke_workflow scan": f"RuntimeError: {_redacted_text('exception')}",
        "invoke_node fail": f"RuntimeError: {_redacted_text('exception')}",
        "chat flaky": f"ConnectionError: {_redacted_text('llm_error')}",
        "execute_tool broken": f"ValueError: {_redacted_text('tool_error')}",
    }
    # the application's own stream is never redacted
    for place in ("state", "update", "custom", "message"):
        assert all(_secret(place, shape) in repr(streamed) for shape in _SHAPES), place


def test_the_scan_finds_every_secret_when_redaction_is_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the scan above can fail: unredacted, every place's secrets are in the exported bytes
    monkeypatch.setenv(environment.CAPTURE_MESSAGE_CONTENT.name, "SPAN_ONLY")
    sink = Sink("memory", tmp_path, monkeypatch)
    try:
        sink.configure(redact=False)
        _run_scan()
        exported = sink.exported()
    finally:
        sink.close()
    found = {(place, shape) for place in _PLACES for shape in _SHAPES if _secret(place, shape).encode() in exported}
    assert found == {(place, shape) for place in _PLACES if place not in _NEVER_EXPORTED for shape in _SHAPES}
