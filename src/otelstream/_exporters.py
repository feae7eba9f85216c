"""What otelstream's own providers export to: files, OTLP, metrics readers.

Used by :mod:`otelstream._config` when the application supplies no SDK providers of its own:
it builds otelstream's private tracer and logger providers with the exporters that
``configure(export=...)`` and the ``OTEL_EXPORTER_OTLP_*`` variables ask for, and its own
meter provider when metrics must be exported and nobody else does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from otelstream.telemetry import environment
from otelstream.telemetry.export import BackpressureLogRecordProcessor
from otelstream.telemetry.file_exporter import OTLPJsonFile, OTLPJsonFileLogExporter, OTLPJsonFileSpanExporter

__all__ = [
    "ExportOptions",
    "ExportingProviders",
    "build_providers",
    "otlp_exporters",
    "otlp_wanted",
    "private_meter_provider",
]


@dataclasses.dataclass(frozen=True, slots=True)
class ExportOptions:
    """Where otelstream's own providers export (ignored for the application's providers).

    Attributes:
        file: Append OTLP-JSON lines (the Collector file exporter's format) to this path.
        otlp: Export with OTLP, configured by the standard ``OTEL_EXPORTER_OTLP_*``
            variables; ``None`` means "if ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or its
            ``_TRACES_``/``_LOGS_`` variants) is set".
    """

    file: str | None = None
    otlp: bool | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ExportingProviders:
    """otelstream's own tracer and logger providers, with their exporters.

    Attributes:
        tracer_provider: Exports otelstream's spans.
        logger_provider: Feeds the live stream first, then exports the stream records.
        export_processors: The logger provider's export processors (what shutdown may give up).
        silent: Whether nothing but ``stream()`` reads the records (no exporter, no processor added).
    """

    tracer_provider: TracerProvider
    logger_provider: LoggerProvider
    export_processors: tuple[BackpressureLogRecordProcessor, ...]
    silent: bool


def build_providers(
    options: ExportOptions,
    *,
    service_name: str | None,
    stream_processor: LogRecordProcessor,
    span_processors: Sequence[SpanProcessor],
    log_record_processors: Sequence[LogRecordProcessor],
) -> ExportingProviders:
    """Build otelstream's own providers exporting where ``options`` say, plus the processors given."""
    attributes = {"service.name": service_name} if service_name else {}
    resource = Resource.create(attributes)
    # shut down by otelstream's own exit handler, within one deadline (see _config.shutdown())
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    processors: list[BackpressureLogRecordProcessor] = []
    # the live consumer first: the SDK calls processors in the order they were added, and
    # an export queue that makes the producer wait (backpressure) must not delay the
    # moment stream() receives the chunk (docs/reliability.md, "Processor order")
    logger_provider.add_log_record_processor(stream_processor)
    if options.file:
        file = OTLPJsonFile(options.file)
        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPJsonFileSpanExporter(file)))
        processors.append(BackpressureLogRecordProcessor(OTLPJsonFileLogExporter(file)))
        logger_provider.add_log_record_processor(processors[-1])
    otlp = otlp_wanted(options)
    if otlp:
        span_exporter, log_exporter = otlp_exporters()
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
        processors.append(BackpressureLogRecordProcessor(log_exporter))
        logger_provider.add_log_record_processor(processors[-1])
    for span_processor in span_processors:
        tracer_provider.add_span_processor(span_processor)
    for log_processor in log_record_processors:
        logger_provider.add_log_record_processor(log_processor)
    silent = not (options.file or otlp or span_processors or log_record_processors)
    return ExportingProviders(tracer_provider, logger_provider, tuple(processors), silent)


def otlp_wanted(options: ExportOptions) -> bool:
    """Return whether otelstream's own providers export over OTLP (asked for, or an endpoint is set)."""
    if options.otlp is not None:
        return options.otlp
    endpoints = (environment.OTLP_ENDPOINT, environment.OTLP_TRACES_ENDPOINT, environment.OTLP_LOGS_ENDPOINT)
    return any(var.get() for var in endpoints)


def otlp_exporters() -> tuple[SpanExporter, LogRecordExporter]:
    """Return the span and log exporters the ``OTEL_EXPORTER_OTLP_*`` variables ask for."""
    # each signal's own variable wins over the general one, as in the SDK's exporters
    protocol = environment.OTLP_PROTOCOL.get()
    span_exporter: SpanExporter
    log_exporter: LogRecordExporter
    if (environment.OTLP_TRACES_PROTOCOL.get() or protocol) == "grpc":
        # grpc is imported only when asked for: it costs ~0.3 s at start-up
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

        span_exporter = OTLPSpanExporter()
    else:
        # the protobuf message modules load only when something exports over OTLP
        from otelstream.telemetry.otlp_wire import StreamSpanExporter  # noqa: PLC0415

        span_exporter = StreamSpanExporter()
    if (environment.OTLP_LOGS_PROTOCOL.get() or protocol) == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter  # noqa: PLC0415

        log_exporter = OTLPLogExporter()
    else:
        from otelstream.telemetry.otlp_wire import StreamLogExporter  # noqa: PLC0415

        log_exporter = StreamLogExporter()
    return span_exporter, log_exporter


def private_meter_provider(
    export: ExportOptions, prometheus: tuple[str, int] | None, service_name: str | None
) -> SdkMeterProvider | None:
    """Build otelstream's own MeterProvider when metrics must be exported and nobody else does.

    Raises:
        RuntimeError: ``prometheus`` is set but the ``otelstream[prometheus]`` extra is missing.
    """
    readers: list[Any] = []
    if prometheus is not None:
        try:
            from opentelemetry.exporter.prometheus import PrometheusMetricReader  # noqa: PLC0415 - optional extra
            from prometheus_client import start_http_server  # noqa: PLC0415 - optional extra
        except ImportError as exc:
            raise RuntimeError(
                "configure(prometheus=...) needs the prometheus extra: pip install 'otelstream[prometheus]'"
            ) from exc
        host, port = prometheus
        start_http_server(port, addr=host)
        readers.append(PrometheusMetricReader())
    if otlp_wanted(export):
        # loaded only when metrics are exported over OTLP (start-up cost otherwise)
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # noqa: PLC0415
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader  # noqa: PLC0415

        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    if not readers:
        return None
    attributes = {"service.name": service_name} if service_name else {}
    return SdkMeterProvider(resource=Resource.create(attributes), metric_readers=readers, shutdown_on_exit=False)
