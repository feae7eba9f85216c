"""A failed span: its ``exception`` event and ERROR status, redacted like the payloads.

The exception of a failed node, LLM call or tool is where credentials travel most often: a
driver puts its connection string in the message, a framework formats a request's headers or
a function's locals into it. ``Span.record_exception`` exports that text as raised and takes
no hook, so :func:`record_failure` writes the same ``exception`` event itself (the attributes
``record_exception`` writes, under the same semantic-convention names) with the message,
stack trace and type passed through the pipeline's
:class:`~otelstream.telemetry.redact.Redactor`, and the status description too. With
redaction off (``configure(redact=False)``) the text is exported as raised.
"""

from __future__ import annotations

import traceback

from opentelemetry.trace import Span, Status, StatusCode

from otelstream.telemetry import semconv
from otelstream.telemetry.redact import Redactor

__all__ = ["record_failure"]


def _message(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # a hostile __str__ must not leave the span unended
        return f"<unprintable {type(error).__qualname__} object>"


def record_failure(span: Span, error: BaseException, redactor: Redactor | None, *, with_text: bool = True) -> None:
    """Record ``error`` on ``span``: an ``exception`` event, ``error.type``, ERROR status.

    Args:
        span: The failed span; it is not ended here.
        error: What the application's code raised (its traceback, causes and notes included).
        redactor: Applied to the exception's type, message and stack trace and to the status
            description; ``None`` exports them unredacted.
        with_text: False for metadata-only telemetry: the exception's type is recorded, its
            message and stack trace (application data) are not.
    """
    cls = type(error)
    module = cls.__module__
    exception_type = f"{module}.{cls.__qualname__}" if module and module != "builtins" else cls.__qualname__
    if not with_text:
        span.add_event(
            semconv.EXCEPTION_EVENT, {semconv.EXCEPTION_TYPE: exception_type, semconv.EXCEPTION_ESCAPED: "False"}
        )
        span.set_attribute(semconv.ERROR_TYPE, cls.__qualname__)
        span.set_status(Status(StatusCode.ERROR, cls.__name__))
        return
    message = _message(error)
    stacktrace = "".join(traceback.format_exception(error))
    description = f"{cls.__name__}: {message}"
    if redactor is not None:
        exception_type = redactor.scrub(exception_type)
        message = redactor.scrub(message)
        stacktrace = redactor.scrub(stacktrace)
        description = redactor.scrub(description)
    span.add_event(
        semconv.EXCEPTION_EVENT,
        {
            semconv.EXCEPTION_TYPE: exception_type,
            semconv.EXCEPTION_MESSAGE: message,
            semconv.EXCEPTION_STACKTRACE: stacktrace,
            semconv.EXCEPTION_ESCAPED: "False",
        },
    )
    span.set_attribute(semconv.ERROR_TYPE, cls.__qualname__)
    span.set_status(Status(StatusCode.ERROR, description))
