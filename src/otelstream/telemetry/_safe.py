"""One guard for otelstream's own failures: log once, carry on with less telemetry."""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable
from types import TracebackType
from typing import ParamSpec, TypeVar

__all__ = ["handle_internal_errors", "reraise_internal_errors"]

logger = logging.getLogger("otelstream")

P = ParamSpec("P")
R = TypeVar("R")

_logged: set[str] = set()
_logged_lock = threading.Lock()


def reraise_internal_errors() -> bool:
    """Return whether internal errors should propagate (set ``OTELSTREAM_RAISE_INTERNAL=1``).

    The test suite sets it so otelstream's own bugs fail tests instead of being logged;
    tests of the fallback unset it.
    """
    return os.environ.get("OTELSTREAM_RAISE_INTERNAL", "") == "1"


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
        with _logged_lock:
            first = self.what not in _logged
            _logged.add(self.what)
        if first:
            logger.exception("otelstream failed while %s; the application is unaffected", self.what)
        else:
            logger.debug("otelstream failed again while %s", self.what, exc_info=exc)
        return True

    def __call__(self, func: Callable[P, R]) -> Callable[P, R | None]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
            with self:
                return func(*args, **kwargs)
            return None

        return wrapper
