"""Where otelstream's telemetry goes, and how it finds the application's providers.

Resolution, on every run (so an application may set its providers after import):

1. providers passed to :func:`configure` win;
2. otherwise the application's global SDK ``TracerProvider`` / ``LoggerProvider``;
3. otherwise otelstream's own private providers, which export to what :func:`configure`
   (or ``OTEL_EXPORTER_OTLP_ENDPOINT``) asked for, or nowhere.

otelstream adds its :class:`~otelstream.consumer.processor.StreamLogRecordProcessor` to
whichever ``LoggerProvider`` it emits through, once per provider: first on its own
providers, so the live consumer receives each chunk before any exporter queues it; after
the application's processors on the application's provider (its order is its own).

Every setting is declared once, in :mod:`otelstream.telemetry.environment`, and resolves
the same way with or without :func:`configure`: its keyword argument, else the environment
variable, else the default — read at the start of each run.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import logging
import threading
import weakref
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from opentelemetry import _logs, metrics, trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

from otelstream._exporters import ExportOptions, build_providers, private_meter_provider
from otelstream._version import __version__
from otelstream.consumer.processor import StreamLogRecordProcessor, StreamRouter, route
from otelstream.consumer.span_events import install_span_event_hook
from otelstream.engine.types import STREAM_MODES
from otelstream.errors import InvalidStreamArgumentError
from otelstream.telemetry import environment, semconv
from otelstream.telemetry._safe import log_internal_error
from otelstream.telemetry._sdk import makes_clean_records, suppressed
from otelstream.telemetry.export import DROPS, BackpressureLogRecordProcessor
from otelstream.telemetry.metrics import RunMetrics
from otelstream.telemetry.pipeline import DirectSink, Pipeline
from otelstream.telemetry.redact import Redactor

__all__ = ["ExportOptions", "configure", "current_pipeline", "override", "router", "shutdown"]

logger = logging.getLogger("otelstream")


@dataclasses.dataclass(slots=True)
class _Settings:
    """What :func:`configure` was given; None: the environment decides (then the default)."""

    tracer_provider: TracerProvider | None = None
    logger_provider: LoggerProvider | None = None
    export: ExportOptions = dataclasses.field(default_factory=ExportOptions)
    service_name: str | None = None
    max_payload_bytes: int | None = None
    span_event_modes: frozenset[str] | None = None
    meter_provider: MeterProvider | None = None
    per_run_metrics: bool = True
    prometheus: tuple[str, int] | None = None
    redact: bool | Redactor | None = None
    payloads: Literal["full", "none"] | None = None
    capture_message_content: bool | None = None
    span_processors: tuple[SpanProcessor, ...] = ()
    log_record_processors: tuple[LogRecordProcessor, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class _StreamSettings:
    """The settings a run's pipeline is built from, resolved: ``configure()``, environment, default."""

    max_payload_bytes: int
    span_event_modes: frozenset[str]
    redactor: Redactor | None
    payloads: bool


_DEFAULT_REDACTOR = Redactor()


def _stream_settings() -> _StreamSettings:
    redact = _settings.redact
    if redact is None:
        redact = environment.REDACT.get()
    return _StreamSettings(
        max_payload_bytes=environment.MAX_PAYLOAD_BYTES.value(_settings.max_payload_bytes),
        span_event_modes=environment.SPAN_EVENT_MODES.value(_settings.span_event_modes),
        redactor=redact if isinstance(redact, Redactor) else (_DEFAULT_REDACTOR if redact else None),
        payloads=environment.PAYLOADS.value(_settings.payloads) == "full",
    )


_lock = threading.RLock()
_settings = _Settings()
_router = StreamRouter()
_processor = StreamLogRecordProcessor(_router)
_attached: weakref.WeakSet[LoggerProvider] = weakref.WeakSet()


