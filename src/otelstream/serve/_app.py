"""The gateway's HTTP side: OTLP in, runs and their live streams out, the web page.

Routes (all but the page and its static files behind the bearer token, when one is set):

==========================================  ===============================================
``POST /v1/logs``, ``POST /v1/traces``      OTLP/HTTP, protobuf or JSON, gzip or not
``GET /runs``                               the runs held, newest first (``graph``, ``thread_id``, ``status``)
``GET /runs/{run_id}``                      one run, with its node timeline
``GET /runs/{run_id}/stream``               its stream as SSE (otelstream's flavour)
``GET /threads/{tid}/runs/{rid}/stream``    LangGraph Server's join endpoint
``GET /threads/{tid}/runs/{rid}``           LangGraph Server's run status
``POST`` run-creating LangGraph paths       405: the gateway observes runs, it does not run graphs
``GET /``                                   the web page (``/static/...``)
==========================================  ===============================================
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Literal

from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from otelstream._otlp.records import STREAM_MODE_NAMES
from otelstream.serve._frames import end_data, frame, gap_data, langgraph_status, plain
from otelstream.serve._ingest import JSON, Batch, OTLPError, decode_http, error_body, success_body
from otelstream.serve._options import GatewayOptions
from otelstream.serve._store import Entry, Run, RunStore

__all__ = ["GatewayOptions", "create_app"]

logger = logging.getLogger("otelstream.serve")

_STATIC = ("otelstream.serve", "static")
_BATCH = 512
"""Frames sent in one write: a consumer catching up gets them in few, large writes."""
_TICK_S = 0.25
_RUNS_LIMIT = 1000
_NOT_RUNNING = (
    "otelstream serve observes runs that execute elsewhere (their telemetry is its input); it does "
    "not create or execute runs. Start the run in your application and join its stream with "
    "GET /threads/{thread_id}/runs/{run_id}/stream."
)

Flavour = Literal["otelstream", "langgraph"]


class _Gateway:
    """The state the routes share: the store and the options."""

    def __init__(self, options: GatewayOptions, store: RunStore) -> None:
        self.options = options
        self.store = store
        self.clients = 0

    def ingest(self, batch: Batch) -> None:
        self.store.ingest(batch.received, batch.received.nodes, time.monotonic(), time.time_ns())

    async def run(self, run_id: str) -> Run | None:
        """The run, waiting up to the join grace for its first record."""
        deadline = time.monotonic() + self.options.join_grace_s
        while True:
            run = self.store.runs.get(run_id)
            if run is not None or time.monotonic() >= deadline:
                return run
            await asyncio.sleep(0.1)


def _json_error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers or None)


# --- OTLP ---------------------------------------------------------------------------------


def _otlp_route(gateway: _Gateway, signal: Literal["logs", "traces"]) -> Callable[[Request], Awaitable[Response]]:
    async def export(request: Request) -> Response:
        content_type = request.headers.get("content-type")
        media = JSON if (content_type or "").lower().startswith(JSON) else "application/x-protobuf"
        limit = gateway.options.max_body
        try:
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise OTLPError(413, f"request body of {declared} bytes is over the {limit}-byte limit")
            body = bytearray()
            async for part in request.stream():
                body += part
                if len(body) > limit:
                    raise OTLPError(413, f"request body is over the {limit}-byte limit")
            batch, media = decode_http(
                bytes(body), content_type, request.headers.get("content-encoding"), signal, limit
            )
        except OTLPError as exc:
            logger.warning("refused OTLP %s request (%s): %s", signal, exc.status, exc)
            return Response(error_body(str(exc), media), status_code=exc.status, media_type=media)
        gateway.ingest(batch)
        return Response(success_body(batch, media), media_type=media)

    return export


# --- reading ------------------------------------------------------------------------------


def _runs(gateway: _Gateway) -> Callable[[Request], Awaitable[Response]]:
    async def runs(request: Request) -> Response:
        query = request.query_params
        unknown = set(query) - {"graph", "thread_id", "status", "limit"}
        if unknown:
            return _json_error(400, f"unknown query parameters {sorted(unknown)}; use graph, thread_id, status, limit")
        try:
            limit = int(query.get("limit", str(_RUNS_LIMIT)))
            if not 1 <= limit <= 100_000:
                raise ValueError
        except ValueError:
            return _json_error(400, f"limit must be an integer from 1 to 100000, got {query.get('limit')!r}")
        found = gateway.store.find(
            graph=query.get("graph"), thread_id=query.get("thread_id"), status=query.get("status")
        )
        listed = [run.summary() for _, run in zip(range(limit), found, strict=False)]
        return JSONResponse({"gateway": gateway.options.name, "runs": listed, "store": gateway.store.stats()})

    return runs


def _run(gateway: _Gateway) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        found = gateway.store.runs.get(request.path_params["run_id"])
        if found is None:
            return _json_error(404, f"run {request.path_params['run_id']} is not held by this gateway")
        return JSONResponse(
            {**found.summary(), "gateway": gateway.options.name, "nodes": gateway.store.nodes_of(found)}
        )

    return run


def parse_modes(values: list[str], flavour: Flavour) -> list[str]:
    """``stream_mode`` as repeated parameters, a JSON array or a comma-separated list.

    Raises:
        ValueError: a mode otelstream does not stream, or a malformed JSON array.
    """
    modes: list[str] = []
    for value in values:
        text = value.strip()
        if text.startswith("["):
            items = json.loads(text)
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise ValueError(f"stream_mode {value!r} is not a JSON array of mode names")
            modes.extend(items)
        else:
            modes.extend(part.strip() for part in text.split(",") if part.strip())
    out: list[str] = []
    for mode in modes:
        if flavour == "langgraph" and mode == "messages-tuple":
            mode = "messages"
        if mode not in STREAM_MODE_NAMES:
            raise ValueError(f"unknown stream_mode {mode!r}; expected one of {sorted(STREAM_MODE_NAMES)}")
        if mode not in out:
            out.append(mode)
    return out


def _last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    if raw is None or raw == "":
        return None
    value = int(raw.strip())  # ValueError: reported as a 400
    if value < -1:
        raise ValueError(raw)
    return value


def _bool(raw: str | None, name: str) -> bool:
    if raw is None:
        return False
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{name} must be true or false, got {raw!r}")


def _stream(gateway: _Gateway, flavour: Flavour) -> Callable[[Request], Awaitable[Response]]:
    async def stream(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        query = request.query_params
        try:
            modes = parse_modes(query.getlist("stream_mode"), flavour)
            subgraphs = True if flavour == "langgraph" else _bool(query.get("subgraphs"), "subgraphs")
            last_id = _last_event_id(request)
        except ValueError as exc:
            message = (
                str(exc) if "stream_mode" in str(exc) or "subgraphs" in str(exc) else "Last-Event-ID must be a seq"
            )
            return _json_error(400 if flavour == "otelstream" else 422, message)
        if flavour == "langgraph" and query.get("cancel_on_disconnect") not in (None, "false", "False", "0"):
            logger.info("cancel_on_disconnect is not supported: the gateway cannot cancel a run; ignored")
        if gateway.clients >= gateway.options.max_clients:
            return _json_error(503, "too many streams open on this gateway; retry later", **{"Retry-After": "5"})
        run = await gateway.run(run_id)
        thread_id = request.path_params.get("thread_id")
        if run is None or (thread_id is not None and run.thread_id is not None and run.thread_id != thread_id):
            return _json_error(404, f"run {run_id} is not held by this gateway (no telemetry of it arrived)")
        if last_id is None:
            # otelstream's stream starts at the run's first chunk; LangGraph's join at the live tail
            start = 0 if flavour == "otelstream" else len(run.entries)
        else:
            start = 0 if last_id == -1 else run.after(last_id)
        headers: dict[str, str] = {}
        if flavour == "langgraph":
            base = f"/threads/{urllib.parse.quote(thread_id or '')}/runs/{urllib.parse.quote(run_id)}"
            # the SDK reconnects to Location verbatim: the mode filter must travel in it
            query_text = urllib.parse.urlencode([("stream_mode", m) for m in modes])
            headers["Location"] = f"{base}/stream" + (f"?{query_text}" if query_text else "")
            headers["Content-Location"] = base
        events = _events(gateway, run, start, set(modes), subgraphs, flavour, send_metadata=last_id in (None, -1))
        return EventSourceResponse(
            events,
            headers=headers,
            ping=int(gateway.options.ping_s) or None,
            send_timeout=gateway.options.send_timeout_s,
            sep="\r\n",
        )

    return stream


async def _events(
    gateway: _Gateway,
    run: Run,
    start: int,
    modes: set[str],
    subgraphs: bool,
    flavour: Flavour,
    *,
    send_metadata: bool,
) -> AsyncIterator[bytes]:
    changed = asyncio.Event()
    run.listeners.add(changed.set)
    gateway.clients += 1
    try:
        if flavour == "langgraph" and send_metadata:
            yield frame("metadata", json.dumps({"run_id": run.run_id, "attempt": 1}))
        index = start
        while True:
            if run.evicted is not None:
                message = (
                    f"run {run.run_id} was evicted from the gateway ({run.evicted}) while this stream was "
                    f"{len(run.entries) - index} chunks behind; reconnecting cannot recover them"
                )
                yield frame("error", json.dumps({"error": "evicted", "message": message}))
                return
            end = len(run.entries)
            if index < end:
                stop = min(end, index + _BATCH)
                parts = [_entry_frame(e, modes, subgraphs, flavour) for e in run.entries[index:stop]]
                index = stop
                data = b"".join(p for p in parts if p)
                if data:
                    yield data
                continue
            if run.finished:
                yield frame("end", json.dumps(end_data(run), separators=(",", ":")))
                return
            changed.clear()
            await changed.wait()
    finally:
        gateway.clients -= 1
        run.listeners.discard(changed.set)


def _entry_frame(entry: Entry, modes: set[str], subgraphs: bool, flavour: Flavour) -> bytes:
    if entry.gap is not None:
        return frame("gap", gap_data(entry), entry.seq) if flavour == "otelstream" else b""
    if modes and entry.mode not in modes:
        return b""
    if entry.namespace and not subgraphs:
        return b""
    data = entry.data if flavour == "otelstream" else plain(entry.data)
    return frame(entry.event, data, entry.seq)


def _thread_run(gateway: _Gateway) -> Callable[[Request], Awaitable[Response]]:
    async def thread_run(request: Request) -> Response:
        run = gateway.store.runs.get(request.path_params["run_id"])
        thread_id = request.path_params["thread_id"]
        if run is None or (run.thread_id is not None and run.thread_id != thread_id):
            return _json_error(404, "Not Found")
        started = run.start_ns or run.first_seen_ns
        return JSONResponse(
            {
                "run_id": run.run_id,
                "thread_id": thread_id,
                "assistant_id": run.graph,
                "status": langgraph_status(run),
                "created_at": _iso(started),
                "updated_at": _iso(run.end_ns or started),
                "metadata": {"otelstream_outcome": run.outcome, "gateway": gateway.options.name},
                "multitask_strategy": None,
                "kwargs": {},
            }
        )

    return thread_run


def _iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns / 1e9)) + f".{(ns // 1000) % 1_000_000:06d}+00:00"


async def _metrics(request: Request) -> Response:
    # applications export metrics to the same endpoint: accepted (an empty success), not kept
    async for _ in request.stream():
        pass
    media = JSON if (request.headers.get("content-type") or "").lower().startswith(JSON) else "application/x-protobuf"
    return Response(b"{}" if media == JSON else b"", media_type=media)


async def _ok(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def _not_running(request: Request) -> Response:
    return _json_error(405, _NOT_RUNNING, Allow="GET")


# --- the app ------------------------------------------------------------------------------


class _BearerToken:
    """Pure ASGI middleware: every path but the page needs ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"")
        if hmac.compare_digest(given, self.expected):
            await self.app(scope, receive, send)
            return
        response = _json_error(401, "missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)


def create_app(options: GatewayOptions | None = None, store: RunStore | None = None) -> Starlette:
    """Build the gateway as an ASGI app (run it with any ASGI server, or ``otelstream serve``).

    Args:
        options: Limits, token, gRPC port; the defaults when None.
        store: The run store to serve (a new one when None).
    """
    options = options or GatewayOptions()
    gateway = _Gateway(options, store or RunStore(options.limits))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ticker = asyncio.create_task(_tick(gateway.store))
        receiver = None
        if options.grpc_port is not None:
            from otelstream.serve._grpc import start_grpc  # noqa: PLC0415 - grpcio only when gRPC is on

            receiver = await start_grpc(gateway.ingest, options)
        try:
            yield
        finally:
            ticker.cancel()
            if receiver is not None:
                await receiver.stop(grace=1.0)

    async def page(request: Request) -> Response:
        return FileResponse(_static_dir() + "/index.html", headers={"Cache-Control": "no-cache"})

    routes = [
        Route("/", page),
        Route("/v1/logs", _otlp_route(gateway, "logs"), methods=["POST"]),
        Route("/v1/traces", _otlp_route(gateway, "traces"), methods=["POST"]),
        Route("/v1/metrics", _metrics, methods=["POST"]),
        Route("/runs", _runs(gateway)),
        Route("/runs", _not_running, methods=["POST"]),
        Route("/runs/stream", _not_running, methods=["POST"]),
        Route("/runs/wait", _not_running, methods=["POST"]),
        Route("/runs/{run_id}", _run(gateway)),
        Route("/runs/{run_id}/stream", _stream(gateway, "otelstream")),
        Route("/threads/{thread_id}/runs", _not_running, methods=["POST"]),
        Route("/threads/{thread_id}/runs/stream", _not_running, methods=["POST"]),
        Route("/threads/{thread_id}/runs/wait", _not_running, methods=["POST"]),
        Route("/threads/{thread_id}/runs/{run_id}", _thread_run(gateway)),
        Route("/threads/{thread_id}/runs/{run_id}/stream", _stream(gateway, "langgraph")),
        Route("/threads/{thread_id}/runs/{run_id}/cancel", _not_running, methods=["POST"]),
        Route("/ok", _ok),
        Mount("/static", StaticFiles(packages=[_STATIC]), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.gateway = gateway
    if options.token:
        app.add_middleware(_BearerToken, token=options.token)
    return app


def _static_dir() -> str:
    import importlib.resources  # noqa: PLC0415 - start-up cost, only when the page is asked for

    return str(importlib.resources.files("otelstream.serve") / "static")


async def _tick(store: RunStore) -> None:
    while True:
        await asyncio.sleep(_TICK_S)
        try:
            store.tick(time.monotonic())
        except Exception:  # one bad run must not stop releasing and evicting the others
            logger.exception("gateway tick failed")
