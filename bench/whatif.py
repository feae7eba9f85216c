"""What-if experiments: how much would a proposed fix save? Diagnostic only, never published as figures.

Usage::

    .venv/bin/python bench/whatif.py custom_10k none no-encode lean-attributes waker
    .venv/bin/python bench/whatif.py custom_10k otlp metrics-off otlp-no-send --rounds 3
    .venv/bin/python bench/whatif.py --check-encoder

Each experiment monkeypatches otelstream or the OpenTelemetry SDK *in a worker process of its
own* to approximate a fix proposed in ``bench/README.md`` (nothing under ``src/`` changes),
then measures the workload as ``bench/worker.py`` does. Rounds alternate baseline and
patched processes, so the machine's load hits both alike. The patches cut corners a real
fix could not (they drop work instead of doing it faster): read the gains as upper bounds.

Patches:

- ``metrics-off``: ``RunMetrics`` records nothing (stands for counting custom writes in a
  plain integer and reporting them from an observable callback, instead of an SDK
  ``Counter.add`` per write).
- ``no-encode``: the JSON payload is not encoded (stands for skipping ``encode`` when the
  logger provider has no exporting processor, as in configuration (a)).
- ``lean-attributes``: the SDK's ``ReadWriteLogRecord`` takes otelstream's attributes without
  re-validating each value (stands for building records whose attributes are known clean).
- ``waker``: ``ThreadWaker.notify`` sets its event only when it is not set already.
- ``otlp-no-send``: the OTLP log exporter encodes each batch but does not send it (splits
  export cost into encoding and HTTP; ``otlp`` configuration only).
- ``otlp-fast-encoder``: the OTLP log exporter encodes with :func:`fast_encode_logs`, a
  prototype that writes the protobuf bytes of otelstream's records directly instead of
  building SDK protobuf objects (``python bench/whatif.py --check-encoder`` compares its
  output with the SDK encoder's). The receiver's counts still verify every record arrived.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def _metrics_off() -> None:
    from otelstream.telemetry.metrics import RunMetrics

    def nothing(*args: Any, **kwargs: Any) -> None:
        return None

    for name in ("custom_written", "node_ended", "run_started", "run_ended"):
        setattr(RunMetrics, name, nothing)


def _no_encode() -> None:
    from otelstream.telemetry import emit

    def encode(*args: Any) -> str:
        return ""

    setattr(emit, "encode", encode)  # noqa: B010 - not a public name of the module


def _lean_attributes() -> None:
    from opentelemetry.attributes import BoundedAttributes
    from opentelemetry.sdk._logs import ReadWriteLogRecord

    def post_init(self: Any) -> None:
        attributes = BoundedAttributes(
            maxlen=self.limits.max_log_record_attributes,
            attributes=None,
            immutable=False,
            max_value_len=self.limits.max_log_record_attribute_length,
            extended_attributes=True,
        )
        attributes._dict.update(self.log_record.attributes or {})
        self.log_record.attributes = attributes

    ReadWriteLogRecord.__post_init__ = post_init  # type: ignore[method-assign]


def _waker() -> None:
    from otelstream.engine.runner import ThreadWaker

    def notify(self: Any) -> None:
        if not self._event.is_set():
            self._event.set()

    ThreadWaker.notify = notify  # type: ignore[method-assign]


def _otlp_no_send() -> None:
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs.export import LogRecordExportResult

    def export(self: Any, batch: Sequence[Any]) -> LogRecordExportResult:
        encode_logs(batch).SerializePartialToString()
        return LogRecordExportResult.SUCCESS

    OTLPLogExporter.export = export  # type: ignore[method-assign]


def _varint(n: int) -> bytes:
    if 0 <= n < 0x80:
        return _SMALL[n]
    n &= (1 << 64) - 1  # int64 two's complement, as protobuf writes negative ints
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = [bytes((i,)) for i in range(0x80)]
_KEYS: dict[str, bytes] = {}


def _field(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


def _key(key: str) -> bytes:
    # a KeyValue's key field, cached: otelstream's attribute keys are few
    encoded = _KEYS.get(key)
    if encoded is None:
        encoded = _KEYS[key] = _field(b"\x0a", key.encode())
    return encoded


def _any_value(value: Any) -> bytes:
    import struct

    if isinstance(value, str):
        return _field(b"\x0a", value.encode())
    if isinstance(value, bool):
        return b"\x10" + (b"\x01" if value else b"\x00")
    if isinstance(value, int):
        return b"\x18" + _varint(value)
    if isinstance(value, float):
        return b"\x21" + struct.pack("<d", value)
    if isinstance(value, (list, tuple)):
        return _field(b"\x2a", b"".join(_field(b"\x0a", _any_value(v)) for v in value))
    raise TypeError(f"the prototype encoder does not handle {type(value).__name__} attributes")


class _Encoded:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def SerializeToString(self) -> bytes:
        return self.data


def fast_encode_logs(batch: Sequence[Any]) -> _Encoded:
    """A prototype OTLP encoder writing protobuf bytes directly (resource and scope once per group).

    Handles str/int/bool/float (and lists of them) attribute values and no body (otelstream's records); anything
    else raises, as a real implementation would fall back to the SDK encoder.
    """
    import struct

    from opentelemetry.exporter.otlp.proto.common._internal import (
        _encode_instrumentation_scope,
        _encode_resource,
    )

    groups: dict[tuple[int, int], tuple[Any, Any, list[bytes]]] = {}
    for readable in batch:
        record = readable.log_record
        if record.body is not None:
            raise TypeError("the prototype encoder handles records without a body only")
        parts = [b"\x09" + struct.pack("<Q", record.timestamp or 0)]
        severity = getattr(record.severity_number, "value", None)
        if severity:
            parts.append(b"\x10" + _varint(severity))
        parts.append(b"\x2a\x00")  # an empty body, as the SDK encoder writes for None
        attributes = record.attributes or {}
        for key, value in getattr(attributes, "_dict", attributes).items():
            parts.append(_field(b"\x32", _key(key) + _field(b"\x12", _any_value(value))))
        parts.append(b"\x45" + struct.pack("<I", int(record.trace_flags or 0)))
        if record.trace_id:
            parts.append(b"\x4a\x10" + record.trace_id.to_bytes(16, "big"))
        if record.span_id:
            parts.append(b"\x52\x08" + record.span_id.to_bytes(8, "big"))
        parts.append(b"\x59" + struct.pack("<Q", record.observed_timestamp or 0))
        if record.event_name:
            parts.append(_field(b"\x62", record.event_name.encode()))
        key = (id(readable.resource), id(readable.instrumentation_scope))
        group = groups.get(key)
        if group is None:
            group = groups[key] = (readable.resource, readable.instrumentation_scope, [])
        group[2].append(_field(b"\x12", b"".join(parts)))
    out = []
    for resource, scope, records in groups.values():
        scope_logs = _field(b"\x0a", _encode_instrumentation_scope(scope).SerializeToString()) + b"".join(records)
        if scope is not None and scope.schema_url:
            scope_logs += _field(b"\x1a", scope.schema_url.encode())
        resource_logs = _field(b"\x0a", _encode_resource(resource).SerializeToString()) + _field(b"\x12", scope_logs)
        if resource.schema_url:
            resource_logs += _field(b"\x1a", resource.schema_url.encode())
        out.append(_field(b"\x0a", resource_logs))
    return _Encoded(b"".join(out))


def _otlp_fast_encoder() -> None:
    from opentelemetry.exporter.otlp.proto.http import _log_exporter

    setattr(_log_exporter, "encode_logs", fast_encode_logs)  # noqa: B010 - not a public name of the module


PATCHES: dict[str, Callable[[], None]] = {
    "metrics-off": _metrics_off,
    "no-encode": _no_encode,
    "lean-attributes": _lean_attributes,
    "waker": _waker,
    "otlp-no-send": _otlp_no_send,
    "otlp-fast-encoder": _otlp_fast_encoder,
}


def check_encoder() -> None:
    """Compare :func:`fast_encode_logs` with the SDK's ``encode_logs`` on real stream records."""
    import time

    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.sdk._logs import LogRecordProcessor
    from workloads import WORKLOADS, load_lib

    import otelstream

    captured: list[Any] = []

    class Capture(LogRecordProcessor):
        def on_emit(self, log_record: Any) -> None:
            captured.append(log_record)

        def shutdown(self) -> None:
            pass

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    otelstream.configure(additional_log_record_processors=[Capture()])
    for name in ("custom_10k", "agent"):
        workload = WORKLOADS[name]
        workload.run(workload.build(load_lib("otelstream"), workload.size), workload.size)
    batches = [captured[i : i + 512] for i in range(0, len(captured), 512)]
    for batch in batches:
        parsed = ExportLogsServiceRequest()
        parsed.ParseFromString(fast_encode_logs(batch).SerializeToString())
        if parsed != encode_logs(batch):
            raise SystemExit("the prototype encoder's output differs from the SDK encoder's")
    timings = {}
    for label, encoder in (("SDK encode_logs", encode_logs), ("prototype", fast_encode_logs)):
        started = time.perf_counter()
        for batch in batches:
            encoder(batch).SerializeToString()
        timings[label] = (time.perf_counter() - started) / len(captured) * 1e6
    print(f"{len(captured)} records in {len(batches)} batches: identical messages after parsing")
    for label, micros in timings.items():
        print(f"  {label:<16} {micros:6.2f} µs/record")
    otelstream.shutdown()


def child(workload: str, config: str, patches: Sequence[str], reps: int) -> None:
    from worker import measure

    import otelstream  # noqa: F401 - patch the modules the worker is about to use

    for name in patches:
        PATCHES[name]()
    result = measure(config, workload, reps, 2)
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")


def _figure(workload: str, result: dict[str, Any]) -> tuple[float, str]:
    from workloads import WORKLOADS

    if "p99_us" in result:
        return statistics.median(result["p99_us"]), "µs p99"
    seconds = statistics.median(result["seconds"])
    w = WORKLOADS[workload]
    if workload.startswith("custom"):
        return w.size / seconds, "events/s"
    return seconds / w.unit_divisor * 1e6, "µs/unit"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", nargs="?")
    parser.add_argument("config", nargs="?", choices=("none", "null-export", "otlp"))
    parser.add_argument("patches", nargs="*", help=f"any of: {', '.join(sorted(PATCHES))}")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--src", type=Path, help="import otelstream from this src/ directory")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--check-encoder", action="store_true", help="check the prototype encoder; run nothing else")
    args = parser.parse_args(argv)
    if args.check_encoder:
        check_encoder()
        return
    if args.workload is None or args.config is None:
        parser.error("a workload and a configuration are required")
    unknown = sorted(set(args.patches) - set(PATCHES))
    if unknown:
        parser.error(f"unknown patches {unknown}; choose from {sorted(PATCHES)}")
    if args.child:
        child(args.workload, args.config, args.patches, args.reps)
        return

    from run import receiver_process

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELSTREAM_"))}
    if args.src is not None:
        env["PYTHONPATH"] = str(args.src.resolve())
    experiments = [[], *[[p] for p in args.patches]]
    if len(args.patches) > 1:
        experiments.append(list(args.patches))
    figures: dict[str, list[float]] = {}
    unit = ""
    for _ in range(args.rounds):
        for patches in experiments:
            command = [sys.executable, str(BENCH / "whatif.py"), args.workload, args.config, *patches]
            command += ["--reps", str(args.reps), "--child"]
            run_env = dict(env)
            with receiver_process(args.config == "otlp", run_env):
                done = subprocess.run(command, cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=900)
            line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                raise SystemExit(f"experiment {patches} failed:\n{done.stdout}\n{done.stderr}")
            value, unit = _figure(args.workload, json.loads(line[len("RESULT ") :]))
            figures.setdefault(" + ".join(patches) or "baseline", []).append(value)
    baseline = statistics.median(figures["baseline"])
    print(f"{args.workload} on {args.config}, {args.rounds} rounds of {args.reps} repetitions (median of rounds)")
    for name, values in figures.items():
        value = statistics.median(values)
        change = (value / baseline - 1) * 100
        print(f"  {name:<45} {value:>12,.1f} {unit}  {change:+6.1f}%  rounds: {', '.join(f'{v:,.1f}' for v in values)}")


if __name__ == "__main__":
    main()
