"""Every environment variable otelstream reads, declared once: name, default, parser, doc.

Each setting resolves the same way whether or not :func:`otelstream.configure` ran: a keyword
argument given to ``configure()`` wins, then the environment variable, then the default::

    from otelstream.telemetry import environment

    environment.MAX_PAYLOAD_BYTES.get()          # the environment's value, or 65536
    environment.MAX_PAYLOAD_BYTES.value(1024)    # configure(max_payload_bytes=1024) wins

Variables are read when the value is needed — at the start of each run for the stream
settings, when otelstream builds its own providers for the ``OTEL_EXPORTER_OTLP_*`` ones — so
a variable set after ``import otelstream`` still applies. A value that does not parse never
breaks the application: it is reported once, in a warning on the ``otelstream`` logger that
names the variable and the value, and the default applies.

The ``OTEL_*`` variables here are the ones otelstream itself reads; the SDK and its exporters
read the rest of OpenTelemetry's (``OTEL_SERVICE_NAME`` for the resource,
``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_TRACES_SAMPLER``, ...) as they always do. Modelled on
logfire's ``config_params.py`` and opentelemetry-sdk's ``environment_variables``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable
from typing import Any, Generic, Literal, TypeVar

from otelstream.engine.types import STREAM_MODES
from otelstream.telemetry._sdk import suppressed

__all__ = [
    "CAPTURE_MESSAGE_CONTENT",
    "EXPORT_MODES",
    "MAX_PAYLOAD_BYTES",
    "OTLP_ENDPOINT",
    "OTLP_LOGS_ENDPOINT",
    "OTLP_LOGS_PROTOCOL",
    "OTLP_PROTOCOL",
    "OTLP_TRACES_ENDPOINT",
    "OTLP_TRACES_PROTOCOL",
    "PAYLOADS",
    "RAISE_INTERNAL",
    "SERVE_TOKEN",
    "SHUTDOWN_TIMEOUT",
    "REDACT",
    "SERVICE_NAME",
    "SPAN_EVENT_MODES",
    "VARIABLES",
    "EnvVar",
    "OtlpProtocol",
]

logger = logging.getLogger("otelstream")

T = TypeVar("T")

OtlpProtocol = Literal["http/protobuf", "grpc"]

_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


@dataclasses.dataclass(frozen=True, eq=False)
class EnvVar(Generic[T]):
    """One environment variable: its name, default, parser and meaning.

    Attributes:
        name: The variable, e.g. ``OTELSTREAM_PAYLOADS``.
        default: The value when the variable is unset, empty or invalid.
        parse: Turns the variable's text into the value; raises ``ValueError`` (with the
            reason as its message) for text it does not accept.
        doc: What the variable does, for people (``docs/telemetry.md`` lists them all).
    """

    name: str
    default: T
    parse: Callable[[str], T]
    doc: str
    # the last text parsed and its value, as one tuple (replaced whole, so threads never see
    # one's text with another's value): a run reads its settings without re-parsing them
    _cache: tuple[str | None, Any] = dataclasses.field(default=(None, None), repr=False, compare=False)

    def get(self) -> T:
        """Return the variable's value, or the default when it is unset, empty or invalid.

        Never raises: an invalid value logs one warning (per variable and value).
        """
        raw = os.environ.get(self.name)
        if raw is None or not raw.strip():
            return self.default
        cache = self._cache
        if cache[0] == raw:
            return cache[1]  # type: ignore[no-any-return]
        try:
            value = self.parse(raw.strip())
        except ValueError as exc:
            _warn_invalid(self, raw, exc)
            value = self.default
        object.__setattr__(self, "_cache", (raw, value))  # frozen: only this cache ever changes
        return value

    def value(self, given: T | None = None) -> T:
        """Return ``given`` (a ``configure()`` argument) if it is not None, else :meth:`get`."""
        return given if given is not None else self.get()


def _warn_invalid(var: EnvVar[Any], raw: str, exc: ValueError) -> None:
    key = (var.name, raw)
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    with suppressed():
        logger.warning("otelstream: ignoring %s=%r (%s); using the default, %r", var.name, raw, exc, var.default)


# --- parsers ---------------------------------------------------------------------------------

_TRUE = frozenset(("1", "true", "yes", "on"))
_FALSE = frozenset(("0", "false", "no", "off"))


def _parse_bool(text: str) -> bool:
    """Parse ``true``/``false`` (also ``1``/``0``, ``yes``/``no``, ``on``/``off``, any case).

    Raises:
        ValueError: any other text.
    """
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("expected true or false")


def _parse_payloads(text: str) -> Literal["full", "none"]:
    lowered = text.strip().lower()
    if lowered == "full":
        return "full"
    if lowered == "none":
        return "none"
    raise ValueError("expected full or none")


def _parse_positive_int(text: str) -> int:
    try:
        number = int(text.strip().replace("_", ""))
    except ValueError:
        raise ValueError("expected a positive whole number of bytes") from None
    if number <= 0:
        raise ValueError("expected a positive whole number of bytes")
    return number


def _parse_seconds(text: str) -> float:
    try:
        number = float(text.strip())
    except ValueError:
        raise ValueError("expected a positive number of seconds") from None
    if not number > 0 or number == float("inf"):
        raise ValueError("expected a positive number of seconds")
    return number


def _parse_modes(text: str) -> frozenset[str]:
    modes = frozenset(m.strip() for m in text.split(",") if m.strip())
    unknown = sorted(modes - STREAM_MODES)
    if unknown:
        raise ValueError(f"expected stream modes among {sorted(STREAM_MODES)}, not {unknown}")
    return modes


_CONTENT_ON = frozenset(("SPAN_ONLY", "SPAN_AND_EVENT", "TRUE"))
_CONTENT_OFF = frozenset(("NO_CONTENT", "EVENT_ONLY", "FALSE"))


def _parse_capture_content(text: str) -> bool:
    upper = text.strip().upper()
    if upper in _CONTENT_ON:
        return True
    if upper in _CONTENT_OFF:
        return False
    raise ValueError("expected SPAN_ONLY, SPAN_AND_EVENT, NO_CONTENT, true or false")


def _parse_protocol(text: str) -> OtlpProtocol:
    lowered = text.strip().lower()
    if lowered == "http/protobuf":
        return "http/protobuf"
    if lowered == "grpc":
        return "grpc"
    raise ValueError("expected http/protobuf or grpc (the protocols the Python exporters speak)")


def _text(text: str) -> str | None:
    return text.strip()


# --- otelstream's own settings ---------------------------------------------------------------

PAYLOADS: EnvVar[Literal["full", "none"]] = EnvVar(
    "OTELSTREAM_PAYLOADS",
    "full",
    _parse_payloads,
    "``none`` exports no payload at all, only metadata (``otelstream.payload.omitted``); ``configure(payloads=...)``.",
)
REDACT: EnvVar[bool] = EnvVar(
    "OTELSTREAM_REDACT",
    True,
    _parse_bool,
    "``false`` turns credential redaction in telemetry payloads off; ``configure(redact=...)``.",
)
MAX_PAYLOAD_BYTES: EnvVar[int] = EnvVar(
    "OTELSTREAM_MAX_PAYLOAD_BYTES",
    64 * 1024,
    _parse_positive_int,
    "Cap on each record's JSON payload in telemetry (the stream is never cut); ``configure(max_payload_bytes=...)``.",
)
SPAN_EVENT_MODES: EnvVar[frozenset[str]] = EnvVar(
    "OTELSTREAM_SPAN_EVENT_MODES",
    frozenset(),
    _parse_modes,
    "Comma-separated stream modes carried as span events instead of log records, e.g. "
    "``updates,custom``; ``configure(span_event_modes=...)``.",
)
SHUTDOWN_TIMEOUT: EnvVar[float] = EnvVar(
    "OTELSTREAM_SHUTDOWN_TIMEOUT",
    5.0,
    _parse_seconds,
    "Seconds ``otelstream.shutdown()`` and the flush at interpreter exit wait for otelstream's own "
    "exporters in all; what is not exported by then is counted as dropped; ``shutdown(timeout=...)``.",
)
EXPORT_MODES: EnvVar[str | None] = EnvVar(
    "OTELSTREAM_EXPORT_MODES",
    None,
    _text,
    "Comma-separated stream modes every instrumented LangGraph run exports besides the ones the "
    "application streams (unset: ``updates``; ``none``: no more); ``custom``, ``messages`` and "
    "``tools`` change LangGraph's behaviour (docs/telemetry.md); ``instrument(export_modes=...)``.",
)
SERVE_TOKEN: EnvVar[str | None] = EnvVar(
    "OTELSTREAM_SERVE_TOKEN",
    None,
    _text,
    "The bearer token ``otelstream serve`` requires on its OTLP and reading endpoints, and "
    "``otelstream tail`` sends (unset: no token).",
)
RAISE_INTERNAL: EnvVar[bool] = EnvVar(
    "OTELSTREAM_RAISE_INTERNAL",
    False,
    _parse_bool,
    "``1`` makes otelstream's own failures raise instead of being logged (its test suite sets it).",
)

# --- OpenTelemetry's variables that otelstream reads itself ----------------------------------

CAPTURE_MESSAGE_CONTENT: EnvVar[bool] = EnvVar(
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
    False,
    _parse_capture_content,
    "``SPAN_ONLY``, ``SPAN_AND_EVENT`` or ``true`` put prompts, completions and tool arguments on "
    "LLM and tool spans; read at each call; ``configure(capture_message_content=...)``.",
)
OTLP_ENDPOINT: EnvVar[str | None] = EnvVar(
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    None,
    _text,
    "Set (or a ``_TRACES_``/``_LOGS_`` variant): otelstream's own providers export with OTLP; "
    "the SDK exporter reads it for the address.",
)
OTLP_TRACES_ENDPOINT: EnvVar[str | None] = EnvVar(
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", None, _text, "As ``OTEL_EXPORTER_OTLP_ENDPOINT``, for spans."
)
OTLP_LOGS_ENDPOINT: EnvVar[str | None] = EnvVar(
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", None, _text, "As ``OTEL_EXPORTER_OTLP_ENDPOINT``, for stream records."
)
OTLP_PROTOCOL: EnvVar[OtlpProtocol] = EnvVar(
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "http/protobuf",
    _parse_protocol,
    "``http/protobuf`` or ``grpc``: which OTLP exporter otelstream's own providers use.",
)
OTLP_TRACES_PROTOCOL: EnvVar[OtlpProtocol | None] = EnvVar(
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    None,
    _parse_protocol,
    "As ``OTEL_EXPORTER_OTLP_PROTOCOL``, for spans (wins over it).",
)
OTLP_LOGS_PROTOCOL: EnvVar[OtlpProtocol | None] = EnvVar(
    "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
    None,
    _parse_protocol,
    "As ``OTEL_EXPORTER_OTLP_PROTOCOL``, for stream records (wins over it).",
)
SERVICE_NAME: EnvVar[str | None] = EnvVar(
    "OTEL_SERVICE_NAME",
    None,
    _text,
    "Read by ``otelstream demo`` for its service name (the SDK reads it for every resource).",
)

VARIABLES: tuple[EnvVar[Any], ...] = (
    PAYLOADS,
    REDACT,
    MAX_PAYLOAD_BYTES,
    SPAN_EVENT_MODES,
    SHUTDOWN_TIMEOUT,
    EXPORT_MODES,
    SERVE_TOKEN,
    RAISE_INTERNAL,
    CAPTURE_MESSAGE_CONTENT,
    OTLP_ENDPOINT,
    OTLP_TRACES_ENDPOINT,
    OTLP_LOGS_ENDPOINT,
    OTLP_PROTOCOL,
    OTLP_TRACES_PROTOCOL,
    OTLP_LOGS_PROTOCOL,
    SERVICE_NAME,
)
"""Every variable otelstream reads, in the order ``docs/telemetry.md`` lists them."""
