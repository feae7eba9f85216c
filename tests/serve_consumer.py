"""A consumer process for the gateway's tests: reads one run's stream and writes what it received.

Run as ``python -m tests.serve_consumer KIND URL RUN_ID OUT MODES_JSON SUBGRAPHS VERSION [LAST_EVENT_ID]``,
KIND one of ``remote`` (remote_stream), ``aremote`` (aremote_stream), ``sse`` (a raw SSE client
on the standard library), ``sdk`` (langgraph_sdk's ``runs.join_stream``). Each chunk is one line
``SEQ<TAB>ENCODED`` (``codec.encode`` of what was yielded; for ``sdk``, its plain JSON data),
then ``END<TAB>{outcome, gaps}``, or ``ERROR<TAB>message``.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import sys
import urllib.parse
from typing import IO, Any

import langchain_core.messages.ai  # noqa: F401 - the raw client decodes messages itself

import otelstream
from otelstream.telemetry.codec import decode, encode

# attempts to re-establish a dropped stream (about 25 s in all with 8)
_RECONNECTS = int(os.environ.get("SERVE_CONSUMER_RECONNECTS", "3"))


def _remote(url: str, run_id: str, out: IO[str], options: dict[str, Any]) -> None:
    stream = otelstream.remote_stream(url, run_id, reconnects=_RECONNECTS, **options)
    for chunk in stream:
        out.write(f"{stream._session.last_id}\t{encode(chunk)}\n")
        out.flush()
    gaps = [[g.first_seq, g.count] for g in stream.gaps]
    out.write(f"END\t{json.dumps({'outcome': stream.outcome, 'gaps': gaps, 'complete': stream.complete})}\n")


async def _aremote(url: str, run_id: str, out: IO[str], options: dict[str, Any]) -> None:
    stream = otelstream.aremote_stream(url, run_id, reconnects=_RECONNECTS, **options)
    async for chunk in stream:
        out.write(f"{stream._session.last_id}\t{encode(chunk)}\n")
        out.flush()
    gaps = [[g.first_seq, g.count] for g in stream.gaps]
    out.write(f"END\t{json.dumps({'outcome': stream.outcome, 'gaps': gaps, 'complete': stream.complete})}\n")


def _sse(url: str, run_id: str, out: IO[str], modes: list[str]) -> None:
    parsed = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=60)
    query = urllib.parse.urlencode([*(("stream_mode", m) for m in modes), ("subgraphs", "true")])
    connection.request("GET", f"/runs/{run_id}/stream?{query}", headers={"Accept": "text/event-stream"})
    response = connection.getresponse()
    if response.status != 200:
        out.write(f"ERROR\t{response.status}\n")
        return
    event: dict[str, str] = {}
    for raw in response:
        line = raw.decode("utf-8").rstrip("\r\n")
        if line.startswith(":"):
            continue
        if line:
            name, _, value = line.partition(": ")
            event[name] = value
            continue
        if not event:
            continue
        if event["event"] == "end":
            out.write(f"END\t{event['data']}\n")
            return
        if event["event"] not in ("gap", "error"):
            mode, *namespace = event["event"].split("|")
            out.write(f"{event['id']}\t{encode((tuple(namespace), mode, decode(event['data'])))}\n")
            out.flush()
        event = {}


def _sdk(url: str, run_id: str, out: IO[str], modes: list[str]) -> None:
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=url)
    # the thread id is checked only once the gateway knows it: the worker's convention
    parts = client.runs.join_stream(
        f"thread-{run_id[:8]}",
        run_id,
        stream_mode=modes,  # type: ignore[arg-type]  # checked by the gateway, not here
        last_event_id="-1",
    )
    for part in parts:
        if part.event == "metadata":
            continue
        if part.event == "end":
            out.write(f"END\t{json.dumps(part.data)}\n")
            return
        out.write(f"{part.id}\t{json.dumps([part.event, part.data])}\n")
        out.flush()


def main(argv: list[str]) -> int:
    kind, url, run_id, out_path, modes_json, subgraphs, version = argv[:7]
    modes = json.loads(modes_json)
    options: dict[str, Any] = {"stream_mode": modes, "subgraphs": subgraphs == "true", "version": version}
    if len(argv) > 7:
        options["last_event_id"] = int(argv[7])
    with open(out_path, "a", encoding="utf-8") as out:
        try:
            if kind == "remote":
                _remote(url, run_id, out, options)
            elif kind == "aremote":
                asyncio.run(_aremote(url, run_id, out, options))
            elif kind == "sse":
                _sse(url, run_id, out, modes if isinstance(modes, list) else [modes])
            elif kind == "sdk":
                _sdk(url, run_id, out, modes if isinstance(modes, list) else [modes])
        except otelstream.ReplaySourceError as exc:
            out.write(f"ERROR\t{exc}\n")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
