"""Every setting is declared once and honoured from the environment, with or without configure().

The end-to-end cases run in a fresh interpreter whose only otelstream setting is the
environment: ``configure()`` is never called there.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

import otelstream
from otelstream import START, StateGraph, get_stream_writer
from otelstream.telemetry import environment
from otelstream.telemetry.environment import EnvVar
from otelstream.telemetry.redact import MARKER
from tests import otlp_receiver
from tests.conftest import Telemetry, make_telemetry

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "otelstream"

# --- declarations ----------------------------------------------------------------------------


def test_each_variable_is_declared_once_and_documented() -> None:
    names = [var.name for var in environment.VARIABLES]
    assert len(names) == len(set(names))
    settings = (ROOT / "docs" / "telemetry.md").read_text()
    assert [name for name in names if f"`{name}`" not in settings] == []


def test_nothing_outside_the_environment_module_reads_the_environment() -> None:
    readers = re.compile(r"os\.environ|getenv\(|environ\.get\(")
    offenders = [
        f"{path.relative_to(SRC)}:{number}"
        for path in sorted(SRC.rglob("*.py"))
        if path.name != "environment.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if readers.search(line)
    ]
    assert offenders == []
    declared = {var.name for var in environment.VARIABLES}
    mentioned = {name for path in SRC.rglob("*.py") for name in re.findall(r"OTELSTREAM_[A-Z_]+", path.read_text())}
    assert mentioned <= declared


@pytest.mark.parametrize(
    ("var", "text", "value"),
    [
        (environment.PAYLOADS, "none", "none"),
        (environment.PAYLOADS, " NONE ", "none"),
        (environment.PAYLOADS, "full", "full"),
        (environment.REDACT, "false", False),
        (environment.REDACT, "0", False),
        (environment.REDACT, "True", True),
        (environment.MAX_PAYLOAD_BYTES, "1024", 1024),
        (environment.SPAN_EVENT_MODES, "updates, custom", frozenset(("updates", "custom"))),
        (environment.SPAN_EVENT_MODES, " ", frozenset()),
        (environment.RAISE_INTERNAL, "1", True),
        (environment.CAPTURE_MESSAGE_CONTENT, "span_only", True),
        (environment.CAPTURE_MESSAGE_CONTENT, "NO_CONTENT", False),
        (environment.OTLP_PROTOCOL, "grpc", "grpc"),
        (environment.OTLP_LOGS_PROTOCOL, "http/protobuf", "http/protobuf"),
        (environment.OTLP_ENDPOINT, "http://127.0.0.1:4318", "http://127.0.0.1:4318"),
    ],
)
def test_valid_values_parse(var: EnvVar[Any], text: str, value: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(var.name, text)
    assert var.get() == value


@pytest.mark.parametrize(
    ("var", "text"),
    [
        (environment.PAYLOADS, "metadata"),
        (environment.REDACT, "maybe"),
        (environment.MAX_PAYLOAD_BYTES, "64k"),
        (environment.MAX_PAYLOAD_BYTES, "0"),
        (environment.SPAN_EVENT_MODES, "updates,tokens"),
        (environment.CAPTURE_MESSAGE_CONTENT, "sometimes"),
        (environment.OTLP_PROTOCOL, "http/json"),
    ],
)
def test_an_invalid_value_warns_once_naming_it_and_the_default_applies(
    var: EnvVar[Any], text: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(var.name, text)
    with caplog.at_level(logging.WARNING, logger="otelstream"):
        assert var.get() == var.default
        assert var.get() == var.default
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith(f"otelstream: ignoring {var.name}={text!r} (expected")
    assert warning.endswith(f"using the default, {var.default!r}")


def test_unset_and_empty_give_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTELSTREAM_MAX_PAYLOAD_BYTES", raising=False)
    assert environment.MAX_PAYLOAD_BYTES.get() == 65536
    monkeypatch.setenv("OTELSTREAM_MAX_PAYLOAD_BYTES", "")
    assert environment.MAX_PAYLOAD_BYTES.get() == 65536
    assert environment.MAX_PAYLOAD_BYTES.value(10) == 10


# --- precedence, in process ------------------------------------------------------------------


def _keep(a: Any, b: Any) -> Any:
    return b


class State(TypedDict):
    text: Annotated[str, _keep]


def _writer() -> otelstream.CompiledStateGraph:
    def write(state: State) -> dict[str, str]:
        get_stream_writer()(state["text"])
        return {"text": state["text"]}

    g = StateGraph(State)
    g.add_node("write", write)
    g.add_edge(START, "write")
    return g.compile(name="env")


def _exported_custom_payloads(telemetry: Telemetry) -> list[str]:
    return [
        str((r.log_record.attributes or {})["otelstream.payload"])
        for r in telemetry.logs.get_finished_logs()
        if r.log_record.event_name == "otelstream.custom"
    ]


@pytest.fixture
def telemetry_unset() -> Iterator[Telemetry]:
    yield make_telemetry()  # configure() with providers only: every other setting unset
    otelstream.configure()


def test_the_environment_applies_to_each_run_and_configure_arguments_win(
    telemetry_unset: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    telemetry = telemetry_unset
    text = "x" * 40
    monkeypatch.setenv("OTELSTREAM_MAX_PAYLOAD_BYTES", "10")
    assert list(_writer().stream({"text": text}, stream_mode="custom")) == [text]
    monkeypatch.setenv("OTELSTREAM_MAX_PAYLOAD_BYTES", "20")  # read again at the next run
    list(_writer().stream({"text": text}, stream_mode="custom"))
    monkeypatch.delenv("OTELSTREAM_MAX_PAYLOAD_BYTES")
    list(_writer().stream({"text": text}, stream_mode="custom"))
    otelstream.configure(
        tracer_provider=telemetry.tracer_provider, logger_provider=telemetry.logger_provider, max_payload_bytes=30
    )
    monkeypatch.setenv("OTELSTREAM_MAX_PAYLOAD_BYTES", "10")  # the argument wins over it
    list(_writer().stream({"text": text}, stream_mode="custom"))
    assert [len(p) for p in _exported_custom_payloads(telemetry)] == [10, 20, 42, 30]


# --- the environment alone, in a fresh interpreter -------------------------------------------


def _clean_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELSTREAM_"))}
    env["OTELSTREAM_RAISE_INTERNAL"] = "1"  # otelstream's own bugs fail the probe
    env.update(settings)
    return env


def _probe(code: str, env: dict[str, str], tmp_path: Path) -> tuple[Any, str]:
    script = tmp_path / "probe.py"
    script.write_text(textwrap.dedent(code))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


SECRETS = {"state": "state-value-4f1c9", "custom": "custom-value-8e2d7", "exception": "exception-value-6b3a0"}

# Secrets that redaction does not recognise (no credential-named key, no credential shape), in
# the state, in a custom write, and in a failed node's exception. The span records the
# exception's message (documented metadata, docs/security.md), so that message is generic and
# the secret travels in the exception's arguments, which only payloads (tasks, debug) carry.
SECRET_RUN = """
import json
from typing import TypedDict
from otelstream import StateGraph, START, get_stream_writer

