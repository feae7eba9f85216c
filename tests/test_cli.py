"""The otelstream command: demo, replay and runs, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from otelstream._cli import main

ROOT = Path(__file__).resolve().parent.parent


def _otelstream(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "otelstream._cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_user_errors_in_replay_are_one_line_and_status_2(tmp_path: Path) -> None:
    source = tmp_path / "run.otlp.jsonl"
    demo = _otelstream("demo", "--output", str(source), env={"OTEL_EXPORTER_OTLP_ENDPOINT": ""})
    assert demo.returncode == 0, demo.stderr
    bogus = _otelstream("replay", str(source), "--stream-mode", "bogus")
    assert bogus.returncode == 2
    assert bogus.stderr.strip().startswith("otelstream: error: Unknown stream_mode 'bogus'")
    assert "Traceback" not in bogus.stderr
    directory = _otelstream("replay", str(tmp_path))
    assert directory.returncode == 2
    assert f"otelstream: error: {tmp_path} is a directory" in directory.stderr


def test_a_failed_demo_keeps_the_previous_telemetry_file(tmp_path: Path) -> None:
    output = tmp_path / "demo.otlp.jsonl"
    output.write_text("the previous run's telemetry\n")
    demo = _otelstream(
        "demo", "--graph", "examples/ingest.py:typo", "--output", str(output), env={"OTEL_EXPORTER_OTLP_ENDPOINT": ""}
    )
    assert demo.returncode == 2
    assert "no compiled graph named 'typo'" in demo.stderr
    assert output.read_text() == "the previous run's telemetry\n"
    assert not (tmp_path / "demo.otlp.jsonl.partial").exists()


def test_demo_streams_three_modes_live_and_writes_replayable_telemetry(tmp_path: Path) -> None:
    output = tmp_path / "demo.otlp.jsonl"
    demo = _otelstream("demo", "--output", str(output), env={"OTEL_EXPORTER_OTLP_ENDPOINT": ""})
    assert demo.returncode == 0, demo.stderr
    lines = demo.stdout.splitlines()
    assert "Fetched 10/60 records  [10/60 records]" in demo.stdout
    assert any(line.startswith("summarize") and " updates " in line for line in lines)
    assert f"Telemetry written to {output}: 9 spans, 24 stream records" in demo.stdout
    assert f"otelstream replay {output} --subgraphs" in demo.stdout

    runs = _otelstream("runs", str(output))
    assert runs.returncode == 0, runs.stderr
    assert " ingest " in runs.stdout and " completed " in runs.stdout and " 24/24 " in runs.stdout

    replay = _otelstream("replay", str(output), "--subgraphs")
    assert replay.returncode == 0, replay.stderr
    chunks = [json.loads(line) for line in replay.stdout.splitlines()]
    assert [c["seq"] for c in chunks] == list(range(24))
    assert len({c["run_id"] for c in chunks}) == 1
    assert chunks[1] == {
        "run_id": chunks[0]["run_id"],
        "seq": 1,
        "ns": [],
        "mode": "custom",
        "chunk": {"progress": 10, "total": 60, "unit": "records", "message": "Fetched 10/60 records"},
    }
    assert {tuple(c["ns"])[0].split(":")[0] for c in chunks if c["ns"]} == {"summarize"}


def test_replay_reports_gaps_on_stderr_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "demo.otlp.jsonl"
    assert _otelstream("demo", "--output", str(output), env={"OTEL_EXPORTER_OTLP_ENDPOINT": ""}).returncode == 0
    documents = [json.loads(line) for line in output.read_text().splitlines()]
    for document in documents:  # drop the records of chunks 0 and 1
        for resource in document.get("resourceLogs", []):
            for scope in resource["scopeLogs"]:
                scope["logRecords"] = [
                    r
                    for r in scope["logRecords"]
                    if {"key": "otelstream.seq", "value": {"intValue": "0"}} not in r["attributes"]
                    and {"key": "otelstream.seq", "value": {"intValue": "1"}} not in r["attributes"]
                ]
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text("".join(json.dumps(d) + "\n" for d in documents))
    code = main(["replay", str(damaged), "--subgraphs"])
    err = capsys.readouterr().err
    assert code == 1
    assert err == "otelstream: gap: chunks 0..1 are missing\n"


def test_errors_are_one_line_without_traceback(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["replay", str(tmp_path / "nope.jsonl")]) == 2
    assert capsys.readouterr().err == f"otelstream: error: no such file: {tmp_path / 'nope.jsonl'}\n"
    assert main(["demo", "--graph", str(tmp_path / "missing.py:graph")]) == 2
    assert "graph file" in capsys.readouterr().err


def test_replay_of_a_thread_prints_each_run_in_order(tmp_path: Path) -> None:
    db, telemetry = tmp_path / "threads.db", tmp_path / "approval.otlp.jsonl"
    example = Path(__file__).resolve().parent.parent / "examples" / "approval.py"
    common = ["--db", str(db), "--telemetry", str(telemetry), "--thread", "refund-7"]
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": ""}
    for answer in ("", "approve"):  # two processes: stop at the question, then resume
        done = subprocess.run(
            [sys.executable, str(example), *common, "--answer", answer],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    assert "Decision: approved" in done.stdout

    runs = _otelstream("runs", str(telemetry), "--thread", "refund-7")
    assert runs.returncode == 0, runs.stderr
    assert [line.split()[4] for line in runs.stdout.splitlines()[1:]] == ["interrupted", "completed"]
    replay = _otelstream("replay", str(telemetry), "--thread", "refund-7")
    assert replay.returncode == 0, replay.stderr
    chunks = [json.loads(line) for line in replay.stdout.splitlines()]
    run_ids = list(dict.fromkeys(c["run_id"] for c in chunks))
    assert len(run_ids) == 2
    first = [c for c in chunks if c["run_id"] == run_ids[0]]
    second = [c for c in chunks if c["run_id"] == run_ids[1]]
    assert first[-1]["mode"] == "updates" and "__interrupt__" in first[-1]["chunk"]
    assert second[-1] == {
        "run_id": run_ids[1],
        "seq": len(second) - 1,
        "ns": [],
        "mode": "updates",
        "chunk": {"notify": {"log": ["customer notified (approved)"]}},
    }
