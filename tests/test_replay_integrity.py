"""Replay does not trust forged telemetry: conflicting copies, impossible sequence numbers."""

from __future__ import annotations

import copy
import json
import operator
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict

import otelstream
from otelstream import START, StateGraph, get_stream_writer


class State(TypedDict):
    log: Annotated[list[str], operator.add]


def _graph() -> Any:
    def node(state: State) -> dict[str, Any]:
        for i in range(3):
            get_stream_writer()({"i": i})
        return {"log": ["done"]}

    builder = StateGraph(State)
    builder.add_node("node", node)
    builder.add_edge(START, "node")
    return builder.compile(name="forged")


def _exported(tmp_path: Path) -> tuple[Path, list[Any]]:
    path = tmp_path / "run.otlp.jsonl"
    otelstream.configure(export=otelstream.ExportOptions(file=str(path)))
    try:
        streamed = list(_graph().stream({"log": []}, stream_mode="custom"))
    finally:
        otelstream.shutdown()
        otelstream.configure()
    return path, streamed


def _stream_records(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        record
        for resource in document.get("resourceLogs", ())
        for scope in resource["scopeLogs"]
        for record in scope["logRecords"]
        if record.get("eventName") == "otelstream.custom"
    ]


def _attribute(record: dict[str, Any], key: str) -> dict[str, Any]:
    value: dict[str, Any] = next(a for a in record["attributes"] if a["key"] == key)["value"]
    return value


def _tamper(path: Path, change: Callable[[list[dict[str, Any]]], None]) -> None:
    # apply ``change`` to the list of custom records of the file's first logs document
    lines = path.read_text().splitlines()
    for index, line in enumerate(lines):
        document = json.loads(line)
        records = _stream_records(document)
        if records:
            change(document["resourceLogs"][0]["scopeLogs"][0]["logRecords"])
            lines[index] = json.dumps(document)
            break
    path.write_text("\n".join(lines) + "\n")


def _first_custom(records: list[dict[str, Any]]) -> dict[str, Any]:
    return next(r for r in records if r.get("eventName") == "otelstream.custom")


def _cli_replay(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "otelstream._cli", "replay", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_identical_duplicate_is_normal_at_least_once_delivery(tmp_path: Path) -> None:
    path, streamed = _exported(tmp_path)
    _tamper(path, lambda records: records.append(copy.deepcopy(_first_custom(records))))
    replayed = otelstream.replay(path)
    assert list(replayed) == streamed
    assert replayed.complete and replayed.conflicts == []
    assert any("identical" in note for note in replayed.notes)


def test_a_conflicting_copy_marks_the_run_incomplete_and_the_cli_fails(tmp_path: Path) -> None:
    path, _ = _exported(tmp_path)

    def forge(records: list[dict[str, Any]]) -> None:
        forged = copy.deepcopy(_first_custom(records))
        _attribute(forged, "otelstream.payload")["stringValue"] = json.dumps({"i": "forged"})
        records.append(forged)

    _tamper(path, forge)
    replayed = otelstream.replay(path)
    assert not replayed.complete
    assert replayed.conflicts == [0]
    assert any("conflicting copies" in note for note in replayed.notes)
    result = _cli_replay(path)
    assert result.returncode == 1
    assert "chunk 0 arrived in conflicting copies" in result.stderr


def test_sequence_numbers_outside_the_run_are_rejected_not_turned_into_gaps(tmp_path: Path) -> None:
    path, streamed = _exported(tmp_path)

    def forge(records: list[dict[str, Any]]) -> None:
        for seq in ("-1", str(10**30), "1000"):
            forged = copy.deepcopy(_first_custom(records))
            _attribute(forged, "otelstream.seq")["intValue"] = seq
            records.append(forged)

    _tamper(path, forge)
    replayed = otelstream.replay(path)
    assert list(replayed) == streamed
    assert replayed.gaps == []
    assert replayed.complete
    notes = " ".join(replayed.notes)
    assert "not a position in a stream" in notes  # -1 and 10**30: unreadable records
    assert "past the" in notes and "1000" in notes  # beyond the count the run's end record gives
