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

from otelstream._replay._model import Telemetry
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
        _load_otlp_document(source, telemetry, "document")
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
        _load_otlp_document(document, telemetry, where)


def _load_otlp_document(document: Any, telemetry: Telemetry, where: str) -> None:
    if not isinstance(document, dict):
        telemetry.problems.append(f"{where}: not an OTLP JSON object")
        return
    # Jaeger v2's API wraps the trace in "result", Tempo's in "trace" (or "batches")
    for wrapper in ("result", "trace", "data"):
        if isinstance(document.get(wrapper), dict):
            document = document[wrapper]
    resource_spans = _get(document, "resourceSpans", "resource_spans") or document.get("batches") or []
    resource_logs = _get(document, "resourceLogs", "resource_logs") or []
    if not resource_spans and not resource_logs:
        telemetry.problems.append(f"{where}: no resourceSpans or resourceLogs")
    for resource in _list(resource_spans):
        for scope in _list(_get(resource, "scopeSpans", "scope_spans", "instrumentationLibrarySpans")):
            for span in _list(_get(scope, "spans")):
                _load_otlp_span(span, telemetry, where)
    for resource in _list(resource_logs):
        for scope in _list(_get(resource, "scopeLogs", "scope_logs")):
            for record in _list(_get(scope, "logRecords", "log_records")):
                if not isinstance(record, dict):
                    continue
                name = _get(record, "eventName", "event_name") or ""
                attributes = _attributes(_get(record, "attributes"))
                telemetry.add_record(
                    str(name), attributes, _nanos(_get(record, "timeUnixNano", "time_unix_nano")), where
                )


def _load_otlp_span(span: Any, telemetry: Telemetry, where: str) -> None:
    if not isinstance(span, dict):
        return
    attributes = _attributes(_get(span, "attributes"))
    telemetry.add_span(
        str(span.get("name", "")),
        attributes,
        _trace_id(_get(span, "traceId", "trace_id")),
        _nanos(_get(span, "startTimeUnixNano", "start_time_unix_nano")),
        _nanos(_get(span, "endTimeUnixNano", "end_time_unix_nano")),
    )
    for event in _list(_get(span, "events")):
        if isinstance(event, dict):
            telemetry.add_record(
                str(event.get("name", "")),
                _attributes(_get(event, "attributes")),
                _nanos(_get(event, "timeUnixNano", "time_unix_nano")),
                where,
            )


def _get(node: Any, *keys: str) -> Any:
    if not isinstance(node, dict):
        return None
    for key in keys:
        if key in node:
            return node[key]
    return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _nanos(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _trace_id(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _attributes(items: Any) -> dict[str, Any]:
    if isinstance(items, dict):  # already a plain mapping (Phoenix's REST view)
        return dict(items)
    out: dict[str, Any] = {}
    for item in _list(items):
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            out[item["key"]] = _any_value(item.get("value"))
    return out


def _any_value(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    for key, convert in _SCALARS:
        if key in value:
            try:
                return convert(value[key])
            except (TypeError, ValueError):
                return value[key]  # malformed (an intValue that is no integer): reported downstream
    array = _get(value, "arrayValue", "array_value")
    if isinstance(array, dict):
        return [_any_value(v) for v in _list(array.get("values"))]
    kvlist = _get(value, "kvlistValue", "kvlist_value")
    if isinstance(kvlist, dict):
        return _attributes(kvlist.get("values"))
    return None


_SCALARS: tuple[tuple[str, Any], ...] = (
    ("stringValue", str),
    ("string_value", str),
    ("intValue", int),
    ("int_value", int),
    ("doubleValue", float),
    ("double_value", float),
    ("boolValue", bool),
    ("bool_value", bool),
    ("bytesValue", str),
    ("bytes_value", str),
)


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
        _attributes(span.get("attributes")),
        str(context.get("trace_id", "")),
        _iso_nanos(span.get("start_time")),
        _iso_nanos(span.get("end_time")),
    )
    for event in _list(span.get("events")):
        if isinstance(event, dict):
            telemetry.add_record(
                str(event.get("name", "")),
                _attributes(event.get("attributes")),
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
