"""Every private OpenTelemetry name otelstream relies on, each with its fallback.

otelstream reads a few internals of ``opentelemetry-api``, ``-sdk`` and the OTLP exporters,
for correctness (the API's instrumentation-suppression key, which every instrumentation
reads) or for speed (see ``bench/README.md``). They are not covered by semantic versioning,
so they are read here and nowhere else, and each has a fallback that keeps records correct
when a release renames or removes it — slower, never wrong. ``tests/test_sdk_internals.py``
forces every fallback, and ``scripts/sdk-range.sh`` runs those tests on the lowest and the
newest OpenTelemetry release ``pyproject.toml`` allows.

The internals, what they are for, and what happens without them:

- ``opentelemetry.context._SUPPRESS_INSTRUMENTATION_KEY``: :func:`suppressed` and
  :func:`is_suppressed` silence instrumentation around otelstream's exports and log lines, as
  the SDK's own processors do. Alongside it they use the plain ``"suppress_instrumentation"``
  key, which contrib's ``suppress_instrumentation()`` also sets for older instrumentations;
  without the API's key, that plain key alone.
- ``Logger._log_record_limits`` and the fields of the ``ReadWriteLogRecord`` dataclass:
  :func:`clean_record` hands the SDK a finished record whose attributes skip the SDK's
  per-value validation. Fallback: the API record, which the SDK validates as usual.
- ``Span._limits``: :func:`span_event_limit`, how many events a span keeps before the SDK
  evicts the oldest. Fallback: the limit ``SpanLimits()`` reads from
  ``OTEL_SPAN_EVENT_COUNT_LIMIT`` (default 128), right for every provider that sets no limits
  of its own.
- ``opentelemetry.exporter.otlp.proto.common._internal`` (``_encode_resource``,
  ``_encode_instrumentation_scope``): :func:`encode_resource` and :func:`encode_scope` for the
  lean OTLP encoder. Fallback: the same messages built from ``opentelemetry-proto``'s classes.
- ``opentelemetry.exporter.otlp.proto.common._log_encoder.encode_logs``: :func:`encode_logs`
  for the OTLP-JSON file exporter. Fallback: None, and the caller encodes with otelstream's
  own encoder.
- The OTLP/HTTP exporters' ``_client``, ``_max_request_size``, ``_shutdown`` and ``_metrics``:
  :func:`exporter_client` posts otelstream's own encoding with the exporter's HTTP client
  (its retries, timeout, compression and metrics). Fallback: None, and the exporter's own
  ``export()`` encodes and sends the batch.

Not fenced: the modules of the logs signal (``opentelemetry._logs``, ``opentelemetry.sdk._logs``,
the exporters' ``_log_exporter``). Their underscore marks a signal still in development, not an
internal: they are the documented and only import paths of the logs API, SDK and exporters, so
there is nothing to fall back to.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

from opentelemetry import context as otel_context
from opentelemetry._logs import Logger, LogRecord
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as PB2Resource
from opentelemetry.sdk._logs import ReadWriteLogRecord
from opentelemetry.sdk.trace import SpanLimits

try:  # the SDK's own encoders; see encode_resource / encode_scope for the fallback
    from opentelemetry.exporter.otlp.proto.common._internal import (
        _encode_instrumentation_scope as _sdk_encode_scope,
    )
    from opentelemetry.exporter.otlp.proto.common._internal import _encode_resource as _sdk_encode_resource
except ImportError:  # pragma: no cover - a release that moved them
    _sdk_encode_scope = None  # type: ignore[assignment]
    _sdk_encode_resource = None  # type: ignore[assignment]
try:
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs as _sdk_encode_logs
except ImportError:  # pragma: no cover - a release that moved it
    _sdk_encode_logs = None  # type: ignore[assignment]

__all__ = [
    "SUPPRESS_INSTRUMENTATION_KEY",
    "ExporterClient",
    "Posted",
    "clean_record",
    "encode_logs",
    "encode_resource",
    "encode_scope",
    "exporter_client",
    "is_suppressed",
    "makes_clean_records",
    "span_event_limit",
    "suppressed",
]

# --- instrumentation suppression ------------------------------------------------------------

_PLAIN_SUPPRESS_KEY = "suppress_instrumentation"


def _suppress_keys(context_module: Any) -> tuple[str, ...]:
    api_key = getattr(context_module, "_SUPPRESS_INSTRUMENTATION_KEY", None)
    return (api_key, _PLAIN_SUPPRESS_KEY) if api_key else (_PLAIN_SUPPRESS_KEY,)


_KEYS = _suppress_keys(otel_context)
SUPPRESS_INSTRUMENTATION_KEY: str = _KEYS[0]
"""The context key OpenTelemetry's processors set around exports and instrumentations check.

