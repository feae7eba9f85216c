from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Sampler

import otelstream

# otelstream's own failures raise under test instead of being logged and swallowed
os.environ["OTELSTREAM_RAISE_INTERNAL"] = "1"


@dataclass
class Telemetry:
    """Explicit providers with in-memory exporters, handed to otelstream.configure()."""

    tracer_provider: TracerProvider
    logger_provider: LoggerProvider
    spans: InMemorySpanExporter
    logs: InMemoryLogRecordExporter


def make_telemetry(sampler: Sampler | None = None) -> Telemetry:
    spans = InMemorySpanExporter()
    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call] # the SDK leaves it unannotated
    tracer_provider = TracerProvider(sampler=sampler) if sampler is not None else TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    otelstream.configure(tracer_provider=tracer_provider, logger_provider=logger_provider)
    return Telemetry(tracer_provider, logger_provider, spans, logs)


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    yield make_telemetry()
    otelstream.configure()
