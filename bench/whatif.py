"""What-if experiments: how much would a proposed fix save? Diagnostic only, never published as figures.

Usage::

    .venv/bin/python bench/whatif.py custom_10k none no-encode lean-attributes waker
    .venv/bin/python bench/whatif.py custom_10k otlp metrics-off otlp-no-send --rounds 3

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

The fixes ``metrics-off``, ``no-encode`` and ``lean-attributes`` stood for are now in ``src/``
(and the prototype OTLP encoder this script had became ``telemetry/otlp_wire.py``): on
current code those patches measure little.
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


PATCHES: dict[str, Callable[[], None]] = {
    "metrics-off": _metrics_off,
    "no-encode": _no_encode,
    "lean-attributes": _lean_attributes,
    "waker": _waker,
    "otlp-no-send": _otlp_no_send,
}


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
    args = parser.parse_args(argv)
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