A key made with ``create_key("suppress_instrumentation")`` is a fresh, unique key that no
instrumentation reads: only the API's own object silences an instrumented HTTP client.
"""


@contextmanager
def suppressed() -> Iterator[None]:
    """Run the block with OpenTelemetry instrumentation suppressed, as the SDK's processors export.

    Every instrumentation that honours suppression (contrib's HTTP clients, otelstream's
    own instrumentors) then records nothing for the block: no span of otelstream's OTLP
    posts, none of the calls a log handler makes for otelstream's own log lines.
    """
    context = otel_context.get_current()
    for key in _KEYS:
        context = otel_context.set_value(key, True, context)
    token = otel_context.attach(context)
    try:
        yield
    finally:
        otel_context.detach(token)


def is_suppressed() -> bool:
    """Return whether instrumentation is suppressed in the current context (either key)."""
    return any(otel_context.get_value(key) for key in _KEYS)


# --- log records without the SDK's per-value validation ---------------------------------------

_LOGGER_LIMITS = "_log_record_limits"  # the attribute an SDK Logger keeps its LogRecordLimits in
# the attributes a stream record carries, plus room: limits below this could cut them
_MIN_ATTRIBUTES = 16


class _CleanRecord(ReadWriteLogRecord):
    """An SDK record made from attributes otelstream built itself (``str``, ``int``, ``bool``).

    The SDK would re-validate every value of every record (a fifth of a chunk's cost in
    ``bench/``); these are known clean and within any limit that allows them (checked per
    logger by :func:`clean_record`), so the record keeps them as they are.
    """

    def __post_init__(self) -> None:
        pass


def _record_fields_known() -> bool:
    # _CleanRecord relies on ReadWriteLogRecord being the dataclass whose __post_init__ only
    # validates attributes, built from these four fields
    if not dataclasses.is_dataclass(ReadWriteLogRecord) or "__post_init__" not in vars(ReadWriteLogRecord):
        return False
    return [f.name for f in dataclasses.fields(ReadWriteLogRecord)] == [
        "log_record",
        "resource",
        "instrumentation_scope",
        "limits",
    ]


_CLEAN_RECORDS = _record_fields_known()


def makes_clean_records(logger: Logger) -> bool:
    """Return whether :func:`clean_record` hands ``logger`` finished SDK records (else API records)."""
    if not _CLEAN_RECORDS:
        return False
    limits = getattr(logger, _LOGGER_LIMITS, None)
    resource = getattr(logger, "resource", None)
    return not (
        limits is None
        or resource is None
        or limits.max_log_record_attribute_length is not None
        or (limits.max_log_record_attributes is not None and limits.max_log_record_attributes < _MIN_ATTRIBUTES)
    )


def clean_record(logger: Logger, record: LogRecord) -> LogRecord | ReadWriteLogRecord:
    """Return what to pass to ``logger.emit`` for ``record``, whose attributes otelstream built.

    An SDK logger whose limits cannot cut those attributes gets a finished SDK record that
    skips validation; any other logger (a proxy, another SDK, limits set, an SDK whose
    internals changed) gets ``record`` itself, to validate as usual.
    """
    if not makes_clean_records(logger):
        return record
    sdk_logger: Any = logger  # an SDK Logger: makes_clean_records checked both attributes
    limits = getattr(sdk_logger, _LOGGER_LIMITS)
    resource = sdk_logger.resource
    return _CleanRecord(
        log_record=record,
        resource=resource,
        instrumentation_scope=getattr(logger, "instrumentation_scope", None),
        limits=limits,
    )


# --- span event limits ---------------------------------------------------------------------

_SPAN_LIMITS = "_limits"  # the attribute an SDK Span keeps its SpanLimits in
_environment_limits: list[SpanLimits] = []


def span_event_limit(span: Any) -> int:
    """Return how many events ``span`` keeps before the SDK evicts the oldest (``sys.maxsize``: no limit).

    Fallback, for a span that does not expose its limits: ``OTEL_SPAN_EVENT_COUNT_LIMIT``, or
    the SDK's default of 128.
    """
    limits = getattr(span, _SPAN_LIMITS, None)
    if not isinstance(limits, SpanLimits):
        if not _environment_limits:
            _environment_limits.append(SpanLimits())
        limits = _environment_limits[0]
    max_events = limits.max_events
    return sys.maxsize if max_events is None else int(max_events)


# --- OTLP protobuf pieces ------------------------------------------------------------------


def _any_value(value: Any) -> AnyValue:
    if value is None:
        return AnyValue()
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, Mapping):
        return AnyValue(kvlist_value=KeyValueList(values=_key_values(value)))
    if isinstance(value, Sequence):
        return AnyValue(array_value=ArrayValue(values=[_any_value(v) for v in value]))
    raise TypeError(f"attribute of type {type(value).__name__}")


def _key_values(attributes: Mapping[str, Any] | None) -> list[KeyValue]:
    return [KeyValue(key=str(key), value=_any_value(value)) for key, value in (attributes or {}).items()]


def encode_resource(resource: Any) -> bytes:
    """Return ``resource`` as a serialized OTLP ``Resource`` message (without its schema URL).

    Raises:
        TypeError: an attribute value OTLP cannot carry.
    """
    if _sdk_encode_resource is not None:
        return _sdk_encode_resource(resource).SerializeToString()  # type: ignore[no-any-return]
    return PB2Resource(attributes=_key_values(resource.attributes)).SerializeToString()


def encode_scope(scope: Any) -> bytes:
    """Return ``scope`` (may be None) as a serialized OTLP ``InstrumentationScope`` message.

    Raises:
        TypeError: an attribute value OTLP cannot carry.
    """
    if _sdk_encode_scope is not None:
        return _sdk_encode_scope(scope).SerializeToString()  # type: ignore[no-any-return]
    if scope is None:
        return InstrumentationScope().SerializeToString()
    return InstrumentationScope(
        name=scope.name, version=scope.version or "", attributes=_key_values(scope.attributes)
    ).SerializeToString()


def encode_logs(batch: Sequence[Any]) -> Any | None:
    """Return the SDK's ``ExportLogsServiceRequest`` for ``batch``, or None without its encoder."""
    if _sdk_encode_logs is None:
        return None
    return _sdk_encode_logs(batch)