@dataclasses.dataclass(slots=True)
class _Private:
    """What otelstream made for itself, built on first need and dropped by :func:`shutdown`.

    Attributes:
        export: otelstream's own tracer and logger providers (with its exporters).
        export_processors: Their record export processors (what shutdown may have to give up).
        export_silent: Whether nothing but ``stream()`` reads ``export``'s records.
        stream: The private logger provider of runs the application's sampler dropped.
        metrics: The instruments runs record into.
        meter_provider: otelstream's own meter provider, when it made one.
    """

    export: tuple[TracerProvider, LoggerProvider] | None = None
    export_processors: tuple[BackpressureLogRecordProcessor, ...] = ()
    export_silent: bool = False
    stream: LoggerProvider | None = None
    metrics: RunMetrics | None = None
    meter_provider: SdkMeterProvider | None = None


_private = _Private()
# the last resolved pipeline, kept with its providers (not their ids, which get reused)
# and the settings it was built from
_last: list[tuple[Any, Any, _StreamSettings, Pipeline]] = []


def router() -> StreamRouter:
    """Return the router every ``stream()`` registers its channel with."""
    return _router


def _private_providers() -> tuple[TracerProvider, LoggerProvider]:
    providers = _private.export
    if providers is None:
        built = build_providers(
            _settings.export,
            service_name=_settings.service_name,
            stream_processor=_processor,
            span_processors=_settings.span_processors,
            log_record_processors=_settings.log_record_processors,
        )
        _attached.add(built.logger_provider)
        providers = (built.tracer_provider, built.logger_provider)
        _private.export = providers
        _private.export_processors = built.export_processors
        # nothing but stream() reads this provider's records: payloads need no encoding
        _private.export_silent = built.silent
    return providers


def _stream_only_provider() -> LoggerProvider:
    provider = _private.stream
    if provider is None:
        provider = LoggerProvider(resource=Resource.create({}))
        provider.add_log_record_processor(_processor)
        _private.stream = provider
    return provider


def current_pipeline() -> Pipeline:
    """Return the pipeline a run starting now emits through (see the module docstring)."""
    stream = _stream_settings()
    tracer_provider: Any = _settings.tracer_provider or trace.get_tracer_provider()
    logger_provider: Any = _settings.logger_provider or _logs.get_logger_provider()
    if not isinstance(tracer_provider, TracerProvider) or not isinstance(logger_provider, LoggerProvider):
        with _lock:
            private_tracer, private_logger = _private_providers()
        if not isinstance(tracer_provider, TracerProvider):
            tracer_provider = private_tracer
        if not isinstance(logger_provider, LoggerProvider):
            logger_provider = private_logger
    last = _last[0] if _last else None
    if last is not None and last[0] is tracer_provider and last[1] is logger_provider and last[2] == stream:
        return last[3]
    with _lock:
        if logger_provider not in _attached:
            logger_provider.add_log_record_processor(_processor)
            _attached.add(logger_provider)
        export_logger = logger_provider.get_logger(semconv.INSTRUMENTATION_SCOPE, __version__)
        stream_logger = _stream_only_provider().get_logger(semconv.INSTRUMENTATION_SCOPE, __version__)
        pipeline = Pipeline(
            tracer=tracer_provider.get_tracer(semconv.INSTRUMENTATION_SCOPE, __version__),
            export_logger=export_logger,
            stream_logger=stream_logger,
            direct_export=_direct_sink(logger_provider, export_logger),
            direct_stream=_direct_sink(_stream_only_provider(), stream_logger),
            max_payload_bytes=stream.max_payload_bytes,
            span_event_modes=stream.span_event_modes,
            metrics=_run_metrics(),
            redactor=stream.redactor,
            payloads=stream.payloads,
            capture_content=_settings.capture_message_content,
            encode_payloads=stream.payloads and not _exports_nothing(logger_provider, stream),
        )
        if pipeline.span_event_modes:
            install_span_event_hook(_router)
        _last[:] = [(tracer_provider, logger_provider, stream, pipeline)]
        return pipeline


