"""The ``otelstream`` command.

``otelstream demo`` streams an example graph to the terminal with several modes at once,
while its telemetry goes to a local OTLP-JSON file (or to ``OTEL_EXPORTER_OTLP_ENDPOINT``
when that is set).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

_DEFAULT_GRAPH = "examples/ingest.py:graph"
_DEFAULT_OUTPUT = "otelstream-telemetry/demo.otlp.jsonl"


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
                    if r.get("eventName", "").startswith("otelstream.")
                    and r.get("eventName") != "otelstream.run.end"
                )
    return spans, records, traces


def _demo(args: argparse.Namespace) -> int:
    import otelstream

    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    output = Path(args.output)
    if endpoint:
        export = otelstream.ExportOptions(otlp=True)
        destination = f"OTLP endpoint {endpoint}"
    else:
        if output.exists():
            output.unlink()
        export = otelstream.ExportOptions(file=str(output))
        destination = str(output)
    otelstream.configure(export=export, service_name=os.environ.get("OTEL_SERVICE_NAME", "otelstream-demo"))
    graph, demo_input = _load_graph(args.graph)
    modes = list(args.stream_mode)
    width = shutil.get_terminal_size((120, 20)).columns - 40
    print(f"Streaming {graph.name!r} with stream_mode={modes}, subgraphs=True\n")
    print(f"{'namespace':<22} {'mode':<8} chunk")
    chunks = 0
    for namespace, mode, chunk in graph.stream(demo_input, stream_mode=modes, subgraphs=True):
        where = namespace[-1].split(":")[0] if namespace else "(root)"
        print(f"{where:<22} {mode:<8} {_render(mode, chunk, max(width, 40))}", flush=True)
        chunks += 1
    otelstream.shutdown()  # flushes the exporters before we report
    print(f"\n{chunks} chunks streamed; each one is an `otelstream.<mode>` log record in the telemetry.")
    if endpoint:
        print(f"Telemetry sent to {destination}.")
        return 0
    spans, records, traces = _summarise_file(output)
    trace_ids = ", ".join(sorted(traces))
    print(f"Telemetry written to {destination}: {spans} spans, {records} stream records, trace {trace_ids}.")
    print("It is OTLP-JSON, the OpenTelemetry Collector file exporter's format. To send the same run to a")
    print("collector instead: OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 ./scripts/demo.sh")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otelstream", description=__doc__.splitlines()[0] if __doc__ else None
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="stream an example graph; telemetry to a file or OTLP")
    demo.add_argument(
        "--graph", default=_DEFAULT_GRAPH, help="FILE.py:NAME of a compiled graph (default: %(default)s)"
    )
    demo.add_argument(
        "--output", default=_DEFAULT_OUTPUT, help="OTLP-JSON file to write (default: %(default)s)"
    )
    demo.add_argument(
        "--stream-mode",
        nargs="+",
        default=["updates", "custom", "values"],
        choices=["values", "updates", "custom", "tasks", "debug"],
        help="modes to stream (default: %(default)s)",
    )
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``otelstream`` command; return its exit status."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"otelstream: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
