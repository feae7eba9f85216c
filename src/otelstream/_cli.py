"""The ``otelstream`` command.

``otelstream demo`` streams an example graph to the terminal with several modes at once,
while its telemetry goes to a local OTLP-JSON file (or to ``OTEL_EXPORTER_OTLP_ENDPOINT``
when that is set). ``otelstream serve`` runs the stream gateway; ``otelstream tail URL``
follows a run's stream from one.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import otelstream
from otelstream.telemetry import environment
from otelstream.telemetry.codec import encode

if TYPE_CHECKING:
    from otelstream._replay import Replay

__all__ = ["main"]

_DEFAULT_GRAPH = "examples/ingest.py:graph"
_DEFAULT_OUTPUT = "otelstream-telemetry/demo.otlp.jsonl"
_TAIL_WAIT_S = 60.0


class CliError(Exception):
    """A problem with the command's arguments, reported without a traceback."""


def _load_graph(spec: str) -> tuple[Any, dict[str, Any]]:
    path_text, _, name = spec.partition(":")
    path = Path(path_text)
    if not path.is_file():
        raise CliError(
            f"graph file {path_text!r} not found (run from the repository root, or pass --graph FILE.py:NAME)"
        )
    module_spec = importlib.util.spec_from_file_location(path.stem, path)
    if module_spec is None or module_spec.loader is None:
        raise CliError(f"cannot load {path_text!r} as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    # registered first so annotations (typing.get_type_hints) resolve in the module
    sys.modules[module_spec.name] = module
    module_spec.loader.exec_module(module)
    graph = getattr(module, name or "graph", None)
    if graph is None or not hasattr(graph, "stream"):
        raise CliError(f"{path_text!r} has no compiled graph named {name or 'graph'!r}")
    demo_input = getattr(module, "DEMO_INPUT", None)
    if demo_input is None:
        demo_input = {"records": []} if "records" in graph.topology.fields else {}
    return graph, dict(demo_input)


def _render(mode: str, chunk: Any, width: int) -> str:
    if mode == "custom" and isinstance(chunk, dict) and "message" in chunk:
        text = str(chunk["message"])
        if "progress" in chunk and "total" in chunk:
            text += f"  [{chunk['progress']}/{chunk['total']} {chunk.get('unit', '')}]".rstrip()
    else:
        try:
            text = json.dumps(chunk, default=repr, ensure_ascii=False)
        except (TypeError, ValueError):
            text = repr(chunk)
    return text if len(text) <= width else text[: max(width - 1, 10)] + "…"


def _summarise_file(path: Path) -> tuple[int, int, set[str]]:
    spans = records = 0
    traces: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        data = json.loads(line)
        for resource in data.get("resourceSpans", []):
            for scope in resource.get("scopeSpans", []):
                spans += len(scope.get("spans", []))
                traces.update(s["traceId"] for s in scope.get("spans", []))
        for resource in data.get("resourceLogs", []):
            for scope in resource.get("scopeLogs", []):
                records += sum(
                    1
                    for r in scope.get("logRecords", [])
                    if r.get("eventName", "").startswith("otelstream.") and r.get("eventName") != "otelstream.run.end"
                )
    return spans, records, traces


def _demo(args: argparse.Namespace) -> int:
    # the arguments are checked before any output is touched: a typo keeps the last telemetry
    graph, demo_input = _load_graph(args.graph)
    endpoint = environment.OTLP_ENDPOINT.get()
    output = Path(args.output)
    # the run writes next to the output and replaces it only once it is complete
    partial = output.with_name(output.name + ".partial")
    if endpoint:
        export = otelstream.ExportOptions(otlp=True)
        destination = f"OTLP endpoint {endpoint}"
    else:
        partial.unlink(missing_ok=True)
        export = otelstream.ExportOptions(file=str(partial))
        destination = str(output)
    otelstream.configure(export=export, service_name=environment.SERVICE_NAME.get() or "otelstream-demo")
    try:
        chunks = _stream_demo(graph, demo_input, list(args.stream_mode))
    except BaseException:
        otelstream.shutdown()
        partial.unlink(missing_ok=True)
        raise
    otelstream.shutdown()  # flushes the exporters before we report
    if not endpoint and partial.exists():
        partial.replace(output)
    print(f"\n{chunks} chunks streamed; each one is an `otelstream.<mode>` log record in the telemetry.")
    if endpoint:
        print(f"Telemetry sent to {destination}.")
        return 0
    spans, records, traces = _summarise_file(output)
    trace_ids = ", ".join(sorted(traces))
    print(f"Telemetry written to {destination}: {spans} spans, {records} stream records, trace {trace_ids}.")
    print("It is OTLP-JSON, the OpenTelemetry Collector file exporter's format. Rebuild the stream from it:")
    print(f"  .venv/bin/otelstream replay {destination} --subgraphs     (list runs: otelstream runs {destination})")
    print(
        "Send the next run to a collector instead: OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 ./scripts/demo.sh"
    )
    return 0


def _stream_demo(graph: Any, demo_input: dict[str, Any], modes: list[str]) -> int:
    width = shutil.get_terminal_size((120, 20)).columns - 40
    print(f"Streaming {graph.name!r} with stream_mode={modes}, subgraphs=True\n")
    print(f"{'namespace':<22} {'mode':<8} chunk")
    chunks = 0
    for namespace, mode, chunk in graph.stream(demo_input, stream_mode=modes, subgraphs=True):
        where = namespace[-1].split(":")[0] if namespace else "(root)"
        print(f"{where:<22} {mode:<8} {_render(mode, chunk, max(width, 40))}", flush=True)
        chunks += 1
    return chunks


def _replay(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {"stream_mode": args.stream_mode, "subgraphs": args.subgraphs, "project": args.project}
    try:
        if args.thread is not None:
            if args.run_id is not None:
                raise CliError("pass either --run-id or --thread, not both")
            replays = otelstream.replay_thread(args.source, args.thread, **options)
        else:
            replays = [otelstream.replay(args.source, run_id=args.run_id, **options)]
        for replayed in replays:
            # a thread's runs one after the other, each line naming its run
            for seq, chunk in replayed.numbered():
                print(
                    f'{{"run_id":{encode(replayed.run.run_id)},"seq":{seq},"ns":{encode(list(chunk.namespace))},'
                    f'"mode":"{chunk.mode}","chunk":{encode(chunk.payload)}}}'
                )
    except (otelstream.OtelstreamError, otelstream.ReplaySourceError) as exc:
        # a user error (an unknown mode, a missing run): one line and status 2, no traceback
        raise CliError(str(exc)) from None
    return 0 if all([_report(replayed) for replayed in replays]) else 1


def _report(replayed: Replay) -> bool:
    # what the source lacks goes to stderr; True when the run's stream is complete
    for gap in replayed.gaps:
        print(
            f"otelstream: gap: chunks {gap.first_seq}..{gap.first_seq + gap.count - 1} are missing",
            file=sys.stderr,
        )
    for seq in replayed.truncated:
        print(f"otelstream: chunk {seq} was truncated in telemetry", file=sys.stderr)
    for seq in replayed.conflicts:
        print(f"otelstream: chunk {seq} arrived in conflicting copies", file=sys.stderr)
    for note in replayed.notes:
        print(f"otelstream: {note}", file=sys.stderr)
    return replayed.complete


def _runs(args: argparse.Namespace) -> int:
    try:
        found = otelstream.runs(args.source, thread_id=args.thread, project=args.project)
    except otelstream.ReplaySourceError as exc:
        raise CliError(str(exc)) from None
    print(f"{'run id':<36}  {'graph':<16} {'start (UTC)':<26} {'seconds':>8}  {'outcome':<10} {'chunks':>11}  modes")
    for run in found:
        start = run.start.isoformat(timespec="milliseconds") if run.start else "?"
        seconds = f"{run.duration_s:.3f}" if run.duration_s is not None else "?"
        count = f"{run.received}/{run.event_count if run.event_count is not None else '?'}"
        print(
            f"{run.run_id:<36}  {run.graph:<16} {start:<26} {seconds:>8}  {run.outcome or '?':<10} "
            f"{count:>11}  {','.join(run.stream_modes)}"
        )
    return 0


def _serve(args: argparse.Namespace) -> int:
    try:
        from otelstream.serve import GatewayOptions, StoreLimits, serve  # noqa: PLC0415 - the 'serve' extra
    except ImportError as exc:
        raise CliError(str(exc)) from None
    limits = StoreLimits(
        retention_s=args.retention,
        max_bytes=args.max_memory_mb * 1024 * 1024,
        max_runs=args.max_runs,
        reorder_window_s=args.reorder_window,
    )
    options = GatewayOptions(
        token=environment.SERVE_TOKEN.get() or None,
        limits=limits,
        max_body=args.max_body_mb * 1024 * 1024,
        grpc_port=args.grpc_port or None,
        **({"name": args.name} if args.name else {}),
    )
    serve(options, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _tail(args: argparse.Namespace) -> int:
    token = environment.SERVE_TOKEN.get() or None
    run_id = args.run_id or _newest_run(args.url, args.graph, token)
    modes = list(args.stream_mode) if args.stream_mode else None
    width = shutil.get_terminal_size((120, 20)).columns - 40
    print(f"Following run {run_id} at {args.url}\n")
    print(f"{'namespace':<22} {'mode':<8} chunk")
    try:
        # a list (or None: every mode) with subgraphs: (namespace, mode, chunk), as the demo prints
        stream = otelstream.remote_stream(args.url, run_id, stream_mode=modes, subgraphs=True, token=token)
        for namespace, mode, chunk in stream:
            where = namespace[-1].split(":")[0] if namespace else "(root)"
            print(f"{where:<22} {mode:<8} {_render(mode, chunk, max(width, 40))}", flush=True)
    except otelstream.ReplaySourceError as exc:
        raise CliError(str(exc)) from None
    for gap in stream.gaps:
        print(
            f"otelstream: gap: chunks {gap.first_seq}..{gap.first_seq + gap.count - 1} never reached the gateway",
            file=sys.stderr,
        )
    print(f"\nrun {run_id} ended: {stream.outcome}")
    return 0 if stream.complete else 1


def _newest_run(url: str, graph: str | None, token: str | None) -> str:
    import httpx  # noqa: PLC0415 - the 'serve' extra

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    params = {"graph": graph} if graph else {}
    deadline = time.monotonic() + _TAIL_WAIT_S
    while True:
        try:
            response = httpx.get(f"{url.rstrip('/')}/runs", params=params, headers=headers, timeout=10, trust_env=False)
        except httpx.TransportError as exc:
            raise CliError(f"cannot reach the gateway at {url}: {exc}") from None
        if response.status_code != 200:
            raise CliError(f"the gateway answered {response.status_code}: {response.text[:200]}")
        found = response.json().get("runs", [])
        running = [r for r in found if r.get("status") == "running"]
        if running or found:
            return str((running or found)[0]["run_id"])
        if time.monotonic() > deadline:
            raise CliError(f"no run{' of graph ' + graph if graph else ''} arrived at {url} in {_TAIL_WAIT_S:.0f} s")
        time.sleep(0.5)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otelstream", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="stream an example graph; telemetry to a file or OTLP")
    demo.add_argument("--graph", default=_DEFAULT_GRAPH, help="FILE.py:NAME of a compiled graph (default: %(default)s)")
    demo.add_argument("--output", default=_DEFAULT_OUTPUT, help="OTLP-JSON file to write (default: %(default)s)")
    demo.add_argument(
        "--stream-mode",
        nargs="+",
        default=["updates", "custom", "values"],
        choices=["values", "updates", "custom", "tasks", "debug"],
        help="modes to stream (default: %(default)s)",
    )
    demo.set_defaults(func=_demo)

    source_help = "an OTLP-JSON file, or a Phoenix server URL such as http://127.0.0.1:6006"
    replay = sub.add_parser("replay", help="print a run's stream, rebuilt from its telemetry, as JSON lines")
    replay.add_argument("source", help=source_help)
    replay.add_argument("--run-id", help="the run to replay (required when the source holds several)")
    replay.add_argument("--thread", help="replay every run of this thread id, in order (interrupts and resumes)")
    replay.add_argument("--stream-mode", nargs="+", help="modes to replay (default: those the run streamed)")
    replay.add_argument("--subgraphs", action="store_true", help="include subgraph chunks")
    replay.add_argument("--project", default="default", help="Phoenix project (default: %(default)s)")
    replay.set_defaults(func=_replay)

    runs = sub.add_parser("runs", help="list the streamed runs a source holds")
    runs.add_argument("source", help=source_help)
    runs.add_argument("--thread", help="only the runs of this thread id")
    runs.add_argument("--project", default="default", help="Phoenix project (default: %(default)s)")
    runs.set_defaults(func=_runs)

    serve = sub.add_parser(
        "serve", help=f"run the stream gateway: OTLP in, live run streams out (token: ${environment.SERVE_TOKEN.name})"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, loopback only)")
    serve.add_argument("--port", type=int, default=4320, help="HTTP port: OTLP/HTTP, API, page (default: %(default)s)")
    serve.add_argument("--grpc-port", type=int, default=0, help="also receive OTLP/gRPC on this port (default: off)")
    serve.add_argument("--retention", type=float, default=3600.0, help="seconds a run is kept after its last record")
    serve.add_argument("--max-memory-mb", type=int, default=256, help="evict runs beyond this much stream data")
    serve.add_argument("--max-runs", type=int, default=10_000, help="evict the oldest runs beyond this many")
    serve.add_argument("--max-body-mb", type=int, default=64, help="largest OTLP request, decompressed (413 beyond)")
    serve.add_argument("--reorder-window", type=float, default=5.0, help="seconds a missing chunk is awaited")
    serve.add_argument("--name", help="this gateway's name in GET /runs (default: HOST:PORT)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(func=_serve)

    tail = sub.add_parser("tail", help="follow a run's stream from a gateway, printed like the demo")
    tail.add_argument("url", help="the gateway, e.g. http://127.0.0.1:4320")
    which = tail.add_mutually_exclusive_group()
    which.add_argument("--run-id", help="the run to follow")
    which.add_argument("--graph", help="follow the newest run of this graph (waits for one)")
    tail.add_argument("--stream-mode", nargs="+", help="modes to print (default: every mode the run streamed)")
    tail.set_defaults(func=_tail)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``otelstream`` command; return its exit status."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"otelstream: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader (e.g. `| head`) went away: stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
