"""Benchmark otelstream against LangGraph 1.2 side by side; print a table of figures and ratios.

Usage::

    .venv/bin/python bench/run.py            # full run (about 10 minutes on 2 cores)
    .venv/bin/python bench/run.py --quick    # fewer repetitions, no 1M-event row (under 2 minutes)
    .venv/bin/python bench/run.py --only paced agent --configs langgraph none
    .venv/bin/python bench/run.py --quick --only tokens_10k --src ../wt3/src  # otelstream from another tree
    .venv/bin/python bench/run.py --table bench/results/latest.json --markdown
    .venv/bin/python bench/run.py --rev HEAD  # measure a commit's src/ (git archive), not the working tree

Every (workload, configuration) pair runs in a fresh subprocess (``bench/worker.py``): untimed
warm-up runs, then timed repetitions, ``gc.collect()`` before each, GC enabled during. Full
runs repeat each pair in two (1M events: three) rounds, interleaved across configurations, so
a burst of load from other processes on this shared machine hits every engine alike.

The traced peer (``langgraph-traced``: LangGraph with OpenInference's LangChain instrumentor)
and LangGraph with otelstream's plugin (``plugin-none``, ``plugin-null-export``,
``plugin-otlp``: ``LangGraphInstrumentor``) run on the chain, agent and token workloads only;
their ratio columns are to plain LangGraph, and the report compares otelstream and the plugin
with the traced peer too.

Ratios are otelstream / LangGraph for times (µs, latencies, memory) and LangGraph /
otelstream for throughputs (events/s): in every column **≤ 1.0× means as fast (or as lean)
as LangGraph or better**.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from workloads import WORKLOADS

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CONFIGS = (
    "langgraph",
    "langgraph-traced",
    "none",
    "null-export",
    "otlp",
    "plugin-none",
    "plugin-null-export",
    "plugin-otlp",
)
OTELSTREAM_CONFIGS = ("none", "null-export", "otlp")
PLUGIN_CONFIGS = ("plugin-none", "plugin-null-export", "plugin-otlp")
CONFIG_TITLES = {
    "langgraph": "LangGraph",
    "langgraph-traced": "LangGraph + OpenInference",
    "none": "(a) no export",
    "null-export": "(b) null export",
    "otlp": "(c) OTLP/HTTP",
    "plugin-none": "LangGraph + plugin (a)",
    "plugin-null-export": "LangGraph + plugin (b)",
    "plugin-otlp": "LangGraph + plugin (c)",
}
SPANS_PER_RUN = {
    "chain_updates": 101,
    "chain_values": 101,
    "fanout": 51,
    "custom_10k": 2,
    "custom_1m": 2,
    "paced": 2,
    "tokens_10k": 3,  # run, node, chat model call
    "paced_tokens": 3,
    "agent": 9,  # run, 5 nodes, 3 chat model calls
}
# results saved before they recorded their expected spans: the agent loop then had no model
SPANS_PER_RUN_BEFORE_MODELS = {**SPANS_PER_RUN, "agent": 6}
# (7): the traced peer and the plugin run on workloads 1, 4 and 6 only
TRACED_WORKLOADS = ("chain_updates", "chain_values", "tokens_10k", "agent")


@dataclasses.dataclass(frozen=True)
class Plan:
    """How often to run a workload: ``rounds`` subprocesses of ``reps`` timed runs each."""

    rounds: int
    reps: int
    warmup: int


FULL: dict[str, Plan] = {
    "chain_updates": Plan(2, 25, 3),
    "chain_values": Plan(2, 25, 3),
    "fanout": Plan(2, 25, 3),
    "custom_10k": Plan(2, 10, 2),
    "custom_1m": Plan(3, 1, 1),
    "paced": Plan(2, 5, 1),
    "tokens_10k": Plan(2, 5, 1),
    "paced_tokens": Plan(2, 5, 1),
    "agent": Plan(2, 100, 10),
}
QUICK: dict[str, Plan] = {
    "chain_updates": Plan(1, 10, 2),
    "chain_values": Plan(1, 10, 2),
    "fanout": Plan(1, 10, 2),
    "custom_10k": Plan(1, 3, 1),
    "paced": Plan(1, 2, 1),
    "tokens_10k": Plan(1, 2, 1),
    "paced_tokens": Plan(1, 2, 1),
    "agent": Plan(1, 30, 5),
}


# --- running workers ----------------------------------------------------------------------


_SOURCE: dict[str, str] = {}  # "path": the otelstream src/ directory workers import, if not the installed one


def _clean_env() -> dict[str, str]:
    # configuration (a) is "no setup": no OTEL_*/OTELSTREAM_* settings leak in from the shell
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELSTREAM_"))}
    if "path" in _SOURCE:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_SOURCE["path"], env.get("PYTHONPATH")) if p)
    return env


def _git(*args: str) -> str:
    # read-only git commands only
    done = subprocess.run(["git", "--no-optional-locks", *args], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


@contextmanager
def _source(rev: str | None, src: Path | None) -> Iterator[str]:
    """Point the workers at the otelstream to measure; yield a description of it."""
    if src is not None:
        _SOURCE["path"] = str(src.resolve())
        yield f"otelstream from {src}"
        return
    if rev is None:
        dirty = bool(_git("status", "--porcelain", "--", "src"))
        head = _git("rev-parse", "--short", "HEAD") or "?"
        yield f"working tree at {head}" + (" with uncommitted changes in src/" if dirty else "")
        return
    commit = _git("rev-parse", "--short", rev)
    if not commit:
        raise SystemExit(f"unknown git revision {rev!r}")
    with tempfile.TemporaryDirectory(prefix="otelstream-bench-") as tmp:
        archive = subprocess.run(["git", "archive", commit, "src"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        _SOURCE["path"] = str(Path(tmp) / "src")
        try:
            yield f"git {commit} (src/ exported with git archive)"
        finally:
            _SOURCE.pop("path", None)


@contextmanager
def receiver_process(enabled: bool, env: dict[str, str]) -> Iterator[None]:
    """Start ``bench/receiver.py`` and point ``env``'s OTLP endpoint at it (if ``enabled``)."""
    if not enabled:
        yield
        return
    process = subprocess.Popen(
        [sys.executable, str(BENCH / "receiver.py")], cwd=ROOT, stdout=subprocess.PIPE, text=True, env=_clean_env()
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("port="):
            raise RuntimeError(f"the OTLP receiver did not start: {line!r}")
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{int(line.strip().split('=')[1])}"
        env["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf"
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _run_worker(config: str, workload: str, plan: Plan) -> dict[str, Any]:
    command = [
        sys.executable,
        str(BENCH / "worker.py"),
        config,
        workload,
        "--reps",
        str(plan.reps),
        "--warmup",
        str(plan.warmup),
    ]
    env = _clean_env()

    with receiver_process(config in ("otlp", "plugin-otlp"), env):
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return result
    # a failing pair (e.g. a mode the measured otelstream lacks) is reported, not fatal
    tail = "\n".join((done.stdout + "\n" + done.stderr).strip().splitlines()[-5:])
    return {"config": config, "workload": workload, "error": tail or f"exit status {done.returncode}"}


def _merge(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    failed = [r for r in rounds if "error" in r]
    if failed:
        return {"config": rounds[0]["config"], "workload": rounds[0]["workload"], "error": failed[0]["error"]}
    merged: dict[str, Any] = {
        "config": rounds[0]["config"],
        "workload": rounds[0]["workload"],
        "rounds": len(rounds),
        "seconds": [s for r in rounds for s in r["seconds"]],
        "chunks": [c for r in rounds for c in r["chunks"]],
        "maxrss_growth_bytes": [r["maxrss_growth_bytes"] for r in rounds],
    }
    if "floor_seconds" in rounds[0]:
        merged["floor_seconds"] = [s for r in rounds for s in r["floor_seconds"]]
    if "traced_spans" in rounds[0]:
        merged["traced_spans"] = [n for r in rounds for n in r["traced_spans"]]
    if "p99_us" in rounds[0]:
        merged["p50_us"] = [p for r in rounds for p in r["p50_us"]]
        merged["p99_us"] = [p for r in rounds for p in r["p99_us"]]
    if "exported" in rounds[0]:
        merged["exported"] = {k: sum(r["exported"].get(k, 0) for r in rounds) for k in rounds[0]["exported"]}
        merged["dropped"] = sum(r["dropped"] for r in rounds)
        merged["counts_ok"] = all(r["counts_ok"] for r in rounds)
    return merged


def measure(workloads: Sequence[str], configs: Sequence[str], plans: dict[str, Plan]) -> dict[str, dict[str, Any]]:
    """Run every pair; return ``{workload: {config: merged result}}``."""
    results: dict[str, dict[str, Any]] = {}
    for workload in workloads:
        plan = plans[workload]
        pairs = [
            c for c in configs if (c != "langgraph-traced" and c not in PLUGIN_CONFIGS) or workload in TRACED_WORKLOADS
        ]
        rounds: dict[str, list[dict[str, Any]]] = {c: [] for c in pairs}
        for round_no in range(plan.rounds):
            for config in pairs:
                started = time.perf_counter()
                result = _run_worker(config, workload, plan)
                rounds[config].append(result)
                print(
                    f"  {workload:<14} {config:<12} round {round_no + 1}/{plan.rounds}: "
                    f"{_quick_summary(workload, result)} ({time.perf_counter() - started:.1f}s)",
                    file=sys.stderr,
                    flush=True,
                )
        results[workload] = {c: _merge(rounds[c]) for c in pairs}
        for merged in results[workload].values():
            if "exported" in merged:
                merged["expected_spans_per_run"] = SPANS_PER_RUN[workload]
    return results


def _quick_summary(workload: str, result: dict[str, Any]) -> str:
    if "error" in result:
        return "FAILED: " + result["error"].splitlines()[-1][:200]
    if "p99_us" in result:
        return f"p99 {statistics.median(result['p99_us']):.0f} µs"
    median = statistics.median(result["seconds"])
    return f"median {median * 1e3:.2f} ms"


# --- figures --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Metric:
    """One table row: how to get per-repetition values from a result, and which way is better."""

    workload: str
    label: str
    unit: str
    values: Callable[[dict[str, Any]], list[float]]
    higher_is_better: bool = False
    fmt: str = "{:.1f}"


def _per_unit_us(workload: str) -> Callable[[dict[str, Any]], list[float]]:
    divisor = WORKLOADS[workload].unit_divisor
    return lambda r: [s / divisor * 1e6 for s in r["seconds"]]


def _rate(workload: str) -> Callable[[dict[str, Any]], list[float]]:
    size = WORKLOADS[workload].size
    return lambda r: [size / s for s in r["seconds"]]


METRICS = [
    Metric("chain_updates", "(1) chain of 100 nodes, updates", "µs/node step", _per_unit_us("chain_updates")),
    Metric("chain_values", "(1) chain of 100 nodes, values", "µs/node step", _per_unit_us("chain_values")),
    Metric("fanout", "(2) 50 parallel nodes (Send), updates", "µs/task", _per_unit_us("fanout")),
    Metric(
        "custom_10k", "(3) 10,000 custom events", "events/s", _rate("custom_10k"), higher_is_better=True, fmt="{:,.0f}"
    ),
    Metric(
        "custom_1m", "(3) 1,000,000 custom events", "events/s", _rate("custom_1m"), higher_is_better=True, fmt="{:,.0f}"
    ),
    Metric(
        "custom_1m",
        "(3) 1,000,000 custom events",
        "MB peak RSS growth",
        lambda r: [b / 2**20 for b in r["maxrss_growth_bytes"]],
    ),
    Metric(
        "tokens_10k",
        "(4) LLM call, 10,000 tokens, messages",
        "tokens/s",
        _rate("tokens_10k"),
        higher_is_better=True,
        fmt="{:,.0f}",
    ),
    Metric("paced", "(5) 1,000 custom events at 1/ms", "µs emit→yield p50", lambda r: list(r["p50_us"])),
    Metric("paced", "(5) 1,000 custom events at 1/ms", "µs emit→yield p99", lambda r: list(r["p99_us"])),
    Metric("paced_tokens", "(5) 1,000 tokens at 1/ms, messages", "µs emit→yield p50", lambda r: list(r["p50_us"])),
    Metric("paced_tokens", "(5) 1,000 tokens at 1/ms, messages", "µs emit→yield p99", lambda r: list(r["p99_us"])),
    Metric("agent", "(6) agent loop, 5 modes at once", "µs/run", _per_unit_us("agent")),
]


def _stats(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def _ratio(metric: Metric, ours: float, theirs: float) -> float:
    if metric.higher_is_better:
        return theirs / ours if ours else math.inf
    return ours / theirs if theirs else math.inf


def _figure(metric: Metric, values: list[float]) -> str:
    low, mid, high = _stats(values)
    f = metric.fmt
    if len(values) == 1:
        return f.format(mid)
    return f"{f.format(mid)} ({f.format(low)}–{f.format(high)})"


def _cell(results: dict[str, dict[str, Any]], metric: Metric, config: str) -> dict[str, Any] | None:
    """The merged result of a pair, or ``None`` if it was not run or failed."""
    cell = results.get(metric.workload, {}).get(config)
    return None if cell is None or "error" in cell else cell


def _failed(results: dict[str, dict[str, Any]], metric: Metric, config: str) -> bool:
    return "error" in results.get(metric.workload, {}).get(config, {})


def table(results: dict[str, dict[str, Any]], configs: Sequence[str], markdown: bool) -> str:
    """Render the results as a text (or Markdown) table."""
    others = [c for c in configs if c != "langgraph"]
    header = ["workload", "unit", CONFIG_TITLES["langgraph"]]
    for config in others:
        header += [CONFIG_TITLES[config], "ratio"]
    rows: list[list[str]] = []
    for metric in METRICS:
        lg = _cell(results, metric, "langgraph")
        if metric.workload not in results:
            rows.append([metric.label, metric.unit, "not run"] + ["", ""] * len(others))
            continue
        lg_figure = _figure(metric, metric.values(lg)) if lg else "—"
        row = [metric.label, metric.unit, "failed" if _failed(results, metric, "langgraph") else lg_figure]
        for config in others:
            ours = _cell(results, metric, config)
            if ours is None:
                row += ["failed" if _failed(results, metric, config) else "—", ""]
                continue
            ours_values = metric.values(ours)
            row.append(_figure(metric, ours_values))
            if lg is None:
                row.append("")
                continue
            theirs = statistics.median(metric.values(lg))
            ratio = _ratio(metric, statistics.median(ours_values), theirs)
            row.append(f"{ratio:.2f}×" if theirs >= 0.05 or metric.higher_is_better else "n/a")
        rows.append(row)
    return _render(header, rows, markdown)


def _render(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


# --- targets and export checks --------------------------------------------------------------


def _median(results: dict[str, dict[str, Any]], metric: Metric, config: str) -> float | None:
    cell = _cell(results, metric, config)
    return statistics.median(metric.values(cell)) if cell else None


def _metric(workload: str, unit: str) -> Metric:
    return next(m for m in METRICS if m.workload == workload and m.unit == unit)


def targets(results: dict[str, dict[str, Any]]) -> list[tuple[str, str, bool | None]]:
    """Return ``(target, measured, met)`` for each target of the issue (``None``: not measured)."""
    out: list[tuple[str, str, bool | None]] = []

    def ratio_target(workload: str, unit: str, config: str, limit: float, title: str) -> None:
        metric = _metric(workload, unit)
        ours, theirs = _median(results, metric, config), _median(results, metric, "langgraph")
        if ours is None or theirs is None:
            out.append((title, "not measured", None))
            return
        ratio = _ratio(metric, ours, theirs)
        out.append(
            (title, f"{ratio:.2f}× ({metric.fmt.format(ours)} vs {metric.fmt.format(theirs)} {unit})", ratio <= limit)
        )

    for workload in ("chain_updates", "chain_values"):
        mode = workload.split("_")[1]
        ratio_target(workload, "µs/node step", "none", 0.5, f"node step ({mode}) ≤ 0.5×, no export")
        ratio_target(workload, "µs/node step", "otlp", 1.0, f"node step ({mode}) ≤ 1.0×, real OTLP export")
    for config in ("none", "null-export", "otlp"):
        ratio_target("agent", "µs/run", config, 1.0, f"agent loop, 5 modes ≤ 1.0×, {CONFIG_TITLES[config]}")
    for workload in ("custom_10k", "custom_1m"):
        metric = _metric(workload, "events/s")
        for config in ("null-export", "otlp"):
            title = f"{WORKLOADS[workload].title}: ≥ 100,000/s exported, 0 dropped, {CONFIG_TITLES[config]}"
            cell = _cell(results, metric, config)
            rate = _median(results, metric, config)
            if cell is None or rate is None:
                out.append((title, "not measured", None))
                continue
            ok = rate >= 100_000 and cell["dropped"] == 0 and cell["counts_ok"]
            out.append((title, f"{rate:,.0f}/s, {cell['dropped']} dropped", ok))
    tokens = _metric("tokens_10k", "tokens/s")
    for config in ("null-export", "otlp"):
        title = f"tokens/s ≥ LangGraph's (ratio ≤ 1.0×), exported, 0 dropped, {CONFIG_TITLES[config]}"
        cell = _cell(results, tokens, config)
        rate, theirs = _median(results, tokens, config), _median(results, tokens, "langgraph")
        if cell is None or rate is None or theirs is None:
            out.append((title, "not measured", None))
            continue
        ratio = _ratio(tokens, rate, theirs)
        ok = ratio <= 1.0 and cell["dropped"] == 0 and cell["counts_ok"]
        out.append((title, f"{ratio:.2f}× ({rate:,.0f} vs {theirs:,.0f} tokens/s), {cell['dropped']} dropped", ok))
    for workload, what in (("paced_tokens", "paced tokens"), ("paced", "paced custom events")):
        p99 = _metric(workload, "µs emit→yield p99")
        for config in ("none", "null-export", "otlp"):
            value = _median(results, p99, config)
            title = f"{what}: emit→yield p99 ≤ 250 µs, {CONFIG_TITLES[config]}"
            out.append(
                (title, "not measured" if value is None else f"{value:.0f} µs", None if value is None else value <= 250)
            )
    # the plugin exporting every stream event against OpenInference exporting spans only
    for workload, unit in (
        ("chain_updates", "µs/node step"),
        ("chain_values", "µs/node step"),
        ("tokens_10k", "tokens/s"),
        ("agent", "µs/run"),
    ):
        metric = _metric(workload, unit)
        peer = _median(results, metric, "langgraph-traced")
        for config in ("plugin-null-export", "plugin-otlp"):
            title = f"{metric.label}: plugin ≤ 1.0× LangGraph + OpenInference, {CONFIG_TITLES[config]}"
            ours = _median(results, metric, config)
            if ours is None or peer is None:
                out.append((title, "not measured", None))
                continue
            ratio = _ratio(metric, ours, peer)
            out.append(
                (title, f"{ratio:.2f}× ({metric.fmt.format(ours)} vs {metric.fmt.format(peer)} {unit})", ratio <= 1.0)
            )
    memory = _metric("custom_1m", "MB peak RSS growth")
    for config in ("null-export", "otlp"):
        value = _median(results, memory, config)
        title = f"1,000,000 custom events, export on: peak memory growth ≤ 16 MB, {CONFIG_TITLES[config]}"
        out.append(
            (title, "not measured" if value is None else f"{value:.1f} MB", None if value is None else value <= 16)
        )
    return out


def export_checks(results: dict[str, dict[str, Any]]) -> list[str]:
    """Compare exported counts with what was streamed; one line per mismatch (or one 'all ok')."""
    problems: list[str] = []
    checked = 0
    failed = []
    traced = []
    for workload, by_config in results.items():
        for config, result in by_config.items():
            if "error" in result:
                failed.append(f"FAILED {workload} {config}: {result['error'].splitlines()[-1][:300]}")
                continue
            if "traced_spans" in result:
                traced.append(f"{workload} {sorted(set(result['traced_spans']))}")
            if "exported" not in result:
                continue
            checked += 1
            exported = result["exported"]
            runs = len(result["seconds"])
            spans = result.get("expected_spans_per_run", SPANS_PER_RUN_BEFORE_MODELS[workload]) * runs
            streamed = sum(result["chunks"])
            if not result["counts_ok"] or exported.get("spans") != spans or result["dropped"]:
                problems.append(
                    f"{workload} {config}: streamed {streamed} chunks in {runs} runs; exported "
                    f"{exported.get('chunks')} chunk records, {exported.get('run_ends')} run-end records, "
                    f"{exported.get('spans')} spans (expected {spans}); dropped {result['dropped']}"
                )
    lines = problems or [
        f"export check: in all {checked} exporting (workload, configuration) pairs, chunk records = chunks "
        "streamed, one run-end record and the expected spans per run, 0 dropped"
    ]
    if traced:
        lines.append("traced peer: spans exported per run (OpenInference, flushed in the clock): " + "; ".join(traced))
    mismatched = [
        f"{workload} {config}: {sorted(set(result['chunks']))} chunks per run, LangGraph "
        f"{sorted(set(by_config['langgraph']['chunks']))}"
        for workload, by_config in results.items()
        if "chunks" in by_config.get("langgraph", {})
        for config, result in by_config.items()
        if "chunks" in result and set(result["chunks"]) != set(by_config["langgraph"]["chunks"])
    ]
    lines += mismatched or ["stream check: every run of every configuration yielded as many chunks as LangGraph's"]
    return failed + lines


def token_floor(results: dict[str, dict[str, Any]]) -> list[str]:
    """(4): what the model and LangChain cost alone, and each engine's cost per token above that."""
    by_config = results.get("tokens_10k", {})
    floor = by_config.get("langgraph", {}).get("floor_seconds")
    if not floor:
        return []
    size = WORKLOADS["tokens_10k"].size
    floor_us = statistics.median(floor) / size * 1e6
    above = []
    for config in CONFIGS:
        cell = by_config.get(config)
        if cell and "seconds" in cell:
            us = statistics.median(cell["seconds"]) / size * 1e6
            above.append(f"{CONFIG_TITLES[config]} {us - floor_us:+.1f} µs")
    return [
        f"(4) floor: the model and LangChain's callback path alone (invoke() with a no-op streaming handler, no graph):"
        f" {size / statistics.median(floor):,.0f} tokens/s ({floor_us:.1f} µs/token); per token above it: "
        + ", ".join(above)
    ]


def traced_peer(results: dict[str, dict[str, Any]]) -> list[str]:
    """otelstream and the plugin against the traced peer (LangGraph + OpenInference) on the workloads it runs."""
    lines = []
    for metric in METRICS:
        peer = _median(results, metric, "langgraph-traced")
        if peer is None:
            continue
        ours = []
        for config in (*OTELSTREAM_CONFIGS, *PLUGIN_CONFIGS):
            value = _median(results, metric, config)
            if value is not None:
                ours.append(f"{CONFIG_TITLES[config]} {_ratio(metric, value, peer):.2f}×")
        if ours:
            lines.append(
                f"  {metric.label} ({metric.fmt.format(peer)} {metric.unit} traced): / traced peer: " + ", ".join(ours)
            )
    return (
        (["otelstream and the plugin vs the traced peer (LangGraph + OpenInference, ratio ≤ 1.00× = faster):", *lines])
        if lines
        else []
    )


def report(data: dict[str, Any], markdown: bool) -> str:
    results = data["results"]
    configs = [c for c in CONFIGS if any(c in r for r in results.values())]
    meta = data["meta"]
    lines = [
        f"otelstream vs LangGraph — {meta['date']} — {meta['mode']} run, {meta['elapsed_s']:.0f} s",
        f"Python {meta['python']}, otelstream {meta['otelstream']}, langgraph {meta['langgraph']}, "
        f"opentelemetry-sdk {meta['opentelemetry-sdk']}; otelstream code: {meta.get('source', '?')}",
        f"{meta['cpus']} CPUs, load average {meta['load_before']} before / {meta['load_after']} after (shared machine)",
        "figures: median (min–max) over repetitions; GC: gc.collect() before each repetition, enabled during",
        "ratio: otelstream/LangGraph for times, LangGraph/otelstream for throughput: ≤ 1.00× = as fast or faster",
        "",
        table(results, configs, markdown),
        "",
    ]
    lines += export_checks(results)
    lines += token_floor(results)
    if peer := traced_peer(results):
        lines += ["", *peer]
    lines.append("")
    lines.append("targets:")
    for title, measured, met in targets(results):
        verdict = "not measured" if met is None else "met" if met else "MISSED"
        lines.append(f"  [{verdict}] {title}: {measured}")
    return "\n".join(lines)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in ("otelstream", "langgraph", "opentelemetry-sdk"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = "?"
    return out


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions; skips the 1M-event workload")
    parser.add_argument("--only", nargs="+", choices=sorted(WORKLOADS), help="run these workloads only")
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "latest.json", help="where to save results")
    parser.add_argument("--merge", action="store_true", help="update --out with these results (e.g. a rerun)")
    parser.add_argument("--rev", help="measure otelstream's src/ at this git revision instead of the working tree")
    parser.add_argument("--src", type=Path, help="measure the otelstream package under this src/ directory")
    parser.add_argument("--table", type=Path, help="print the table of a saved results file; run nothing")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)

    if args.table is not None:
        print(report(json.loads(args.table.read_text()), args.markdown))
        return
    plans = QUICK if args.quick else FULL
    workloads = [w for w in (args.only or list(WORKLOADS)) if w in plans]
    configs = [c for c in CONFIGS if c in args.configs]
    load_before = _load()
    started = time.perf_counter()
    with _source(args.rev, args.src) as source:
        print(f"measuring {source}", file=sys.stderr, flush=True)
        results = measure(workloads, configs, plans)
    data: dict[str, Any] = {
        "meta": {
            "date": datetime.date.today().isoformat(),
            "source": source,
            "mode": "quick" if args.quick else "full",
            "elapsed_s": time.perf_counter() - started,
            "cpus": os.cpu_count(),
            "load_before": load_before,
            "load_after": _load(),
            **_versions(),
        },
        "results": results,
    }
    if args.merge and args.out.exists():
        previous = json.loads(args.out.read_text())
        for workload, by_config in results.items():
            previous["results"].setdefault(workload, {}).update(by_config)
        previous["meta"].setdefault("reruns", []).append({"workloads": workloads, **data["meta"]})
        data = previous
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1))
    print(report(data, args.markdown))


if __name__ == "__main__":
    main()
