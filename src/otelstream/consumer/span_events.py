"""The span-event carrier: chunks recorded as span events still reach ``stream()`` live.

The SDK calls no processor when a span event is added (processors see events only when the
span ends), so otelstream wraps ``opentelemetry.sdk.trace.Span.add_event`` once, with wrapt:
after the SDK recorded the event, an ``otelstream.<mode>`` event is routed to its run's
channel, exactly as :class:`~otelstream.consumer.processor.StreamLogRecordProcessor` routes
log records. Every other span event passes through untouched (one string prefix check).
"""

from __future__ import annotations

import threading
from typing import Any

import wrapt

from otelstream.consumer.processor import MISSING, StreamRouter, route
from otelstream.telemetry import semconv
from otelstream.telemetry._safe import handle_internal_errors
from otelstream.telemetry.pipeline import NO_PAYLOAD, take_span_event_payload

__all__ = ["install_span_event_hook"]

_installed: list[StreamRouter] = []
_lock = threading.Lock()


def install_span_event_hook(router: StreamRouter) -> None:
    """Route otelstream's span events to ``router``; idempotent."""
    with _lock:
        if _installed:
            return
        _installed.append(router)
        wrapt.wrap_function_wrapper("opentelemetry.sdk.trace", "Span.add_event", _make_wrapper(router))


def _make_wrapper(router: StreamRouter) -> Any:
    def add_event(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        result = wrapped(*args, **kwargs)
        name = args[0] if args else kwargs.get("name")
        if isinstance(name, str) and name.startswith(semconv.EVENT_PREFIX):
            with handle_internal_errors("routing a stream span event"):
                attributes = args[1] if len(args) > 1 else kwargs.get("attributes")
                payload = take_span_event_payload()
                route(router, name, attributes, MISSING if payload is NO_PAYLOAD else payload)
        return result

    return add_event