SECRETS = json.loads(SECRETS_JSON)

class LookupFailed(Exception):
    def __str__(self):
        return "lookup failed"

class State(TypedDict, total=False):
    note: str
    found: str

def fetch(state):
    get_stream_writer()({"detail": SECRETS["custom"]})
    return {"found": state["note"]}

def explode(state):
    raise LookupFailed(SECRETS["exception"])

g = StateGraph(State)
g.add_node("fetch", fetch)
g.add_node("explode", explode)
g.add_edge(START, "fetch")
g.add_edge("fetch", "explode")
graph = g.compile(name="secrets")

def run():
    modes = ["values", "updates", "custom", "messages", "tasks", "debug", "checkpoints"]
    streamed = set()
    try:
        for mode, chunk in graph.stream({"note": SECRETS["state"]}, stream_mode=modes):
            streamed.add(mode)
    except LookupFailed:
        pass
    return sorted(streamed)
""".replace("SECRETS_JSON", repr(json.dumps(SECRETS)))


def _found(exported: bytes) -> list[str]:
    return [where for where, secret in SECRETS.items() if secret.encode() in exported]


@pytest.mark.parametrize(("payloads", "found"), [("none", []), (None, ["state", "custom", "exception"])])
def test_payloads_none_alone_keeps_every_payload_off_the_applications_exporters(
    tmp_path: Path, payloads: str | None, found: list[str]
) -> None:
    out = tmp_path / "exported.jsonl"
    code = (
        SECRET_RUN
        + f"""
from opentelemetry import trace, _logs
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from otelstream.telemetry.file_exporter import OTLPJsonFile, OTLPJsonFileLogExporter, OTLPJsonFileSpanExporter

