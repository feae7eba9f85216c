"""Exporting stream records without losing them silently.

The SDK's ``BatchLogRecordProcessor`` evicts records when its queue (2,048) is full and says
so in one deduplicated warning: a burst of 100,000 chunks would lose most of them. The
:class:`BackpressureLogRecordProcessor` that otelstream's own providers use instead makes the
emitting thread wait for room while the exporter keeps up, so a burst reaches the exporter
whole, and drops — counted per run and mode in the :data:`DROPS` ledger — only when the
exporter is failing or stalled, so a dead endpoint never slows the application down.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry import metrics
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

from otelstream.telemetry import semconv
from otelstream.telemetry._safe import log_internal_error
from otelstream.telemetry._sdk import suppressed

__all__ = ["DROPS", "PRODUCERS_WAITING", "BackpressureLogRecordProcessor", "DropLedger"]

logger = logging.getLogger("otelstream")


class _Waiting:
    """How many application threads wait for an export queue to make room (any processor)."""

    __slots__ = ("_count", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def add(self, delta: int) -> None:
        with self._lock:
            self._count += delta

    def __bool__(self) -> bool:
        return self._count > 0  # a plain read: a stale answer only costs one yield


PRODUCERS_WAITING = _Waiting()
"""Truthy while some producer waits for the exporters: encoders then need not yield to it."""


class DropLedger:
    """Counts stream records lost before export, per active run and mode. Thread-safe.

    Runs are opened when they start and taken (closed) when they end, so the ledger holds
    only active runs; a loss reported after its run ended (a late export failure) is counted
    by the ``otelstream.stream.dropped`` metric only.
    """

    def __init__(self) -> None:
        """Create an empty ledger."""
        self._lock = threading.Lock()
        self._counts: dict[str, collections.Counter[str]] = {}
        self._metric: Any = None

    def open(self, run_id: str) -> None:
        """Start counting for ``run_id``."""
        with self._lock:
            self._counts.setdefault(run_id, collections.Counter())

    def record(self, record: ReadWriteLogRecord | Any) -> None:
        """Count one lost record (by its run id and mode, when it is otelstream's)."""
        log_record = getattr(record, "log_record", None)
        name = getattr(log_record, "event_name", None) or ""
        attributes = getattr(log_record, "attributes", None) or {}
        mode = name[len(semconv.EVENT_PREFIX) :] if name.startswith(semconv.EVENT_PREFIX) else "other"
        run_id = attributes.get(semconv.RUN_ID)
        with self._lock:
            counts = self._counts.get(str(run_id)) if run_id is not None else None
            if counts is not None:
                counts[mode] += 1
        self._count_metric(mode)

    def use_meter(self, meter: Any) -> None:
        """Count losses on ``meter`` (the one otelstream records its other metrics on)."""
        self._metric = meter.create_counter(
            semconv.METRIC_DROPPED, unit="{record}", description="Stream records lost before export"
        )

    def _count_metric(self, mode: str) -> None:
        if self._metric is None:
            self.use_meter(metrics.get_meter(semconv.INSTRUMENTATION_SCOPE))
        self._metric.add(1, {semconv.MODE: mode})

    def take(self, run_id: str) -> dict[str, int]:
        """Stop counting for ``run_id``; return its counts ``{mode: dropped}``."""
        with self._lock:
            return dict(self._counts.pop(run_id, {}))


DROPS = DropLedger()
"""Records otelstream's exporting processors could not export, per run and mode."""


class BackpressureLogRecordProcessor(LogRecordProcessor):
    """Batches records to an exporter; slows the producer down instead of dropping.

    Contract: ``on_emit`` runs on the application's thread and never raises. When the queue
    is full it waits for room as long as the exporter is making progress (the last export
    succeeded and the current one has run less than ``stall_millis``); otherwise it drops the
    record, counts it in :data:`DROPS` and logs one warning per stall. Export happens on one
    worker thread, with instrumentation suppressed.
    """

    def __init__(
        self,
        exporter: LogRecordExporter,
        *,
        max_queue_size: int = 2048,
        max_export_batch_size: int = 512,
        schedule_delay_millis: float = 1000,
        stall_millis: float = 2000,
        ledger: DropLedger = DROPS,
    ) -> None:
        """Start the worker thread exporting to ``exporter``.

        Raises:
            ValueError: a size or delay is not positive, or the batch exceeds the queue.
        """
        if max_queue_size <= 0 or max_export_batch_size <= 0 or schedule_delay_millis <= 0:
            raise ValueError("queue size, batch size and schedule delay must be positive")
        if max_export_batch_size > max_queue_size:
            raise ValueError("max_export_batch_size must not exceed max_queue_size")
        self._exporter = exporter
        self._max_queue = max_queue_size
        self._batch = max_export_batch_size
        self._delay = schedule_delay_millis / 1000
        self._stall = stall_millis / 1000
        self._ledger = ledger
        self._queue: collections.deque[ReadWriteLogRecord] = collections.deque()
        self._cond = threading.Condition()
        self._shutdown = False
        self._healthy = True
        self._export_started: float | None = None
        self._in_flight = 0
        self._in_flight_batch: Sequence[ReadWriteLogRecord] = ()
        self._abandoned = False
        self._flush_requested = 0
        self._warned = False
        self.dropped = 0
        self._worker = threading.Thread(target=self._run, name="otelstream-export", daemon=True)
        self._worker.start()

    # --- producer side --------------------------------------------------------------------

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Queue ``log_record``; wait for room while the exporter keeps up."""
        try:
            with self._cond:
                while len(self._queue) >= self._max_queue and not self._shutdown:
                    if not self._making_progress():
                        self._drop(log_record)
                        return
                    self._cond.notify_all()
                    PRODUCERS_WAITING.add(1)
                    try:
                        self._cond.wait(0.05)
                    finally:
                        PRODUCERS_WAITING.add(-1)
                if self._shutdown:
                    self._drop(log_record)
                    return
                self._queue.append(log_record)
                if len(self._queue) >= self._batch:
                    self._cond.notify_all()
        except Exception as exc:  # never break the application
            log_internal_error("queueing a record for export", exc)

    def _making_progress(self) -> bool:
        if not self._healthy:
            return False
        started = self._export_started
        return started is None or time.monotonic() - started < self._stall

    def _drop(self, log_record: ReadWriteLogRecord) -> None:
        self.dropped += 1
        self._ledger.record(log_record)
        if not self._warned:
            self._warned = True
            with suppressed():
                logger.warning(
                    "otelstream: the exporter is failing or stalled; stream records are being dropped "
                    "(counted per run on the run span and the otelstream.run.end record)"
                )

    # --- worker side ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                deadline = time.monotonic() + self._delay
                while not self._shutdown and not self._flush_requested and len(self._queue) < self._batch:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                if self._shutdown and not self._queue:
                    return
                batch = [self._queue.popleft() for _ in range(min(self._batch, len(self._queue)))]
                self._in_flight = len(batch)
                self._in_flight_batch = batch
                self._export_started = time.monotonic() if batch else None
                self._cond.notify_all()
            if batch:
                self._export(batch)
            with self._cond:
                self._in_flight = 0
                self._in_flight_batch = ()
                self._export_started = None
                if not self._queue and self._flush_requested:
                    self._flush_requested = 0
                self._cond.notify_all()

    def _export(self, batch: Sequence[ReadWriteLogRecord]) -> None:
        # suppressed as the SDK's processors export: an instrumented HTTP client records no
        # span of otelstream's own posts
        with suppressed():
            try:
                unsent = self._send(batch)
            except Exception as exc:
                log_internal_error("exporting stream records", exc)
                unsent = list(batch)
        with self._cond:
            counted = self._abandoned  # abandon() already counted this batch as dropped
        if not counted:
            for record in unsent:
                self._ledger.record(record)
            self.dropped += len(unsent)
        # one record the collector refuses does not make the exporter unhealthy
        ok = len(unsent) < len(batch)
        with self._cond:
            self._healthy = ok
            if ok:
                self._warned = False

    def _send(self, batch: Sequence[ReadWriteLogRecord]) -> Sequence[Any]:
        # otelstream's OTLP exporter says which records it could not send (it splits a batch
        # the collector refuses as too large); any other exporter succeeds or fails whole
        export_unsent = getattr(self._exporter, "export_unsent", None)
        if export_unsent is not None:
            unsent: Sequence[Any] = export_unsent(batch)
            return unsent
        result = self._exporter.export(batch)  # type: ignore[arg-type]
        return () if result is LogRecordExportResult.SUCCESS else batch

    # --- lifecycle ------------------------------------------------------------------------

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export everything queued; return False if ``timeout_millis`` passed first."""
        deadline = time.monotonic() + timeout_millis / 1000
        with self._cond:
            self._flush_requested = 1
            self._cond.notify_all()
            while self._queue or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._worker.is_alive():
                    return False
                self._flush_requested = 1
                self._cond.notify_all()
                self._cond.wait(min(remaining, 0.05))
        return True

    def pending(self) -> int:
        """Return how many records are queued or being exported."""
        with self._cond:
            return len(self._queue) + self._in_flight

    def abandon(self) -> int:
        """Give up on what is queued (counted as dropped) and stop the exporter's retries.

        For a shutdown whose deadline passed: the worker thread may still be waiting on the
        collector; it stops at its next chance (it is a daemon thread). Returns how many
        records were not exported.
        """
        with self._cond:
            self._shutdown = True
            self._abandoned = True
            # the batch being exported is counted too: its export may still be retrying
            left = [*self._in_flight_batch, *self._queue]
            self._queue.clear()
            self._cond.notify_all()
        for record in left:
            self._ledger.record(record)
        unsent = len(left)
        self.dropped += unsent
        try:
            self._exporter.shutdown()  # type: ignore[no-untyped-call] # interrupts the SDK exporter's retries
        except Exception as exc:
            log_internal_error("stopping an exporter", exc)
        return unsent

    def shutdown(self) -> None:
        """Export what is queued (for up to 30 seconds), stop the worker, shut the exporter down."""
        self.force_flush(30000)
        with self._cond:
            self._shutdown = True
            self._cond.notify_all()
        self._worker.join(timeout=30)
        self._exporter.shutdown()  # type: ignore[no-untyped-call] # unannotated in the SDK