def _deliver(name: str, attributes: dict[str, Any], payload: Any) -> None:
    route(_router, name, attributes, payload)


def _direct_sink(provider: LoggerProvider, logger: Any) -> DirectSink | None:
    # otelstream's own providers, whose every processor is its own, skip the SDK Logger
    if provider is _private.stream:
        return DirectSink(_deliver, (), logger)
    private = _private.export
    if private is None or private[1] is not provider or _settings.log_record_processors:
        return None
    if _private.export_processors and not makes_clean_records(logger):
        return None  # the exporters need SDK records this SDK cannot be handed ready-made
    return DirectSink(_deliver, _private.export_processors, logger)


def _exports_nothing(logger_provider: LoggerProvider, stream: _StreamSettings) -> bool:
    # only otelstream's own provider is known to have no exporter; an application's
    # provider may export anything (span events carry payloads to span exporters)
    private = _private.export
    return (
        private is not None and private[1] is logger_provider and _private.export_silent and not stream.span_event_modes
    )


def _run_metrics() -> RunMetrics:
    cached = _private.metrics
    if cached is not None:
        return cached
    provider: Any = _settings.meter_provider
    if provider is None and not isinstance(metrics.get_meter_provider(), SdkMeterProvider):
        provider = private_meter_provider(_settings.export, _settings.prometheus, _settings.service_name)
        if isinstance(provider, SdkMeterProvider):
            _private.meter_provider = provider
    # the global proxy meter follows a MeterProvider the application sets later
    meter = (
        provider.get_meter(semconv.INSTRUMENTATION_SCOPE, __version__)
        if provider
        else metrics.get_meter(semconv.INSTRUMENTATION_SCOPE, __version__)
    )
    run_metrics = RunMetrics(meter, per_run=_settings.per_run_metrics)
    DROPS.use_meter(meter)
    _private.metrics = run_metrics
    return run_metrics