# the application's SDK providers, set after the graph was built: otelstream finds them per run
file = OTLPJsonFile({str(out)!r})
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPJsonFileSpanExporter(file)))
logger_provider = LoggerProvider()
logger_provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPJsonFileLogExporter(file)))
trace.set_tracer_provider(tracer_provider)
_logs.set_logger_provider(logger_provider)
print(json.dumps(run()))
"""
    )
    env = _clean_env(OTELSTREAM_PAYLOADS=payloads) if payloads else _clean_env()
    modes, _ = _probe(code, env, tmp_path)
    assert modes == ["custom", "debug", "tasks", "updates", "values"]
    exported = out.read_bytes()
    assert b"otelstream.custom" in exported and b"invoke_node explode" in exported
    assert _found(exported) == found
    assert (b"otelstream.payload.omitted" in exported) is (payloads == "none")


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    out = tmp_path / "received.jsonl"
    running = otlp_receiver.start(str(out))
    try:
        yield running.endpoint, out
    finally:
        running.stop()


@pytest.mark.parametrize(("payloads", "found"), [("none", []), (None, ["state", "custom", "exception"])])
def test_payloads_none_alone_keeps_every_payload_off_otelstreams_own_otlp_export(
    tmp_path: Path, receiver: tuple[str, Path], payloads: str | None, found: list[str]
) -> None:
    endpoint, out = receiver
    # no SDK set up and no otelstream call: the OTLP endpoint and the payload setting come from
    # the environment, and the interpreter's exit flushes otelstream's own providers
    code = SECRET_RUN + "\nprint(json.dumps(run()))\n"
    settings = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    if payloads:
        settings["OTELSTREAM_PAYLOADS"] = payloads
    modes, _ = _probe(code, _clean_env(**settings), tmp_path)
    assert modes == ["custom", "debug", "tasks", "updates", "values"]
    exported = out.read_bytes()
    assert b"otelstream.custom" in exported and b"invoke_node explode" in exported
    assert b"resourceMetrics" in exported  # every signal was received and scanned
    assert _found(exported) == found


SETTINGS_RUN = """
import json
from typing import TypedDict
from opentelemetry import trace, _logs
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor, InMemoryLogRecordExporter
from otelstream import StateGraph, START, get_stream_writer
from otelstream.telemetry.codec import decode

spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
logger_provider = LoggerProvider()
logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
trace.set_tracer_provider(tracer_provider)
_logs.set_logger_provider(logger_provider)

class State(TypedDict, total=False):
    n: int

def write(state):
    get_stream_writer()({"password": "hunter2"})
    get_stream_writer()("x" * 500)
    return {"n": 1}

g = StateGraph(State)
g.add_node("write", write)
g.add_edge(START, "write")
graph = g.compile(name="settings")
streamed = [list(graph.stream({}, stream_mode="custom")) for _ in range(2)]

def carried(kind, attributes):
    payload = attributes["otelstream.payload"]
    if attributes.get("otelstream.payload.truncated"):
        return [kind, {"cut_to": len(payload), "size": attributes["otelstream.payload.size"]}]
    return [kind, decode(payload)]

records = [
    carried("log", dict(r.log_record.attributes))
    for r in logs.get_finished_logs()
    if r.log_record.event_name == "otelstream.custom"
]
records += [
    carried("event", dict(e.attributes))
    for s in spans.get_finished_spans()
    for e in s.events
    if e.name == "otelstream.custom"
]
print(json.dumps({"streamed": streamed, "exported": records}))
"""

_REDACTED = {"password": MARKER}
_LONG = "x" * 500


@pytest.mark.parametrize(
    ("settings", "exported"),
    [
        ({}, [["log", _REDACTED], ["log", _LONG]]),
        ({"OTELSTREAM_REDACT": "false"}, [["log", {"password": "hunter2"}], ["log", _LONG]]),
        ({"OTELSTREAM_MAX_PAYLOAD_BYTES": "100"}, [["log", _REDACTED], ["log", {"cut_to": 100, "size": 502}]]),
        ({"OTELSTREAM_SPAN_EVENT_MODES": "custom"}, [["event", _REDACTED], ["event", _LONG]]),
        ({"OTELSTREAM_MAX_PAYLOAD_BYTES": "lots"}, [["log", _REDACTED], ["log", _LONG]]),
    ],
    ids=["defaults", "redact-false", "max-payload-bytes", "span-event-modes", "invalid-value"],
)
def test_each_setting_is_honoured_from_the_environment_without_configure(
    tmp_path: Path, settings: dict[str, str], exported: list[Any]
) -> None:
    result, stderr = _probe(SETTINGS_RUN, _clean_env(**settings), tmp_path)
    # the application's own stream is never altered by any telemetry setting
    assert result["streamed"] == [[{"password": "hunter2"}, _LONG]] * 2
    assert result["exported"] == exported * 2
    warnings = [line for line in stderr.splitlines() if "otelstream: ignoring" in line]
    if settings.get("OTELSTREAM_MAX_PAYLOAD_BYTES") == "lots":
        # once for both runs, naming the variable and the value
        assert warnings == [
            "otelstream: ignoring OTELSTREAM_MAX_PAYLOAD_BYTES='lots' "
            "(expected a positive whole number of bytes); using the default, 65536"
        ]
    else:
        assert warnings == []
