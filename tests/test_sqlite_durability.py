"""SqliteSaver: a process killed mid-run leaves a thread that resumes with nothing lost.

A real subprocess streams a graph on a SQLite thread and is SIGKILLed while one of two
parallel nodes runs, after its sibling's writes were committed. This process then
reopens the database and resumes the thread: the completed supersteps are not run again,
the finished sibling's writes are reused, only the killed node runs again.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import otelstream
from tests.durable_worker import build

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")


def _wait_for(condition: object, what: str, timeout: float = 30.0) -> None:
    # a bounded poll, kept: the condition is the state of another process (its log file,
    # its committed database rows), which can signal nothing to this one
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _fast_write_committed(db: Path) -> bool:
    # read the database as another process would: only committed rows are visible
    if not db.exists():
        return False
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        try:
            # writes kept against the latest checkpoint: the superstep in progress (fast, slow)
            rows = conn.execute(
                "SELECT count(*) FROM otelstream_writes WHERE channel = 'log' AND checkpoint_id = "
                "(SELECT max(checkpoint_id) FROM otelstream_checkpoints WHERE checkpoint_ns = '')"
            ).fetchone()
        except sqlite3.OperationalError:
            return False
    return bool(rows and rows[0] >= 1)


def test_a_killed_run_resumes_from_its_last_committed_superstep(tmp_path: Path) -> None:
    db, ran = tmp_path / "threads.db", tmp_path / "ran.txt"
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.durable_worker", str(db), "t-kill", str(ran)],
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        _wait_for(lambda: ran.exists() and " slow\n" in ran.read_text(), "the slow node to start")
        _wait_for(lambda: _fast_write_committed(db), "the fast node's writes to be committed")
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    assert worker.returncode == -signal.SIGKILL

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    thread = {"configurable": {"thread_id": "t-kill"}}
    with otelstream.SqliteSaver(db) as saver:
        graph = build(saver, ran, block=False)
        state = graph.get_state(thread)
        assert state.values == {"log": ["first", "second", "fast"]}  # the sibling's writes, kept
        assert state.next == ("slow",)
        chunks = list(graph.stream(None, thread, stream_mode="updates"))
        final = graph.get_state(thread)

    assert chunks == [
        {"fast": {"log": ["fast"]}, "__metadata__": {"cached": True}},
        {"slow": {"log": ["slow"]}},
        {"last": {"log": ["last"]}},
    ]
    assert final.values == {"log": ["first", "second", "fast", "slow", "last"]}
    assert final.next == ()
    runs = [line.split() for line in ran.read_text().splitlines()]
    killed_pid = str(worker.pid)
    killed_ran = [name for pid, name in runs if pid == killed_pid]
    # fast and slow start in parallel: either may log first
    assert killed_ran[:2] == ["first", "second"] and sorted(killed_ran[2:]) == ["fast", "slow"]
    # after the restart only the killed node and what follows it ran
    assert [name for pid, name in runs if pid != killed_pid] == ["slow", "last"]


def test_a_database_that_is_not_sqlite_is_refused_clearly(tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-db.db"
    bogus.write_bytes(b"this is not a database" * 100)
    with pytest.raises(otelstream.CheckpointError, match="not-a-db.db"):
        otelstream.SqliteSaver(bogus)


def test_threads_are_isolated_and_deletable(tmp_path: Path) -> None:
    with otelstream.SqliteSaver(tmp_path / "t.db") as saver:
        graph = build(saver, tmp_path / "ran.txt", block=False)
        for thread_id in ("a", "b"):
            list(graph.stream({"log": []}, {"configurable": {"thread_id": thread_id}}))
        saver.delete_thread("a")
        assert graph.get_state({"configurable": {"thread_id": "a"}}).values == {}
        assert graph.get_state({"configurable": {"thread_id": "b"}}).values["log"][-1] == "last"
        history = list(graph.get_state_history({"configurable": {"thread_id": "b"}}, limit=2))
        assert [h.metadata["step"] for h in history if h.metadata] == [4, 3]  # newest first
