"""The gateway's run store: release in seq order, gaps after the reorder window, dedupe, conflicts, eviction."""

from __future__ import annotations

from otelstream._otlp.records import Carried, Gap, RunEnd, Telemetry
from otelstream.serve import RunStore, StoreLimits

WINDOW = 5.0


def _chunk(seq: int, payload: str = '{"x":1}', run_id: str = "r", *, truncated: bool = False) -> Carried:
    return Carried(run_id, seq, "custom", (), "g", "n", payload, truncated, None, 1_000 + seq)


def _batch(*chunks: Carried, end: int | None = None, run_id: str = "r") -> Telemetry:
    telemetry = Telemetry(chunks=list(chunks))
    if end is not None:
        telemetry.ends[run_id] = RunEnd(run_id, "completed", end, ("custom",), True, False)
    return telemetry


def _store(**limits: float) -> RunStore:
    return RunStore(StoreLimits(reorder_window_s=WINDOW, **limits))  # type: ignore[arg-type]


def _seqs(store: RunStore, run_id: str = "r") -> list[int]:
    return [e.seq for e in store.runs[run_id].entries if e.gap is None]


def test_chunks_are_released_in_seq_order_whatever_the_arrival_order() -> None:
    store = _store()
    store.ingest(_batch(_chunk(2), _chunk(0)), [], 0.0, 0)
    assert _seqs(store) == [0]  # 1 is missing: 2 waits
    store.ingest(_batch(_chunk(1), end=3), [], 1.0, 0)
    assert _seqs(store) == [0, 1, 2]
    run = store.runs["r"]
    assert run.finished and run.gaps == [] and run.summary()["outcome"] == "completed"


def test_a_missing_chunk_becomes_a_gap_after_the_window_and_a_late_copy_is_not_taken_back() -> None:
    store = _store()
    store.ingest(_batch(_chunk(0), _chunk(3)), [], 0.0, 0)
    store.tick(WINDOW - 0.1)
    assert _seqs(store) == [0]
    store.tick(WINDOW + 0.1)
    run = store.runs["r"]
    assert _seqs(store) == [0, 3] and run.gaps == [Gap(1, 2)]
    assert run.entries[1].gap == Gap(1, 2) and run.entries[1].seq == 2  # resuming after it skips it
    store.ingest(_batch(_chunk(1)), [], 6.0, 0)
    assert _seqs(store) == [0, 3] and run.late == 1


def test_missing_chunks_at_the_end_are_a_gap_once_the_end_is_known() -> None:
    store = _store()
    store.ingest(_batch(_chunk(0), end=3), [], 0.0, 0)
    assert not store.runs["r"].finished
    store.tick(WINDOW + 1)
    run = store.runs["r"]
    assert run.finished and run.gaps == [Gap(1, 2)]


def test_the_first_chunks_missing_a_restarted_gateway_reports_them() -> None:
    store = _store()
    store.ingest(_batch(_chunk(40), _chunk(41)), [], 0.0, 0)
    store.tick(WINDOW + 1)
    assert store.runs["r"].gaps == [Gap(0, 40)] and _seqs(store) == [40, 41]


def test_duplicates_are_dropped_and_conflicting_copies_are_gaps() -> None:
    store = _store()
    store.ingest(_batch(_chunk(0), _chunk(0), _chunk(2), _chunk(2, '{"x":2}')), [], 0.0, 0)
    store.ingest(_batch(_chunk(0, '{"x":9}'), _chunk(1), end=3), [], 1.0, 0)
    run = store.runs["r"]
    assert run.duplicates == 1 and run.conflicts == 2
    # 0 was served before its conflicting copy came: reported; 2 never served: a gap instead
    assert sorted(run.gaps, key=lambda g: g.first_seq) == [Gap(0, 1), Gap(2, 1)]
    assert _seqs(store) == [0, 1] and run.finished


def test_truncated_payloads_are_served_as_markers() -> None:
    store = _store()
    store.ingest(_batch(_chunk(0, '{"x":', truncated=True), end=1), [], 0.0, 0)
    entry = store.runs["r"].entries[0]
    assert entry.data.startswith('{"$t":"otelstream.truncated"') and store.runs["r"].truncated == 1


def test_runs_are_evicted_by_age_and_by_size_and_the_evictions_counted() -> None:
    store = _store(retention_s=100.0, max_bytes=4_000)
    store.ingest(_batch(_chunk(0, run_id="old"), end=1, run_id="old"), [], 0.0, 0)
    store.ingest(_batch(_chunk(0, run_id="live"), run_id="live"), [], 50.0, 0)
    store.tick(101.0)
    assert list(store.runs) == ["live"] and store.evictions["age"] == 1
    notified: list[str | None] = []
    live = store.runs["live"]
    live.listeners.add(lambda: notified.append(live.evicted))
    big = '"' + "x" * 5_000 + '"'
    store.ingest(_batch(_chunk(1, big, run_id="live"), run_id="live"), [], 102.0, 0)
    assert "live" not in store.runs and store.evictions["size"] == 1 and store.bytes == 0
    assert notified[-1] == "size"  # its consumers are told, and cut
    assert store.stats()["evicted"] == {"total": 2, "age": 1, "size": 1}


def test_ended_runs_are_evicted_before_live_ones() -> None:
    store = _store(max_runs=2)
    store.ingest(_batch(_chunk(0, run_id="a"), run_id="a"), [], 0.0, 0)
    store.ingest(_batch(_chunk(0, run_id="b"), end=1, run_id="b"), [], 1.0, 0)
    store.ingest(_batch(_chunk(0, run_id="c"), run_id="c"), [], 2.0, 0)
    assert sorted(store.runs) == ["a", "c"] and store.evictions["count"] == 1