def configure(
    *,
    tracer_provider: TracerProvider | None = None,
    logger_provider: LoggerProvider | None = None,
    export: ExportOptions | None = None,
    service_name: str | None = None,
    max_payload_bytes: int | None = None,
    span_event_modes: Sequence[str] | None = None,
    meter_provider: MeterProvider | None = None,
    per_run_metrics: bool = True,
    prometheus: tuple[str, int] | None = None,
    redact: bool | Redactor | None = None,
    payloads: Literal["full", "none"] | None = None,
    capture_message_content: bool | None = None,
    additional_span_processors: Sequence[SpanProcessor] = (),
    additional_log_record_processors: Sequence[LogRecordProcessor] = (),
) -> None:
    """Set where otelstream's telemetry goes.

    Optional: without it otelstream uses the application's global SDK providers, or private
    ones that export nowhere, and the ``OTELSTREAM_*`` environment variables. Calling it
    again replaces the previous settings. A setting left at None follows its environment
    variable (read at the start of each run), else its default; see
    :mod:`otelstream.telemetry.environment`.

    Args:
        tracer_provider: Emit spans through this provider instead of the global one.
        logger_provider: Emit stream records through this provider instead of the global one.
        export: Exporters for otelstream's private providers (a local file, OTLP).
        service_name: ``service.name`` of the private providers' resource
            (``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` apply too).
        max_payload_bytes: Cap on each record's JSON payload; longer payloads are cut and
            marked ``otelstream.payload.truncated`` with ``otelstream.payload.size``.
            The in-process stream is never cut. Default 65536 or
            ``OTELSTREAM_MAX_PAYLOAD_BYTES``.
        span_event_modes: Stream modes whose chunks are recorded as span events on the span
            they belong to, instead of log records (default: none, or
            ``OTELSTREAM_SPAN_EVENT_MODES``, e.g. ``"updates,custom"``). For trace-only
            backends such as Jaeger; see ``docs/telemetry.md`` for the trade-offs.
        meter_provider: Record otelstream's metrics here instead of the global provider.
        per_run_metrics: Report per-run progress gauges (labelled with the run id).
        prometheus: ``(host, port)`` to serve the metrics for Prometheus to scrape (needs
            the ``otelstream[prometheus]`` extra), when no SDK MeterProvider is set globally.
        redact: Credential redaction in telemetry payloads: True (default, or
            ``OTELSTREAM_REDACT``), False, or a :class:`~otelstream.Redactor` with your own
            key and value patterns and callback. The application's stream is never altered.
        payloads: ``"none"`` sends no payloads at all, only metadata (default ``"full"``, or
            ``OTELSTREAM_PAYLOADS``).
        capture_message_content: Put prompts, completions and tool arguments/results on LLM
            and tool spans. Default: off, unless ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``
            asks for it (read at each call). Never with ``payloads="none"``.
        additional_span_processors: Added to otelstream's private tracer provider.
        additional_log_record_processors: Added to otelstream's private logger provider.

    Raises:
        ValueError: ``max_payload_bytes`` is not positive, or ``payloads`` is neither
            ``"full"`` nor ``"none"``.
        InvalidStreamArgumentError: a span event mode is unknown.
    """
    settings = _validated(
        tracer_provider=tracer_provider,
        logger_provider=logger_provider,
        export=export,
        service_name=service_name,
        max_payload_bytes=max_payload_bytes,
        span_event_modes=span_event_modes,
        meter_provider=meter_provider,
        per_run_metrics=per_run_metrics,
        prometheus=prometheus,
        redact=redact,
        payloads=payloads,
        capture_message_content=capture_message_content,
        additional_span_processors=additional_span_processors,
        additional_log_record_processors=additional_log_record_processors,
    )
    global _settings
    with _lock:
        shutdown()
        _settings = settings


def _validated(
    *,
    tracer_provider: TracerProvider | None,
    logger_provider: LoggerProvider | None,
    export: ExportOptions | None,
    service_name: str | None,
    max_payload_bytes: int | None,
    span_event_modes: Sequence[str] | None,
    meter_provider: MeterProvider | None,
    per_run_metrics: bool,
    prometheus: tuple[str, int] | None,
    redact: bool | Redactor | None,
    payloads: Literal["full", "none"] | None,
    capture_message_content: bool | None,
    additional_span_processors: Sequence[SpanProcessor],
    additional_log_record_processors: Sequence[LogRecordProcessor],
) -> _Settings:
    # configure()'s arguments checked and gathered (see its docstring for what each means)
    if payloads is not None and payloads not in ("full", "none"):
        raise ValueError(f"payloads must be 'full' or 'none', got {payloads!r}")
    if span_event_modes is not None:
        unknown = sorted(set(span_event_modes) - STREAM_MODES)
        if unknown:
            raise InvalidStreamArgumentError(
                f"Unknown span_event_modes {unknown}; expected modes among {sorted(STREAM_MODES)}"
            )
    if max_payload_bytes is not None and max_payload_bytes <= 0:
        raise ValueError(f"max_payload_bytes must be positive, got {max_payload_bytes}")
    return _Settings(
        tracer_provider=tracer_provider,
        logger_provider=logger_provider,
        export=export or ExportOptions(),
        service_name=service_name,
        max_payload_bytes=max_payload_bytes,
        span_event_modes=None if span_event_modes is None else frozenset(span_event_modes),
        meter_provider=meter_provider,
        per_run_metrics=per_run_metrics,
        prometheus=prometheus,
        redact=redact,
        payloads=payloads,
        capture_message_content=capture_message_content,
        span_processors=tuple(additional_span_processors),
        log_record_processors=tuple(additional_log_record_processors),
    )


