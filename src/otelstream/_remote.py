"""``remote_stream`` / ``aremote_stream``: a run's stream, read live from an ``otelstream serve`` gateway.

They yield what the run's in-process ``stream()`` yielded with the same ``stream_mode``,
``subgraphs`` and ``version``, in the same shapes, decoded from otelstream's payload encoding
(messages are message objects again, tuples tuples) — wherever the run executes::

    for mode, chunk in otelstream.remote_stream("http://127.0.0.1:4320", run_id,
                                                stream_mode=["updates", "custom"]):
        print(mode, chunk)

A dropped connection is re-established with ``Last-Event-ID`` (the last seq received), so
nothing is lost or repeated. What the gateway never received is not invented: the stream's
``gaps`` list it (``strict=True`` raises instead), and ``outcome`` is the run's once it ended.
Needs httpx (the ``serve`` extra).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import urllib.parse
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from typing import Any

from otelstream._otlp.records import Gap, TruncatedPayload
from otelstream.consumer.channel import Chunk
from otelstream.consumer.output import make_formatter, normalize_modes
from otelstream.errors import IncompleteStreamError, RemoteStreamError
from otelstream.telemetry.codec import DecodeError, decode

__all__ = ["AsyncRemoteStream", "RemoteStream", "aremote_stream", "remote_stream"]

logger = logging.getLogger("otelstream.remote")

_TRUNCATED = '{"$t":"otelstream.truncated"'
_RETRYABLE = frozenset((429, 502, 503, 504))
_BACKOFF_S = (0.25, 5.0)


class _SSE:
    """An SSE parser (WHATWG rules: ``event``/``data``/``id`` fields, comments, blank-line dispatch)."""

    __slots__ = ("data", "event", "id")

    def __init__(self) -> None:
        self.event = ""
        self.data: list[str] = []
        self.id: str | None = None

    def feed(self, line: str) -> tuple[str, str, str | None] | None:
        """Take one line (without its end); return ``(event, data, id)`` when one is complete."""
        if not line:
            if not self.data and not self.event:
                return None
            out = (self.event or "message", "\n".join(self.data), self.id)
            self.event, self.data = "", []
            return out
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self.event = value
        elif name == "data":
            self.data.append(value)
        elif name == "id" and "\0" not in value:
            self.id = value
        return None


class _Session:
    """What both iterators share: the request, and turning events into chunks."""

    def __init__(
        self,
        url: str,
        run_id: str,
        stream_mode: Any,
        subgraphs: bool,
        version: str,
        token: str | None,
        strict: bool,
        reconnects: int,
        last_event_id: int | None,
    ) -> None:
        _load_message_classes()
        modes = normalize_modes(stream_mode, "values") if stream_mode is not None else []
        # without stream_mode: every mode the run streamed, as (mode, chunk) pairs
        self.formatter = make_formatter(stream_mode if stream_mode is not None else [], subgraphs, version)
        self.address = f"{url.rstrip('/')}/runs/{urllib.parse.quote(run_id, safe='')}/stream"
        self.params: list[tuple[str, str | int | float | bool | None]] = [("stream_mode", m) for m in modes]
        self.params.append(("subgraphs", "true" if subgraphs else "false"))
        self.token = token
        self.run_id = run_id
        self.strict = strict
        self.reconnects = reconnects
        self.last_id = last_event_id
        self.gaps: list[Gap] = []
        self.truncated: list[int] = []
        self.end: dict[str, Any] | None = None
        self.failures = 0
        self._before = -1

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.last_id is not None:
            headers["Last-Event-ID"] = str(self.last_id)
        return headers

    def check_status(self, status: int, body: str) -> bool:
        """Whether to read this response (True), retry (False); raise when neither helps."""
        if status == 200:
            return True
        if status in _RETRYABLE:
            return False
        detail = body[:300]
        if status == 404:
            raise RemoteStreamError(f"the gateway does not hold run {self.run_id}: {detail}")
        raise RemoteStreamError(f"the gateway answered {status} for {self.address}: {detail}")

    def take(self, event: str, data: str, event_id: str | None) -> tuple[bool, Any]:
        """Handle one event: ``(True, chunk)`` to yield; ``(False, None)`` otherwise."""
        self.failures = 0
        self._before = self.last_id if self.last_id is not None else -1
        if event_id is not None and event_id.lstrip("-").isdigit():
            self.last_id = int(event_id)
        if event == "end":
            self.end = json.loads(data)
            # chunks that arrived twice with different content after this consumer had one copy
            for seq in self.end.get("conflicts", []):
                self._gap(Gap(int(seq), 1))
            return False, None
        if event == "gap":
            raw = json.loads(data)
            first, count = int(raw["first_seq"]), int(raw["count"])
            # a restarted gateway reports what it missed; this consumer may have had part of it
            received = self._before + 1
            if first + count > received:
                self._gap(Gap(max(first, received), first + count - max(first, received)))
            return False, None
        if event == "error":
            raise RemoteStreamError(f"the gateway cut the stream of run {self.run_id}: {data}")
        mode, *namespace = event.split("|")
        seq = self.last_id if self.last_id is not None else -1
        if data.startswith(_TRUNCATED):
            marker = json.loads(data)
            self.truncated.append(seq)
            if self.strict:
                raise IncompleteStreamError(f"chunk {seq} of run {self.run_id} was truncated in telemetry")
            payload: Any = TruncatedPayload(seq, marker.get("size"), str(marker.get("head", "")))
        else:
            try:
                payload = decode(data)
            except DecodeError as exc:
                raise RemoteStreamError(f"chunk {seq} of run {self.run_id}: {exc}") from None
        return True, self.formatter(Chunk(tuple(namespace), mode, payload))

    def _gap(self, gap: Gap) -> None:
        self.gaps.append(gap)
        logger.warning(
            "run %s: chunks %s..%s never reached the gateway", self.run_id, gap.first_seq, gap.first_seq + gap.count - 1
        )
        if self.strict:
            raise IncompleteStreamError(
                f"run {self.run_id}: chunks {gap.first_seq}..{gap.first_seq + gap.count - 1} are missing"
            )

    def retry_delay(self, why: str) -> float:
        """Count a failed attempt; the delay before the next, or raise when attempts are spent."""
        self.failures += 1
        if self.failures > self.reconnects:
            raise RemoteStreamError(
                f"stream of run {self.run_id} lost after {self.reconnects} reconnection attempts "
                f"(last seq received: {self.last_id}): {why}"
            )
        low, high = _BACKOFF_S
        return float(
            min(high, low * 2 ** (self.failures - 1)) * (1 + random.random() / 4)
        )  # jitter: clients of one gateway do not reconnect in step


class _Outcome:
    """What the stream says once it ended: the outcome, gaps, truncated chunks."""

    _session: _Session

    @property
    def gaps(self) -> list[Gap]:
        """Chunks the gateway never received, as replay reports them."""
        return self._session.gaps

    @property
    def truncated(self) -> list[int]:
        """Seqs of chunks whose payload the size cap cut (yielded as ``TruncatedPayload``)."""
        return self._session.truncated

    @property
    def outcome(self) -> str | None:
        """The run's outcome (``completed``, ``failed``, ``interrupted``...), once the stream ended."""
        return None if self._session.end is None else self._session.end.get("outcome")

    @property
    def complete(self) -> bool:
        """Whether the stream ended and every chunk the run emitted arrived whole."""
        end = self._session.end
        return end is not None and end.get("event_count") is not None and not self.gaps and not self.truncated


