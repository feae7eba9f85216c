"""The pipeline an instrumented LangGraph run emits through.

By default it is otelstream's, resolved on every run as for the engine
(:func:`otelstream._config.current_pipeline`: ``configure()``'s providers, else the global
SDK ones, else otelstream's private ones). Providers passed to ``instrument()`` replace the
tracer, logger or meter of that pipeline; every other setting (payload cap, redaction,
carriers) stays ``configure()``'s.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk._logs import LoggerProvider

from otelstream._config import current_pipeline, router
from otelstream._version import __version__
from otelstream.consumer.processor import StreamLogRecordProcessor
from otelstream.telemetry import semconv
from otelstream.telemetry.metrics import RunMetrics
from otelstream.telemetry.pipeline import Pipeline

__all__ = ["PipelineSource"]

# logger providers given to instrument() that already carry a stream processor of ours
_attached: weakref.WeakSet[Any] = weakref.WeakSet()
_attached_lock = threading.Lock()


class PipelineSource:
    """Resolves the pipeline of each run, with ``instrument()``'s providers if any were given."""

    __slots__ = ("_cache", "_lock", "_logger_provider", "_metrics", "_tracer_provider")

    def __init__(self, tracer_provider: Any = None, logger_provider: Any = None, meter_provider: Any = None) -> None:
        """Use these providers instead of otelstream's resolution (None: otelstream's)."""
        self._tracer_provider = tracer_provider
        # only an SDK provider runs processors: otelstream's must see every record
        self._logger_provider = logger_provider if isinstance(logger_provider, LoggerProvider) else None
        self._metrics = (
            RunMetrics(meter_provider.get_meter(semconv.INSTRUMENTATION_SCOPE, __version__))
            if isinstance(meter_provider, MeterProvider)
            else None
        )
        self._lock = threading.Lock()
        self._cache: tuple[Pipeline, Pipeline] | None = None

    def resolve(self) -> Pipeline:
        """Return the pipeline a run starting now emits through."""
        base = current_pipeline()
        if self._tracer_provider is None and self._logger_provider is None and self._metrics is None:
            return base
        cached = self._cache
        if cached is not None and cached[0] is base:
            return cached[1]
        with self._lock:
            pipeline = Pipeline(
                tracer=(
                    self._tracer_provider.get_tracer(semconv.INSTRUMENTATION_SCOPE, __version__)
                    if self._tracer_provider is not None
                    else base.tracer
                ),
                export_logger=(
                    self._export_logger(self._logger_provider)
                    if self._logger_provider is not None
                    else base.export_logger
                ),
                stream_logger=base.stream_logger,
                max_payload_bytes=base.max_payload_bytes,
                span_event_modes=base.span_event_modes,
                metrics=self._metrics or base.metrics,
                redactor=base.redactor,
                payloads=base.payloads,
                capture_content=base.capture_content,
                # an application's provider may export anything: payloads are encoded
                encode_payloads=base.encode_payloads if self._logger_provider is None else base.payloads,
            )
            self._cache = (base, pipeline)
            return pipeline

    @staticmethod
    def _export_logger(provider: LoggerProvider) -> Any:
        with _attached_lock:
            if provider not in _attached:
                # stream() is fed by this processor; had otelstream attached its own to this
                # provider too, the channel ignores the second copy of each record
                provider.add_log_record_processor(StreamLogRecordProcessor(router()))
                _attached.add(provider)
        return provider.get_logger(semconv.INSTRUMENTATION_SCOPE, __version__)
