"""Progress signals: ``custom`` chunks in the shape otelstream turns into progress metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from otelstream.engine.runtime import current_task_context, get_stream_writer

__all__ = ["WriterSource", "progress_chunk", "register_writer_source", "unregister_writer_source", "write_progress"]

WriterSource = Callable[[], "Callable[[Any], None] | None"]
"""Returns the stream writer of the node of another engine running here, or None."""

# other engines' nodes (an instrumented LangGraph's) install themselves here: the engine
# cannot import the integrations above it. A tuple, replaced whole, for readers on node threads
_SOURCES: tuple[WriterSource, ...] = ()


def register_writer_source(source: WriterSource) -> None:
    """Let :func:`write_progress` outside otelstream's nodes write through ``source``'s writer."""
    global _SOURCES
    if source not in _SOURCES:
        _SOURCES = (*_SOURCES, source)


def unregister_writer_source(source: WriterSource) -> None:
    """Stop consulting ``source``."""
    global _SOURCES
    _SOURCES = tuple(s for s in _SOURCES if s != source)


def progress_chunk(
    done: float, total: float | None = None, *, unit: str | None = None, message: str | None = None
) -> dict[str, Any]:
    """Return a progress signal: ``{"progress": done, "total": total, "unit": unit, "message": message}``.

    Keys left as None are omitted.

    Raises:
        TypeError: ``done`` or ``total`` is not a number.
        ValueError: ``done`` or ``total`` is negative.
    """
    for name, value in (("done", done), ("total", total)):
        if value is None and name == "total":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"progress {name} must be a number, got {type(value).__name__}")
        if value < 0:
            raise ValueError(f"progress {name} must not be negative, got {value}")
    chunk: dict[str, Any] = {"progress": done}
    if total is not None:
        chunk["total"] = total
    if unit is not None:
        chunk["unit"] = unit
    if message is not None:
        chunk["message"] = message
    return chunk


def write_progress(
    done: float, total: float | None = None, *, unit: str | None = None, message: str | None = None
) -> None:
    """Write a progress signal through the current node's stream writer.

    Inside a node of an instrumented LangGraph graph it writes through LangGraph's writer.

    Example:
        >>> def fetch(state):  # doctest: +SKIP
        ...     for page in range(10):
        ...         write_progress((page + 1) * 10, 100, unit="records",
        ...                        message=f"Fetched {(page + 1) * 10}/100 records")

    Raises:
        RuntimeError: called outside a running node.
        TypeError: ``done`` or ``total`` is not a number.
        ValueError: ``done`` or ``total`` is negative.
    """
    chunk = progress_chunk(done, total, unit=unit, message=message)
    if current_task_context() is None:
        for source in _SOURCES:
            writer = source()
            if writer is not None:
                writer(chunk)
                return
    get_stream_writer()(chunk)
