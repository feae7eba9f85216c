"""otelstream's log record processor: routes each stream record to its run's channel.

It is added to every ``LoggerProvider`` otelstream emits through (the application's and
its own private one). ``on_emit`` runs synchronously inside ``Logger.emit`` on the thread
that wrote the chunk, so a chunk reaches its ``stream()`` iterator while the node that
wrote it is still running.
"""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord

from otelstream.consumer.channel import Chunk, RunChannel
from otelstream.telemetry import semconv
from otelstream.telemetry._safe import handle_internal_errors
from otelstream.telemetry.codec import decode

__all__ = ["MISSING", "StreamLogRecordProcessor", "StreamRouter", "route"]

_PREFIX_LEN = len(semconv.EVENT_PREFIX)
_MISSING: Any = object()
MISSING = _MISSING
"""Marks a record that carries no Python payload object."""


class StreamRouter:
    """Maps run ids to the channels of the ``stream()`` calls waiting for them."""

    __slots__ = ("_channels", "_lock")

    def __init__(self) -> None:
        """Create an empty router."""
        self._channels: dict[str, RunChannel] = {}
        self._lock = threading.Lock()

    def open(self, channel: RunChannel) -> None:
        """Start routing records of ``channel.run_id`` to ``channel``."""
        with self._lock:
            self._channels[channel.run_id] = channel

    def close(self, run_id: str) -> None:
        """Stop routing records of ``run_id``; later ones are ignored."""
        with self._lock:
            self._channels.pop(run_id, None)

    def get(self, run_id: Any) -> RunChannel | None:
        """Return the channel for ``run_id``, if a consumer is waiting."""
        return self._channels.get(run_id)  # dict reads are atomic: no lock on the hot path

    def __len__(self) -> int:
        return len(self._channels)


def route(router: StreamRouter, name: str, attributes: Any, payload: Any = _MISSING) -> None:
    """Put the chunk a record or span event named ``name`` carries into its run's channel.

    ``payload`` is the chunk's Python object when it travelled with the record; otherwise
    the JSON ``otelstream.payload`` attribute is decoded. Anything that is not a chunk of a
    run with a waiting consumer is ignored.
    """
    if attributes is None:
        return
    channel = router.get(attributes.get(semconv.RUN_ID))
    if channel is None:
        return
    seq = attributes.get(semconv.SEQ)
    if not isinstance(seq, int):
        return
    if payload is _MISSING:
        payload = decode(str(attributes.get(semconv.PAYLOAD)))
    namespace = attributes.get(semconv.NAMESPACE) or ""
    channel.put(
        seq,
        Chunk(tuple(str(namespace).split("|")) if namespace else (), name[_PREFIX_LEN:], payload),
    )


class StreamLogRecordProcessor(LogRecordProcessor):
    """Feeds ``stream()`` iterators from ``otelstream.<mode>`` log records.

    Contract: called on the emitting thread; never raises (a failure is logged once and the
    application carries on). It may block: when the run's channel is full and the emitting
    thread is not the consumer's, it waits until the consumer drains the channel or closes
    the stream (backpressure, see :class:`~otelstream.consumer.channel.RunChannel`); on the
    consumer's own thread it never waits. Records that are not otelstream's, or whose run
    has no waiting consumer, are ignored without waiting.
    """

    def __init__(self, router: StreamRouter) -> None:
        """Route through ``router``."""
        self._router = router

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Hand one stream record to its run's channel."""
        with handle_internal_errors("routing a stream record"):
            record = log_record.log_record
            name = record.event_name
            if not name or not name.startswith(semconv.EVENT_PREFIX):
                return
            payload = getattr(record, "otelstream_payload", _MISSING)
            if payload is not _MISSING:
                # the exporters do not need the object: let it go once handed over
                record.otelstream_payload = None  # type: ignore[attr-defined]
            route(self._router, name, record.attributes, payload)

    def shutdown(self) -> None:
        """Nothing to release: channels close with their runs."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered here; always True."""
        return True
