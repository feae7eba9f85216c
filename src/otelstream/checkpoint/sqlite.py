"""``SqliteSaver``: durable checkpoints in one SQLite file (standard-library ``sqlite3``).

Every checkpoint and every task's writes are committed in their own transaction, in WAL
mode with ``synchronous=FULL``: a process killed at any moment leaves the database at the
last committed superstep (plus the writes of tasks that finished after it), never half
written. Reopen the file and stream ``None`` (or a ``Command``) on the thread to continue.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from otelstream.checkpoint.base import (
    BaseCheckpointSaver,
    Checkpoint,
    CheckpointTuple,
    address_config,
    checkpoint_address,
    load_tuple,
    write_index,
)
from otelstream.checkpoint.serde import JsonSerializer, PickleSerializer, Serializer
from otelstream.errors import CheckpointError

__all__ = ["SqliteSaver"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS otelstream_checkpoints (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    parent_checkpoint_id TEXT,
    checkpoint BLOB NOT NULL,
    metadata BLOB NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
);
CREATE TABLE IF NOT EXISTS otelstream_writes (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    channel TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
);
"""


class SqliteSaver(BaseCheckpointSaver):
    """Keeps checkpoints in a SQLite database file; safe to share between threads.

    Use it as a context manager, or call :meth:`close`, to release the file::

        with SqliteSaver("threads.db") as saver:
            graph = builder.compile(checkpointer=saver)
    """

    def __init__(self, path: str | Path | sqlite3.Connection, *, serde: Serializer | None = None) -> None:
        """Open (creating if needed) the database at ``path``, or use a connection.

        Raises:
            CheckpointError: the file cannot be opened as a SQLite database.
        """
        self.serde: Serializer = serde or JsonSerializer()
        self._lock = threading.Lock()
        try:
            if isinstance(path, sqlite3.Connection):
                self._conn = path
                self._owned = False
            else:
                self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
                self._owned = True
            with self._lock:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=FULL")
                self._conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise CheckpointError(f"Cannot use {path!s} as a checkpoint database: {exc}") from exc

    def __enter__(self) -> SqliteSaver:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection (if this saver opened it)."""
        if self._owned:
            with self._lock:
                self._conn.close()

    def migrate_from_pickle(self) -> int:
        """Rewrite checkpoints written with pickle (otelstream 0.1's default) with this saver's serializer.

        Call it once on a store you trust: reading pickle runs code named in it. Blobs already
        in another format are left as they are. Everything is rewritten in one transaction.

        Returns:
            How many blobs were rewritten.

        Raises:
            CheckpointError: a pickled blob cannot be read or re-encoded (nothing is changed).
        """
        legacy = PickleSerializer()
        rewritten = 0
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                rows = self._conn.execute("SELECT rowid, checkpoint, metadata FROM otelstream_checkpoints").fetchall()
                for rowid, data, metadata in rows:
                    blobs = [self._from_pickle(legacy, blob) for blob in (data, metadata)]
                    if blobs != [data, metadata]:
                        self._conn.execute(
                            "UPDATE otelstream_checkpoints SET checkpoint = ?, metadata = ? WHERE rowid = ?",
                            (*blobs, rowid),
                        )
                        rewritten += sum(new is not old for new, old in zip(blobs, (data, metadata), strict=True))
                for rowid, value in self._conn.execute("SELECT rowid, value FROM otelstream_writes").fetchall():
                    blob = self._from_pickle(legacy, value)
                    if blob is not value:
                        self._conn.execute("UPDATE otelstream_writes SET value = ? WHERE rowid = ?", (blob, rowid))
                        rewritten += 1
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return rewritten

    def _from_pickle(self, legacy: PickleSerializer, blob: bytes) -> bytes:
        if bytes(blob[:1]) != b"\x80":  # every pickle of protocol 2 or later starts so
            return blob
        return self.serde.dumps(legacy.loads(bytes(blob)))

    def get_tuple(self, config: dict[str, Any]) -> CheckpointTuple | None:
        """Return the checkpoint ``config`` names, or the thread's latest; None if none."""
        thread_id, ns, checkpoint_id = checkpoint_address(config)
        query = (
            "SELECT checkpoint_id, parent_checkpoint_id, checkpoint, metadata FROM otelstream_checkpoints "
            "WHERE thread_id = ? AND checkpoint_ns = ?"
        )
        params: list[Any] = [thread_id, ns]
        if checkpoint_id is not None:
            query += " AND checkpoint_id = ?"
            params.append(checkpoint_id)
        query += " ORDER BY checkpoint_id DESC LIMIT 1"
        with self._lock:
            row = self._conn.execute(query, params).fetchone()
            if row is None:
                return None
            return self._tuple(thread_id, ns, row)

    def list(
        self, config: dict[str, Any], *, before: dict[str, Any] | None = None, limit: int | None = None
    ) -> Iterator[CheckpointTuple]:
        """Yield the thread's checkpoints in ``config``'s namespace, newest first."""
        thread_id, ns, _ = checkpoint_address(config)
        query = (
            "SELECT checkpoint_id, parent_checkpoint_id, checkpoint, metadata FROM otelstream_checkpoints "
            "WHERE thread_id = ? AND checkpoint_ns = ?"
        )
        params: list[Any] = [thread_id, ns]
        before_id = ((before or {}).get("configurable") or {}).get("checkpoint_id")
        if before_id is not None:
            query += " AND checkpoint_id < ?"
            params.append(before_id)
        query += " ORDER BY checkpoint_id DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(int(limit))
        with self._lock:
            rows = self._conn.execute(query, params).fetchall()
            tuples = [self._tuple(thread_id, ns, row) for row in rows]
        yield from tuples

    def put(self, config: dict[str, Any], checkpoint: Checkpoint, metadata: dict[str, Any]) -> dict[str, Any]:
        """Save ``checkpoint`` as the child of the one ``config`` names; return its config."""
        thread_id, ns, parent_id = checkpoint_address(config)
        row = (
            thread_id,
            ns,
            checkpoint["id"],
            parent_id,
            self.serde.dumps(checkpoint),
            self.serde.dumps(metadata),
        )
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO otelstream_checkpoints VALUES (?, ?, ?, ?, ?, ?)", row)
        return address_config(thread_id, ns, checkpoint["id"])

    def put_writes(self, config: dict[str, Any], writes: Sequence[tuple[str, Any]], task_id: str) -> None:
        """Save a task's writes as pending writes of the checkpoint ``config`` names (one transaction)."""
        thread_id, ns, checkpoint_id = checkpoint_address(config)
        if checkpoint_id is None:
            raise ValueError("put_writes needs the checkpoint_id the writes belong to")
        rows = []
        for position, (channel, value) in enumerate(writes):
            index = write_index(channel, position)
            rows.append((thread_id, ns, checkpoint_id, task_id, index, channel, self.serde.dumps(value), index < 0))
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for *key, channel, data, special in rows:
                    verb = "INSERT OR REPLACE" if special else "INSERT OR IGNORE"
                    self._conn.execute(
                        # ``verb`` is one of two fixed strings: nothing user-given is formatted in
                        f"{verb} INTO otelstream_writes VALUES (?, ?, ?, ?, ?, "
                        "(SELECT COALESCE(MAX(seq), 0) + 1 FROM otelstream_writes), ?, ?)",
                        (*key, channel, data),
                    )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def delete_thread(self, thread_id: str) -> None:
        """Forget every checkpoint and write of ``thread_id``."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("DELETE FROM otelstream_checkpoints WHERE thread_id = ?", (thread_id,))
            self._conn.execute("DELETE FROM otelstream_writes WHERE thread_id = ?", (thread_id,))
            self._conn.execute("COMMIT")

    def _tuple(self, thread_id: str, ns: str, row: tuple[Any, ...]) -> CheckpointTuple:
        checkpoint_id, parent_id, data, metadata = row
        writes = self._conn.execute(
            "SELECT task_id, channel, value FROM otelstream_writes "
            "WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ? ORDER BY seq",
            (thread_id, ns, checkpoint_id),
        ).fetchall()
        return load_tuple(self.serde, (thread_id, ns, checkpoint_id, parent_id), data, metadata, writes)