@contextlib.contextmanager
def override(
    *,
    tracer_provider: TracerProvider | None = None,
    logger_provider: LoggerProvider | None = None,
    export: ExportOptions | None = None,
    span_event_modes: Sequence[str] | None = None,
    max_payload_bytes: int | None = None,
    redact: bool | Redactor | None = None,
    payloads: Literal["full", "none"] | None = None,
    capture_message_content: bool | None = None,
) -> Iterator[None]:
    """Configure otelstream for a ``with`` block, then put the previous configuration back exactly.

    Unlike calling :func:`configure` twice, the configuration in force before is not shut
    down: its private providers, their additional processors and a Prometheus endpoint keep
    running and serve again after the block. Private providers made inside the block are
    shut down at its end. (For tests: :func:`otelstream.testing.capture` uses it.)

    Raises:
        ValueError: an option is invalid (nothing was changed).
        InvalidStreamArgumentError: a span event mode is unknown (nothing was changed).
    """
    settings = _validated(
        tracer_provider=tracer_provider,
        logger_provider=logger_provider,
        export=export,
        service_name=None,
        max_payload_bytes=max_payload_bytes,
        span_event_modes=span_event_modes,
        meter_provider=None,
        per_run_metrics=True,
        prometheus=None,
        redact=redact,
        payloads=payloads,
        capture_message_content=capture_message_content,
        additional_span_processors=(),
        additional_log_record_processors=(),
    )
    global _settings, _private
    with _lock:
        saved = (_settings, _private, list(_last))
        _settings = settings
        # the stream-only provider holds nothing of the configuration: it is shared
        _private = _Private(stream=saved[1].stream)
        _last.clear()
    try:
        yield
    finally:
        with _lock:
            shutdown()  # the block's own private providers, if any run made them
            _settings, _private = saved[0], saved[1]
            _last[:] = saved[2]


def shutdown(timeout: float | None = None) -> None:
    """Flush and shut down otelstream's private providers (the application's are its own).

    One deadline covers it all, so a collector that hangs cannot stall the application's
    exit: what is not exported by then is counted as dropped and reported in one log line.
    It runs at interpreter exit too.

    Args:
        timeout: Seconds to wait in all (default ``OTELSTREAM_SHUTDOWN_TIMEOUT``, else 5).
    """
    limit = environment.SHUTDOWN_TIMEOUT.get() if timeout is None else timeout
    with _lock:
        providers, _private.export = _private.export, None
        processors, _private.export_processors = _private.export_processors, ()
        _private.metrics = None
        meter_provider, _private.meter_provider = _private.meter_provider, None
        _last.clear()
    closing: list[Any] = [*(providers or ()), *([meter_provider] if meter_provider is not None else [])]
    if not closing:
        return
    done = threading.Event()

    def close_all() -> None:
        try:
            for provider in closing:
                provider.shutdown()
        except Exception as exc:
            log_internal_error("shutting down otelstream's providers", exc)
        finally:
            done.set()

    # a daemon thread: the process may exit while it still waits on the collector
    threading.Thread(target=close_all, name="otelstream-shutdown", daemon=True).start()
    if done.wait(limit):
        return
    unsent = sum(processor.abandon() for processor in processors)
    with suppressed():
        logger.warning(
            "otelstream: telemetry export did not finish within %.1f s of shutdown (is the collector "
            "reachable?): %d stream records not exported, counted as dropped; spans still queued are lost too",
            limit,
            unsent,
        )


def _shutdown_at_exit() -> None:
    try:
        shutdown()
    except Exception as exc:  # never a traceback at the application's exit
        log_internal_error("shutting down at exit", exc)


atexit.register(_shutdown_at_exit)


def force_flush(timeout_millis: int = 30000) -> bool:
    """Export everything otelstream's private providers hold; return False on timeout."""
    providers = _private.export
    if providers is None:
        return True
    return all(p.force_flush(timeout_millis) for p in providers)
