"""One guard for otelstream's own failures: log once, carry on with less telemetry.

Every line otelstream logs about its own failures is logged with instrumentation suppressed
(an application that sends Python logging to OpenTelemetry must not get a record, or a span
of an instrumented handler, for each), and once per place and kind of error: a failure on
every chunk of a 100,000-chunk run is one log line, the repeats go to ``debug``.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import ParamSpec, TypeVar

from otelstream.telemetry import environment
from otelstream.telemetry._sdk import suppressed

__all__ = ["handle_internal_errors", "log_internal_error", "reraise_internal_errors"]

logger = logging.getLogger("otelstream")

P = ParamSpec("P")
R = TypeVar("R")

_logged: set[tuple[str, str]] = set()
_logged_lock = threading.Lock()


def reraise_internal_errors() -> bool:
    """Return whether internal errors should propagate (set ``OTELSTREAM_RAISE_INTERNAL=1``).

    The test suite sets it so otelstream's own bugs fail tests instead of being logged;
    tests of the fallback unset it.
    """
    return environment.RAISE_INTERNAL.get()


def log_internal_error(what: str, exc: BaseException) -> None:
    """Log that otelstream failed while doing ``what``: once per ``what`` and exception type.

    The first occurrence is logged at ERROR with its traceback, repeats at DEBUG; both with
    instrumentation suppressed. Never raises.
    """
    key = (what, type(exc).__qualname__)
    with _logged_lock:
        first = key not in _logged
        _logged.add(key)
    level = logging.ERROR if first else logging.DEBUG
    if not logger.isEnabledFor(level):
        return  # a repeat on every chunk costs one level check, not a context switch
    message = (
        "otelstream failed while %s; the application is unaffected" if first else "otelstream failed again while %s"
    )
    try:
        with suppressed():
            logger.log(level, message, what, exc_info=exc)
    except Exception:  # a logging filter that raises must not turn our failure into the app's
        pass


class handle_internal_errors:
    """Swallow and log (once per place) an exception raised by otelstream's own code.

    Example:
        >>> with handle_internal_errors("emitting a stream event"):
        ...     raise RuntimeError("boom")
    """

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        """Name the operation, for the log line."""
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        if reraise_internal_errors():
            return False
        log_internal_error(self.what, exc)
        return True

    def __call__(self, func: Callable[P, R]) -> Callable[P, R | None]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
            with self:
                return func(*args, **kwargs)
            return None

        return wrapper
