"""How much one `otelstream serve` gateway holds on this machine: chunks/s in, SSE clients out.

Run: `PYTHONPATH=src .venv/bin/python bench/gateway_capacity.py [--records 50000] [--clients 200]`.
It starts a gateway process on 127.0.0.1, posts otelstream records as OTLP/HTTP protobuf in
batches of 512 (as the SDK's batch processor sends them), then opens --clients concurrent
SSE streams of that run and reads each to its end. Bounded in count; stops the gateway by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

BATCH = 512
REPO = Path(__file__).resolve().parents[1]


def _request(run_id: str, first: int, count: int, total: int | None) -> bytes:
    request = ExportLogsServiceRequest()
    records = request.resource_logs.add().scope_logs.add().log_records
    for seq in range(first, first + count):
        record = records.add()
        record.event_name = "otelstream.custom"
        record.time_unix_nano = time.time_ns()
        payload = json.dumps({"progress": seq, "message": "x" * 40})
        for key, value in (("otelstream.run_id", run_id), ("otelstream.payload", payload)):
            attribute = record.attributes.add()
            attribute.key, attribute.value.string_value = key, value
        attribute = record.attributes.add()
        attribute.key, attribute.value.int_value = "otelstream.seq", seq
    if total is not None:
        end = records.add()
        end.event_name = "otelstream.run.end"
        for key, text in (("otelstream.run_id", run_id), ("otelstream.outcome", "completed")):
            attribute = end.attributes.add()
            attribute.key, attribute.value.string_value = key, text
        attribute = end.attributes.add()
        attribute.key, attribute.value.int_value = "otelstream.event_count", total
    return request.SerializeToString()


async def _read(client: httpx.AsyncClient, url: str) -> int:
    events = 0
    async with client.stream("GET", url) as response:
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                events += 1
    return events


async def _clients(url: str, count: int) -> float:
    limits = httpx.Limits(max_connections=count + 10)
    async with httpx.AsyncClient(timeout=120, limits=limits, trust_env=False) as client:
        started = time.perf_counter()
        results = await asyncio.gather(*(_read(client, url) for _ in range(count)))
        elapsed = time.perf_counter() - started
    assert len(set(results)) == 1, results
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--clients", type=int, default=200)
    args = parser.parse_args()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = subprocess.Popen(
        [sys.executable, "-m", "otelstream._cli", "serve", "--port", str(port), "--log-level", "warning"],
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/ok", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        bodies = [
            _request("bench", first, min(BATCH, args.records - first), args.records if last else None)
            for first in range(0, args.records, BATCH)
            for last in [first + BATCH >= args.records]
        ]
        with httpx.Client(trust_env=False) as client:
            started = time.perf_counter()
            for body in bodies:
                headers = {"Content-Type": "application/x-protobuf"}
                client.post(f"{base}/v1/logs", content=body, headers=headers).raise_for_status()
            ingest = time.perf_counter() - started
        run = json.loads(urllib.request.urlopen(f"{base}/runs/bench").read())
        assert run["released"] == args.records and run["status"] == "ended", run
        elapsed = asyncio.run(_clients(f"{base}/runs/bench/stream", args.clients))
        print(
            f"ingest: {args.records} chunks in {ingest:.2f} s = {args.records / ingest:,.0f} chunks/s "
            f"(OTLP/HTTP protobuf, batches of {BATCH}); store {run['bytes'] / 1e6:.1f} MB"
        )
        print(
            f"fan-out: {args.clients} concurrent SSE clients x {args.records} chunks in {elapsed:.2f} s = "
            f"{args.clients * args.records / elapsed:,.0f} chunks/s delivered"
        )
    finally:
        gateway.terminate()
        gateway.wait(10)


if __name__ == "__main__":
    main()