class RemoteStream(_Outcome):
    """The iterator :func:`remote_stream` returns."""

    def __init__(self, session: _Session, timeout: float) -> None:
        """Prepare the stream (use :func:`remote_stream`)."""
        self._session = session
        self._timeout = timeout
        self._iterator = self._run()

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return next(self._iterator)

    def close(self) -> None:
        """Stop reading and close the connection."""
        self._iterator.close()

    def _run(self) -> Generator[Any, None, None]:
        import httpx  # noqa: PLC0415 - an optional extra ('serve')

        session = self._session
        timeout = httpx.Timeout(self._timeout, connect=min(self._timeout, 10.0))
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            while session.end is None:
                why = "the stream closed before the run's end event"
                try:
                    with client.stream("GET", session.address, params=session.params, headers=session.headers()) as r:
                        body = "" if r.status_code == 200 else r.read().decode("utf-8", "replace")
                        if session.check_status(r.status_code, body):
                            parser = _SSE()
                            for line in r.iter_lines():
                                event = parser.feed(line)
                                if event is None:
                                    continue
                                ready, chunk = session.take(*event)
                                if ready:
                                    yield chunk
                                if session.end is not None:
                                    return
                        else:
                            why = f"the gateway answered {r.status_code}"
                except httpx.TransportError as exc:
                    why = f"{type(exc).__name__}: {exc}"
                time.sleep(session.retry_delay(why))


