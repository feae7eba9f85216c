"""Plain LangGraph against instrumented LangGraph, in the same test run.

A run is collected once on plain LangGraph, then again with
:class:`~otelstream.integrations.langgraph.LangGraphInstrumentor` instrumented (and
uninstrumented right after, so the rest of the suite keeps its oracle); the normalised
chunks and errors must be identical (``tests/differential.py`` normalises ids, timestamps
and exceptions). Each instrumented run must also have gone through the pipeline: every
chunk it yielded had a record, or the comparison would prove nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter

from otelstream.integrations.langgraph import LangGraphInstrumentor, _internals
from tests.differential import Result, _diff, normalize

# both sides run LangGraph, whose parallel tasks may finish in either order on a loaded machine:
# a mismatch is compared once more (TODO(#16): order those graphs with FinishOrder instead)
ATTEMPTS = 2

__all__ = ["LANGGRAPH_VERSION", "VERSIONS", "acompare", "compare", "instrumented", "needs", "stream_records"]

LANGGRAPH_VERSION = _internals._release(_internals.installed_version() or "0")
"""The installed LangGraph's release, e.g. ``(1, 2, 22)``: the suite runs on 1.0, 1.1 and 1.2."""


def needs(release: tuple[int, ...], feature: str) -> pytest.MarkDecorator:
    """Skip a test on LangGraph older than ``release``, which lacks ``feature``."""
    return pytest.mark.skipif(LANGGRAPH_VERSION < release, reason=f"{feature} is new in LangGraph {release}")


VERSIONS = ["v1", pytest.param("v2", marks=needs((1, 1), 'stream(version="v2")'))]
"""``version=`` values whose v2 shape a test asserts (LangGraph 1.0 ignores the argument)."""


@contextlib.contextmanager
def instrumented(export_modes: Sequence[str] | None = None, **kwargs: Any) -> Iterator[LangGraphInstrumentor]:
    """Instrument LangGraph for the block; uninstrument after it, whatever happens."""
    instrumentor = LangGraphInstrumentor()
    instrumentor.instrument(export_modes=export_modes, **kwargs)
    try:
        yield instrumentor
    finally:
        instrumentor.uninstrument()


def stream_records(logs: InMemoryLogRecordExporter) -> list[Any]:
    """Return the chunk records (not run-end ones) the exporter holds."""
    return [
        r.log_record
        for r in logs.get_finished_logs()
        if (r.log_record.event_name or "").startswith("otelstream.") and r.log_record.event_name != "otelstream.run.end"
    ]


def _check(
    plain: Result, ours: Result, records: int, *, numbered: bool, min_records: int | None
) -> tuple[list[Any], Any]:
    theirs_n = normalize(plain, numbered=numbered)
    ours_n = normalize(ours, numbered=numbered)
    assert ours_n[1] == theirs_n[1], f"errors differ:\n instrumented: {ours_n[1]!r}\n plain:        {theirs_n[1]!r}"
    assert ours_n[0] == theirs_n[0], _diff(ours_n[0], theirs_n[0]).replace(
        "otelstream | langgraph", "instrumented | plain"
    )
    expected = len(ours.chunks) if min_records is None else min_records
    assert records >= expected, f"{expected} records expected but only {records} emitted"
    return ours_n


def compare(
    collect: Callable[[], Result],
    logs: InMemoryLogRecordExporter,
    *,
    export_modes: Sequence[str] | None = None,
    numbered: bool = True,
    min_records: int | None = None,
) -> tuple[list[Any], Any]:
    """Collect on plain and instrumented LangGraph; assert the same; return the normalised result.

    ``min_records``: how many chunk records the instrumented run must have emitted at
    least (default: one per chunk collected, for a collection of one stream's chunks).
    """
    for attempt in range(ATTEMPTS):
        plain = collect()
        logs.clear()
        with instrumented(export_modes):
            ours = collect()
        try:
            return _check(plain, ours, len(stream_records(logs)), numbered=numbered, min_records=min_records)
        except AssertionError:
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def acompare(
    collect: Callable[[], Awaitable[Result]],
    logs: InMemoryLogRecordExporter,
    *,
    export_modes: Sequence[str] | None = None,
    numbered: bool = True,
    min_records: int | None = None,
) -> tuple[list[Any], Any]:
    """Like :func:`compare`, for a coroutine collecting an async run."""
    for attempt in range(ATTEMPTS):
        plain = await collect()
        logs.clear()
        with instrumented(export_modes):
            ours = await collect()
        try:
            return _check(plain, ours, len(stream_records(logs)), numbered=numbered, min_records=min_records)
        except AssertionError:
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")