# --- posting with an OTLP/HTTP exporter's own client ---------------------------------------

_CLIENT = "_client"  # the exporters' HTTP client (retries, timeout, compression, headers)


@dataclasses.dataclass(frozen=True, slots=True)
class ExporterClient:
    """The HTTP client of an SDK OTLP/HTTP exporter, to post a request otelstream encoded."""

    client: Any
    max_request_size: int | None
    metrics: Any

    def fits(self, data: bytes) -> bool:
        """Return whether ``data`` is within the exporter's request size limit."""
        return self.max_request_size is None or len(data) <= self.max_request_size

    def post(self, data: bytes, count: int) -> Posted:
        """Send one serialized export request of ``count`` items; return whether it succeeded.

        The exporter's retries and timeout apply; the export is counted on the exporter's own
        metrics, as its ``export()`` would count it.
        """
        if self.metrics is None:
            result = self.client.export(data)
            return Posted(bool(result.success), getattr(result, "status_code", None))
        with self.metrics.export_operation(count) as outcome:
            result = self.client.export(data)
            if not result.success:
                outcome.error = result.error
                return Posted(False, getattr(result, "status_code", None))
        return Posted(True, getattr(result, "status_code", None))


class Posted(NamedTuple):
    """What an export request came back with: success, and the HTTP status when there was one."""

    ok: bool
    status: int | None


def exporter_client(exporter: Any) -> ExporterClient | None:
    """Return ``exporter``'s HTTP client, or None: then the exporter's own ``export()`` must send.

    None also for an exporter that was shut down (its ``export()`` reports that itself).
    """
    client = getattr(exporter, _CLIENT, None)
    if client is None or not callable(getattr(client, "export", None)) or getattr(exporter, "_shutdown", False):
        return None
    return ExporterClient(client, getattr(exporter, "_max_request_size", None), getattr(exporter, "_metrics", None))