class AsyncRemoteStream(_Outcome):
    """The async iterator :func:`aremote_stream` returns."""

    def __init__(self, session: _Session, timeout: float) -> None:
        """Prepare the stream (use :func:`aremote_stream`)."""
        self._session = session
        self._timeout = timeout
        self._iterator = self._run()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        return await self._iterator.__anext__()

    async def aclose(self) -> None:
        """Stop reading and close the connection."""
        await self._iterator.aclose()

    async def _run(self) -> AsyncGenerator[Any, None]:
        import httpx  # noqa: PLC0415 - an optional extra ('serve')

        session = self._session
        timeout = httpx.Timeout(self._timeout, connect=min(self._timeout, 10.0))
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
            while session.end is None:
                why = "the stream closed before the run's end event"
                try:
                    async with client.stream(
                        "GET", session.address, params=session.params, headers=session.headers()
                    ) as r:
                        body = "" if r.status_code == 200 else (await r.aread()).decode("utf-8", "replace")
                        if session.check_status(r.status_code, body):
                            parser = _SSE()
                            async for line in r.aiter_lines():
                                event = parser.feed(line)
                                if event is None:
                                    continue
                                ready, chunk = session.take(*event)
                                if ready:
                                    yield chunk
                                if session.end is not None:
                                    return
                        else:
                            why = f"the gateway answered {r.status_code}"
                except httpx.TransportError as exc:
                    why = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(session.retry_delay(why))


def remote_stream(
    url: str,
    run_id: str,
    *,
    stream_mode: Any = None,
    subgraphs: bool = False,
    version: str = "v1",
    token: str | None = None,
    strict: bool = False,
    timeout: float = 60.0,
    reconnects: int = 5,
    last_event_id: int | None = None,
) -> RemoteStream:
    """Read a run's stream from an ``otelstream serve`` gateway, live, from its first chunk.

    Args:
        url: The gateway's base URL (``http://127.0.0.1:4320``).
        run_id: The run (``otelstream.run_id``; ``GET /runs`` lists them).
        stream_mode: As the run's ``stream()`` was given it: a mode (bare chunks) or a list
            (``(mode, chunk)`` pairs). None: every mode the run streamed, as pairs.
        subgraphs: As passed to ``stream()``: include subgraph chunks, with namespaces.
        version: ``"v1"`` or ``"v2"``, as passed to ``stream()`` (v2 ``values`` data is not
            coerced to a pydantic output schema: the gateway does not know the graph).
        token: The gateway's bearer token (``OTELSTREAM_SERVE_TOKEN``).
        strict: Raise :class:`IncompleteStreamError` at the first gap or truncated chunk.
        timeout: Seconds to wait for the gateway (connection, and silence on the stream;
            the gateway sends a keep-alive every 15 s).
        reconnects: Consecutive failed attempts to re-establish the stream before giving up.
        last_event_id: Resume strictly after this seq (a consumer restarted where it stopped).

    Returns:
        An iterator of chunks with ``gaps``, ``truncated``, ``outcome`` and ``complete``.

    Raises:
        InvalidStreamArgumentError: an unknown stream mode or version.
    """
    return RemoteStream(
        _Session(url, run_id, stream_mode, subgraphs, version, token, strict, reconnects, last_event_id), timeout
    )


def aremote_stream(
    url: str,
    run_id: str,
    *,
    stream_mode: Any = None,
    subgraphs: bool = False,
    version: str = "v1",
    token: str | None = None,
    strict: bool = False,
    timeout: float = 60.0,
    reconnects: int = 5,
    last_event_id: int | None = None,
) -> AsyncRemoteStream:
    """Read a run's stream from a gateway asynchronously: :func:`remote_stream` for ``async for``.

    Raises:
        InvalidStreamArgumentError: an unknown stream mode or version.
    """
    return AsyncRemoteStream(
        _Session(url, run_id, stream_mode, subgraphs, version, token, strict, reconnects, last_event_id), timeout
    )


def _load_message_classes() -> None:
    # payloads decode to message objects only if their classes are loaded (decoding never
    # imports); langchain_core.messages loads its submodules lazily, so name them
    try:
        import langchain_core.messages  # noqa: PLC0415 - an optional extra, loaded only to decode

        for name in ("AIMessage", "AIMessageChunk", "HumanMessage", "SystemMessage", "ToolMessage", "ToolMessageChunk"):
            getattr(langchain_core.messages, name, None)
    except ImportError:
        pass
