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
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context as otel_context

__all__ = ["SUPPRESS_INSTRUMENTATION_KEY", "is_suppressed", "suppressed"]

# --- instrumentation suppression ------------------------------------------------------------

_PLAIN_SUPPRESS_KEY = "suppress_instrumentation"
SUPPRESS_INSTRUMENTATION_KEY: str = getattr(otel_context, "_SUPPRESS_INSTRUMENTATION_KEY", None) or _PLAIN_SUPPRESS_KEY
"""The context key OpenTelemetry's processors set around exports and instrumentations check.

A key made with ``create_key("suppress_instrumentation")`` is a fresh, unique key that no
instrumentation reads: only the API's own object silences an instrumented HTTP client.
"""
_KEYS = tuple(dict.fromkeys((SUPPRESS_INSTRUMENTATION_KEY, _PLAIN_SUPPRESS_KEY)))


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
