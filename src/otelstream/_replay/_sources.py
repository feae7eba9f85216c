"""Reading telemetry from where it was exported.

Sources: the SDK's in-memory exporters, OTLP-JSON files, and a running Arize Phoenix server.
"""

from __future__ import annotations

import datetime
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from otelstream._otlp.json_document import attributes, load_document
from otelstream._otlp.records import Telemetry
from otelstream.errors import ReplaySourceError

__all__ = ["ReplaySourceError", "load"]

_MAX_FILE_BYTES = 512 * 1024 * 1024


def load(source: Any, *, project: str = "default", timeout: float = 30.0) -> Telemetry:
    """Read every otelstream record and run span from ``source``.

    Args:
        source: In-memory exporters or their finished spans/logs (a sequence, or a tuple of
            both), a path to an OTLP-JSON file, or a Phoenix server's ``http://`` URL.
        project: The Phoenix project to read.
        timeout: Seconds to wait for a Phoenix server's answers.

    Raises:
        ReplaySourceError: ``source`` cannot be read.
    """
    telemetry = Telemetry()
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        _load_phoenix(source, project, timeout, telemetry)
    elif isinstance(source, (str, os.PathLike)):
        _load_otlp_json_file(Path(source), telemetry)
    elif isinstance(source, dict):
        load_document(source, telemetry, "document")
    else:
        _load_in_memory(source, telemetry)
    return telemetry


# --- in-memory ------------------------------------------------------------------------------


def _load_in_memory(source: Any, telemetry: Telemetry) -> None:
    items: list[Any] = []
    for part in source if isinstance(source, (list, tuple)) else [source]:
        if hasattr(part, "get_finished_spans"):
            items.extend(part.get_finished_spans())
        elif hasattr(part, "get_finished_logs"):
            items.extend(part.get_finished_logs())
        elif isinstance(part, (list, tuple)):
            items.extend(part)
        else:
            items.append(part)
    for item in items:
        if hasattr(item, "log_record"):  # ReadableLogRecord
            record = item.log_record
            telemetry.add_record(
                record.event_name or "", dict(record.attributes or {}), record.timestamp or 0, "log record"
            )
        elif hasattr(item, "events") and hasattr(item, "context"):  # ReadableSpan
            attributes = dict(item.attributes or {})
            trace_id = format(item.context.trace_id, "032x") if item.context is not None else ""
            telemetry.add_span(item.name, attributes, trace_id, item.start_time or 0, item.end_time or 0)
            for event in item.events:
                telemetry.add_record(event.name, dict(event.attributes or {}), event.timestamp, "span event")
        else:
            raise ReplaySourceError(
                f"cannot replay from {type(item).__name__}: expected spans, log records, in-memory "
                "exporters, an OTLP-JSON file path or a Phoenix URL"
            )


# --- OTLP JSON ------------------------------------------------------------------------------


def _load_otlp_json_file(path: Path, telemetry: Telemetry) -> None:
    if not path.is_file():
        if path.is_dir():
            raise ReplaySourceError(f"{path} is a directory: pass the OTLP-JSON file in it (e.g. {path}/*.otlp.jsonl)")
        raise ReplaySourceError(f"no such file: {path}")
    if path.stat().st_size > _MAX_FILE_BYTES:
        raise ReplaySourceError(f"{path} is larger than {_MAX_FILE_BYTES} bytes")
    text = path.read_text(encoding="utf-8", errors="replace")
    documents: list[tuple[str, Any]] = []
    try:
        documents = [("whole file", json.loads(text))]
    except (ValueError, RecursionError):
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                documents.append((f"line {number}", json.loads(line)))
            except (ValueError, RecursionError) as exc:
                telemetry.problems.append(f"{path.name} line {number}: not JSON ({exc})")
    if not documents:
        raise ReplaySourceError(f"{path} holds no OTLP JSON")
    for where, document in documents:
        load_document(document, telemetry, where)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# --- Phoenix --------------------------------------------------------------------------------


def _load_phoenix(url: str, project: str, timeout: float, telemetry: Telemetry) -> None:
    base = url.rstrip("/")
    cursor: str | None = None
    for _ in range(10_000):  # bounded: 10,000 pages of 1,000 spans
        query = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
        address = f"{base}/v1/projects/{urllib.parse.quote(project)}/spans?{urllib.parse.urlencode(query)}"
        page = _get_json(address, timeout)
        for span in _list(page.get("data")):
            _load_phoenix_span(span, telemetry)
        cursor = page.get("next_cursor")
        if not cursor:
            return


def _get_json(address: str, timeout: float) -> dict[str, Any]:
    request = urllib.request.Request(address, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            document = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise ReplaySourceError(f"Phoenix answered {exc.code} for {address}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ReplaySourceError(f"cannot read {address}: {exc}") from None
    if not isinstance(document, dict):
        raise ReplaySourceError(f"{address} did not return a JSON object")
    return document


def _load_phoenix_span(span: Any, telemetry: Telemetry) -> None:
    if not isinstance(span, dict):
        return
    context = span.get("context")
    if not isinstance(context, dict):
        context = {}
    telemetry.add_span(
        str(span.get("name", "")),
        attributes(span.get("attributes")),
        str(context.get("trace_id", "")),
        _iso_nanos(span.get("start_time")),
        _iso_nanos(span.get("end_time")),
    )
    for event in _list(span.get("events")):
        if isinstance(event, dict):
            telemetry.add_record(
                str(event.get("name", "")),
                attributes(event.get("attributes")),
                _iso_nanos(event.get("timestamp")),
                "Phoenix span event",
            )


def _iso_nanos(value: Any) -> int:
    if not isinstance(value, str):
        return 0
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return 0
    return int(moment.timestamp() * 1e9)
