"""Profile one workload on one configuration with cProfile, every thread included.

Usage::

    .venv/bin/python bench/profiling.py custom_10k --config none
    .venv/bin/python bench/profiling.py custom_10k --config otlp --top 30   # starts a receiver
    .venv/bin/python bench/profiling.py agent --src /tmp/snapshot/src      # another otelstream tree
    .venv/bin/python bench/profiling.py paced --config otlp --reps 3 --latency

cProfile only sees the thread that enabled it; here every thread started after the profiler
is set up (node worker threads, otelstream's export thread, the span batcher) gets a
profiler of its own through ``threading.setprofile``, and the stats are printed per thread
and merged (by self time and by cumulative time). The merged stats are saved for
``snakeviz``/``pstats`` under ``bench/results/``. Times under cProfile are inflated (calls
are expensive to trace); compare shares, not absolute figures.

``--latency`` runs without cProfile (which distorts latency) and reports instead the
emit→yield latencies (``paced``) and how long each export batch of otelstream's
``BackpressureLogRecordProcessor`` took. ``--switch-interval`` sets ``sys.setswitchinterval``
before running: a diagnostic for latency workloads (how long a thread holding the GIL keeps
it), not a setting to publish figures with.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


class ThreadProfilers:
    """A cProfile per thread: the main thread's, and one for each thread started later."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.profilers: list[tuple[str, cProfile.Profile]] = []
        self.main = cProfile.Profile()

    def _hook(self, frame: Any, event: str, arg: Any) -> None:
        # runs once per new thread, as its first profile event: replace the hook with cProfile
        profiler = cProfile.Profile()
        with self._lock:
            self.profilers.append((threading.current_thread().name, profiler))
        profiler.enable()

    def start(self) -> None:
        threading.setprofile(self._hook)
        self.main.enable()

    def stop(self) -> None:
        self.main.disable()
        threading.setprofile(None)

    def stats(self) -> list[tuple[str, pstats.Stats]]:
        out = [("MainThread", pstats.Stats(self.main))]
        with self._lock:
            profilers = list(self.profilers)
        for name, profiler in profilers:
            try:
                out.append((name, pstats.Stats(profiler)))
            except TypeError:  # a thread that made no call after its hook
                continue
        return out


def _time_exports() -> list[tuple[int, float]]:
    """Record (records, milliseconds) of every export batch otelstream's processor makes."""
    from otelstream.telemetry.export import BackpressureLogRecordProcessor

    timings: list[tuple[int, float]] = []
    export = BackpressureLogRecordProcessor._export

    def timed(self: BackpressureLogRecordProcessor, batch: Sequence[Any]) -> None:
        started = time.perf_counter()
        export(self, batch)
        timings.append((len(batch), (time.perf_counter() - started) * 1000))

    BackpressureLogRecordProcessor._export = timed  # type: ignore[method-assign]
    return timings


def _total(stats: pstats.Stats) -> float:
    return float(getattr(stats, "total_tt", 0.0))


def _print_top(stats: pstats.Stats, sort: str, top: int) -> str:
    buffer = io.StringIO()
    stats.stream = buffer  # type: ignore[attr-defined]  # pstats prints to .stream
    stats.sort_stats(sort).print_stats(top)
    return buffer.getvalue()


def main(argv: Sequence[str] | None = None) -> None:
    from run import receiver_process
    from worker import CONFIGS, EXPORT_CONFIGS, PLUGIN_PREFIX, Exporting, TracedPeer, percentile
    from workloads import WORKLOADS, load_lib

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--config", choices=CONFIGS, default="none")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--size", type=int, help="override the workload's size")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--src", type=Path, help="import otelstream from this src/ directory")
    parser.add_argument("--latency", action="store_true", help="no cProfile: latencies and export batch times")
    parser.add_argument("--switch-interval", type=float, help="sys.setswitchinterval(seconds), diagnostic only")
    args = parser.parse_args(argv)

    if args.src is not None:
        sys.path.insert(0, str(args.src.resolve()))
        os.environ["PYTHONPATH"] = str(args.src.resolve())  # for the receiver process too
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    endpoint: dict[str, str] = {}
    plugin = args.config.startswith(PLUGIN_PREFIX)
    export_config = args.config.removeprefix(PLUGIN_PREFIX)
    with receiver_process(export_config == "otlp", endpoint):
        os.environ.update(endpoint)
        workload = WORKLOADS[args.workload]
        size = args.size or workload.size
        lib = load_lib("langgraph" if args.config.startswith("langgraph") or plugin else "otelstream")
        profilers = ThreadProfilers()
        exports = _time_exports() if args.latency else []
        if not args.latency:
            profilers.start()  # before the exporters start their threads
        exporting = Exporting(export_config) if export_config in EXPORT_CONFIGS else None
        traced = TracedPeer() if args.config == "langgraph-traced" else None
        if plugin:
            from otelstream.integrations.langgraph import LangGraphInstrumentor

            LangGraphInstrumentor().instrument(export_modes=[])
        graph = workload.build(lib, size)
        workload.run(graph, min(size, workload.warmup_size))  # warm-up (profiled too: kept small)
        started = time.perf_counter()
        latencies: list[int] = []
        for _ in range(args.reps):
            sample = workload.run(graph, size)
            latencies.extend(sample.latencies_ns)
            if exporting is not None:
                exporting.flush()
            if traced is not None:
                traced.flush()
        elapsed = time.perf_counter() - started
        if exporting is not None:
            exporting.shutdown()  # ends the export threads, so their profiles are complete
        if not args.latency:
            profilers.stop()

    how = "without cProfile" if args.latency else "under cProfile"
    print(f"{args.workload} on {args.config}: {args.reps} runs of size {size} in {elapsed:.2f} s {how}")
    if latencies:
        over = sum(1 for latency in latencies if latency > 250_000)
        print(
            f"emit→yield latency p50 {percentile(latencies, 0.5) / 1000:.0f} µs, "
            f"p99 {percentile(latencies, 0.99) / 1000:.0f} µs, max {max(latencies) / 1000:.0f} µs; "
            f"{over} of {len(latencies)} over 250 µs"
        )
    if args.latency:
        for records, millis in exports:
            print(f"  export batch of {records} records took {millis:.1f} ms")
        return
    per_thread = profilers.stats()
    print("\ntime per thread (s; wall time, waiting included):")
    by_name: dict[str, float] = {}
    for name, stats in per_thread:
        key = name.split("_")[0] if name.startswith("ThreadPoolExecutor") else name.rsplit("_", 1)[0]
        by_name[key] = by_name.get(key, 0.0) + _total(stats)
    for name, total in sorted(by_name.items(), key=lambda item: -item[1]):
        print(f"  {name:<40} {total:8.3f}")
    merged = per_thread[0][1]
    for _, stats in per_thread[1:]:
        merged.add(stats)
    out = BENCH / "results" / f"profile-{args.workload}-{args.config}.prof"
    out.parent.mkdir(parents=True, exist_ok=True)
    merged.dump_stats(str(out))
    print(f"\nall threads, by self time (saved to {out.relative_to(ROOT)}):")
    print(_print_top(merged, "tottime", args.top))
    print("all threads, by cumulative time:")
    print(_print_top(merged, "cumulative", args.top))


if __name__ == "__main__":
    main()
