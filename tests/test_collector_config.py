"""Offline checks of collector/otelcol.yaml (no collector binary runs here; see collector/README.md).

Every check is a function returning a list of problems, so each one is run twice: on the real
config (no problems) and on a copy broken on purpose (``test_check_catches_broken_config``), which
shows that the check can fail. Event and attribute names come from ``otelstream.telemetry.semconv``
and the engine's stream modes, so renaming one in the contract breaks this test until the
collector config follows.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlsplit

import pytest
import yaml

from otelstream.engine.events import Outcome
from otelstream.engine.progress import progress_chunk
from otelstream.engine.types import STREAM_MODES
from otelstream.telemetry import semconv
from otelstream.telemetry.codec import encode

ROOT = Path(__file__).resolve().parent.parent
CONFIG_PATH = ROOT / "collector" / "otelcol.yaml"
COMPONENTS_PATH = ROOT / "collector" / "components-v0.159.0.txt"
README_PATH = ROOT / "collector" / "README.md"
TELEMETRY_DOC_PATH = ROOT / "docs" / "telemetry.md"

Config = dict[str, Any]
Check = Callable[[Config], list[str]]

KINDS = ("receivers", "processors", "exporters", "connectors", "extensions")
TOP_LEVEL_KEYS = frozenset((*KINDS, "service"))
SIGNALS = frozenset(("traces", "metrics", "logs", "profiles"))

# --- the telemetry contract -----------------------------------------------------------------

CONTRACT_EVENT_NAMES = frozenset({semconv.event_name(mode) for mode in STREAM_MODES} | {semconv.RUN_END_EVENT})
CONTRACT_ATTRIBUTES = frozenset(
    {
        semconv.SEQ,
        semconv.RUN_ID,
        semconv.MODE,
        semconv.NAMESPACE,
        semconv.GRAPH,
        semconv.NODE,
        semconv.PAYLOAD,
        semconv.PAYLOAD_SIZE,
        semconv.PAYLOAD_TRUNCATED,
        semconv.EVENT_COUNT,
        semconv.DROPPED,
        semconv.OUTCOME,
        semconv.STEP,
        semconv.TASK_ID,
        semconv.STREAM_MODES,
        semconv.MODES_TAGGED,
        semconv.SUBGRAPHS,
        semconv.GEN_AI_OPERATION_NAME,
        semconv.GEN_AI_WORKFLOW_NAME,
        semconv.GEN_AI_CONVERSATION_ID,
        semconv.ERROR_TYPE,
    }
    | {f"{semconv.DROPPED}.{mode}" for mode in STREAM_MODES}
)
CONTRACT_VALUES: dict[str, frozenset[str]] = {
    semconv.GEN_AI_OPERATION_NAME: frozenset((semconv.OPERATION_INVOKE_WORKFLOW, semconv.OPERATION_INVOKE_NODE)),
    semconv.OUTCOME: frozenset(get_args(Outcome)),
}
PROGRESS_KEYS = frozenset(progress_chunk(1, 2, unit="records", message="1/2"))
PROGRESS_PAYLOADS = (
    encode(progress_chunk(10, 100, unit="records", message="Fetched 10/100 records")),
    encode(progress_chunk(2.5)),
    encode(progress_chunk(0, 0)),
)

# --- collector facts this config relies on ----------------------------------------------------

DERIVED_METRIC_PREFIX = "otelstream.derived."
# (exporter-pipeline signal, receiver-pipeline signal) pairs each connector type supports
CONNECTOR_SIGNALS: dict[str, frozenset[tuple[str, str]]] = {
    "forward": frozenset((signal, signal) for signal in ("traces", "metrics", "logs")),
    "count": frozenset((signal, "metrics") for signal in ("traces", "metrics", "logs")),
    "signal_to_metrics": frozenset((signal, "metrics") for signal in ("traces", "metrics", "logs")),
}
METRIC_DERIVING_CONNECTORS = frozenset(("count", "signal_to_metrics"))
# processors that neither drop nor change data: allowed before a metric-deriving connector
NON_MUTATING_PROCESSORS = frozenset(("memory_limiter",))
PROMETHEUS_EXPORTERS = frozenset(("prometheus", "prometheus_remote_write"))
BATCHING_EXPORTERS = frozenset(("otlp_grpc", "otlp_http"))
# the count connector emits its default metric for every section it is not given
COUNT_SECTIONS = {"traces": ("spans", "spanevents"), "logs": ("logs",), "metrics": ("metrics", "datapoints")}
DEPRECATED: dict[str, dict[str, str]] = {
    "exporters": {
        "otlp": "otlp_grpc",
        "otlphttp": "otlp_http",
        "prometheusremotewrite": "prometheus_remote_write",
        "loki": "otlp_http to Loki's /otlp endpoint",
        "logging": "debug",
        "jaeger": "otlp_grpc to Jaeger",
        "loadbalancing": "load_balancing",
    },
    "connectors": {"spanmetrics": "span_metrics", "signaltometrics": "signal_to_metrics"},
    "processors": {
        "batch": "exporter-side sending_queue.batch",
        "deltatocumulative": "delta_to_cumulative",
        "cumulativetodelta": "cumulative_to_delta",
        "spanmetrics": "the span_metrics connector",
    },
    "receivers": {"filelog": "file_log"},
    "extensions": {},
}
ENDPOINT_KEYS = frozenset(("endpoint", "traces_endpoint", "logs_endpoint", "metrics_endpoint", "host"))
LOOPBACK_HOSTS = frozenset(("127.0.0.1", "localhost", "::1"))

# --- OTTL scraping ------------------------------------------------------------------------------

ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
NAME_COMPARISON = re.compile(r'(?<![\w.])(?:spanevent\.|log\.)?(event_name|name)\s*(?:==|!=)\s*"([^"\\]*)"')
ATTRIBUTE_REF = re.compile(r'attributes\["([^"\\]*)"\]')
ATTRIBUTE_VALUE = re.compile(r'attributes\["([^"\\]*)"\]\s*(?:==|!=)\s*"([^"\\]*)"')
CONTRACT_LITERAL = re.compile(r'"(' + re.escape(semconv.EVENT_PREFIX) + r'[^"\\]*)"')
NAME_MATCH = re.compile(r'IsMatch\(\s*(?:spanevent\.|log\.)?(event_name|name)\s*,\s*"((?:[^"\\]|\\.)*)"\s*\)')
PAYLOAD_MATCH = re.compile(
    r'IsMatch\(\s*(?:spanevent\.|log\.)?attributes\["'
    + re.escape(semconv.PAYLOAD)
    + r'"\]\s*,\s*"((?:[^"\\]|\\.)*)"\s*\)'
)
PAYLOAD_KEY = re.compile(
    r'ParseJSON\(\s*(?:log\.)?attributes\["' + re.escape(semconv.PAYLOAD) + r'"\]\s*\)\s*\[\s*"([^"\\]*)"\s*\]'
)
PARSE_JSON = re.compile(r"ParseJSON\(")
FUNCTION_CALL = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\(")


# --- loading ------------------------------------------------------------------------------------


def load_config(path: Path = CONFIG_PATH) -> Config:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), f"{path} is not a YAML mapping"
    return loaded


@functools.cache
def pinned_components() -> dict[str, frozenset[str]]:
    """Read collector/components-v0.159.0.txt: ``<kind> <type> <module>`` lines."""
    found: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for number, raw in enumerate(COMPONENTS_PATH.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        assert len(parts) == 3, f"{COMPONENTS_PATH.name}:{number}: expected '<kind> <type> <module>', got {raw!r}"
        kind, type_, _module = parts
        assert f"{kind}s" in found, f"{COMPONENTS_PATH.name}:{number}: unknown kind {kind!r}"
        found[f"{kind}s"].add(type_)
    return {kind: frozenset(types) for kind, types in found.items()}


@functools.cache
def readme_text() -> str:
    return README_PATH.read_text(encoding="utf-8")


@functools.cache
def app_metric_names() -> frozenset[str]:
    """The metrics otelstream itself emits: the table in docs/telemetry.md, section "Metrics"."""
    section = TELEMETRY_DOC_PATH.read_text(encoding="utf-8").split("\n## Metrics", 1)[1]
    names = frozenset(re.findall(r"^\| `(otelstream\.[a-z_.]+)`", section, flags=re.MULTILINE))
    assert semconv.METRIC_DROPPED in names, "docs/telemetry.md's metrics table was not found"
    return names


# --- helpers ------------------------------------------------------------------------------------


def component_type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def pipelines(cfg: Config) -> dict[str, dict[str, Any]]:
    found = cfg.get("service", {}).get("pipelines", {})
    return found if isinstance(found, dict) else {}


def pipeline_list(pipeline: dict[str, Any], role: str) -> list[str]:
    value = pipeline.get(role) or []
    return [str(item) for item in value]


def section(cfg: Config, kind: str) -> dict[str, Any]:
    found = cfg.get(kind) or {}
    return found if isinstance(found, dict) else {}


def walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Yield ``(path, value)`` for every scalar in ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, f"[{index}]"))
    else:
        yield path, node


def expand_env(value: str) -> str:
    """Replace every ``${env:NAME:-default}`` with its default (what runs when NAME is unset)."""
    return ENV_REF.sub(lambda match: match.group(2) or "", value)


def ottl_unescape(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal)


def ottl_strings(cfg: Config) -> list[tuple[str, str]]:
    """Every OTTL condition, statement and value expression in the config, with where it is."""
    found: list[tuple[str, str]] = []
    for component_id, body in section(cfg, "processors").items():
        type_ = component_type(component_id)
        if type_ == "filter":
            for path, value in walk(body):
                if isinstance(value, str) and path[-1] != "error_mode" and "error_mode" not in path:
                    found.append((f"processors.{component_id}.{'.'.join(path)}", value))
        elif type_ == "transform":
            for path, value in walk(body):
                if isinstance(value, str) and path[-1] not in ("error_mode", "context"):
                    found.append((f"processors.{component_id}.{'.'.join(path)}", value))
    for component_id, body in section(cfg, "connectors").items():
        type_ = component_type(component_id)
        if type_ == "count" and isinstance(body, dict):
            for kind, metrics in body.items():
                for metric, info in (metrics or {}).items():
                    for index, condition in enumerate((info or {}).get("conditions") or []):
                        found.append((f"connectors.{component_id}.{kind}.{metric}.conditions[{index}]", str(condition)))
        elif type_ == "signal_to_metrics" and isinstance(body, dict):
            for kind, metrics in body.items():
                for info in metrics or []:
                    where = f"connectors.{component_id}.{kind}.{info.get('name')}"
                    for index, condition in enumerate(info.get("conditions") or []):
                        found.append((f"{where}.conditions[{index}]", str(condition)))
                    for metric_type in ("sum", "gauge", "histogram", "exponential_histogram"):
                        for field in ("value", "count"):
                            expression = (info.get(metric_type) or {}).get(field)
                            if expression is not None:
                                found.append((f"{where}.{metric_type}.{field}", str(expression)))
    return found


def derived_metrics(cfg: Config) -> list[tuple[str, str]]:
    """``(connector id, metric name)`` for every metric the connectors define."""
    found: list[tuple[str, str]] = []
    for component_id, body in section(cfg, "connectors").items():
        type_ = component_type(component_id)
        if type_ == "count" and isinstance(body, dict):
            for metrics in body.values():
                found.extend((component_id, str(name)) for name in metrics or {})
        elif type_ == "signal_to_metrics" and isinstance(body, dict):
            for metrics in body.values():
                found.extend((component_id, str(info.get("name"))) for info in metrics or [])
    return found


def connector_usage(cfg: Config, connector_id: str) -> tuple[set[str], set[str]]:
    """The signals of the pipelines ``connector_id`` exports from, and of those it receives into."""
    exported_from = {
        component_type(name) for name, p in pipelines(cfg).items() if connector_id in pipeline_list(p, "exporters")
    }
    received_into = {
        component_type(name) for name, p in pipelines(cfg).items() if connector_id in pipeline_list(p, "receivers")
    }
    return exported_from, received_into


# --- checks: structure --------------------------------------------------------------------------


def check_top_level(cfg: Config) -> list[str]:
    problems = [f"unknown top-level key {key!r}" for key in cfg if key not in TOP_LEVEL_KEYS]
    problems += [
        f"missing top-level section {key!r}" for key in ("receivers", "exporters", "service") if key not in cfg
    ]
    if not pipelines(cfg):
        problems.append("service.pipelines is empty")
    for kind in KINDS:
        if kind in cfg and not isinstance(cfg[kind], dict):
            problems.append(f"{kind} is not a mapping")
    return problems


def check_references_defined(cfg: Config) -> list[str]:
    problems: list[str] = []
    allowed = {
        "receivers": set(section(cfg, "receivers")) | set(section(cfg, "connectors")),
        "processors": set(section(cfg, "processors")),
        "exporters": set(section(cfg, "exporters")) | set(section(cfg, "connectors")),
    }
    for name, pipeline in pipelines(cfg).items():
        if component_type(name) not in SIGNALS:
            problems.append(f"pipeline {name!r}: unknown signal {component_type(name)!r}")
        for role in ("receivers", "exporters"):
            if not pipeline_list(pipeline, role):
                problems.append(f"pipeline {name!r} has no {role}")
        for role, defined in allowed.items():
            used = pipeline_list(pipeline, role)
            problems += [
                f"pipeline {name!r}: {role[:-1]} {item!r} is not defined" for item in used if item not in defined
            ]
            problems += [
                f"pipeline {name!r}: {item!r} listed twice in {role}" for item in set(used) if used.count(item) > 1
            ]
    for extension in cfg.get("service", {}).get("extensions") or []:
        if extension not in section(cfg, "extensions"):
            problems.append(f"service.extensions: {extension!r} is not defined")
    return problems


def check_all_defined_used(cfg: Config) -> list[str]:
    used: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for pipeline in pipelines(cfg).values():
        for role in ("receivers", "processors", "exporters"):
            for item in pipeline_list(pipeline, role):
                used["connectors" if item in section(cfg, "connectors") else role].add(item)
    used["extensions"] = set(cfg.get("service", {}).get("extensions") or [])
    return [
        f"{kind}: {component_id!r} is defined but never used"
        for kind in KINDS
        for component_id in section(cfg, kind)
        if component_id not in used[kind]
    ]


def check_connectors(cfg: Config) -> list[str]:
    problems: list[str] = []
    for connector_id in section(cfg, "connectors"):
        type_ = component_type(connector_id)
        exported_from, received_into = connector_usage(cfg, connector_id)
        if not exported_from:
            problems.append(f"connector {connector_id!r} is not an exporter in any pipeline")
        if not received_into:
            problems.append(f"connector {connector_id!r} is not a receiver in any pipeline")
        supported = CONNECTOR_SIGNALS.get(type_)
        if supported is None:
            problems.append(f"connector {connector_id!r}: no signal table for type {type_!r} in this test")
            continue
        for source in sorted(exported_from):
            for target in sorted(received_into):
                if (source, target) not in supported:
                    problems.append(
                        f"connector {connector_id!r} cannot connect a {source} pipeline to a {target} pipeline"
                    )
    return problems


def check_pinned_types(cfg: Config) -> list[str]:
    pinned = pinned_components()
    return [
        f"{kind}: type {component_type(component_id)!r} ({component_id}) is not in {COMPONENTS_PATH.name}"
        for kind in KINDS
        for component_id in section(cfg, kind)
        if component_type(component_id) not in pinned[kind]
    ]


def check_no_deprecated(cfg: Config) -> list[str]:
    problems: list[str] = []
    for kind in KINDS:
        for component_id in section(cfg, kind):
            replacement = DEPRECATED[kind].get(component_type(component_id))
            if replacement is not None:
                problems.append(f"{kind}: {component_id!r} has a deprecated or removed type; use {replacement}")
    return problems


def check_exporter_batching(cfg: Config) -> list[str]:
    """Network exporters batch in their sending queue (the batch processor is being retired)."""
    return [
        f"exporter {component_id!r} has no sending_queue.batch"
        for component_id, body in section(cfg, "exporters").items()
        if component_type(component_id) in BATCHING_EXPORTERS
        and not (
            isinstance(body, dict) and isinstance(body.get("sending_queue"), dict) and "batch" in body["sending_queue"]
        )
    ]


# --- checks: endpoints and environment ---------------------------------------------------------


def endpoint_host(value: str) -> str:
    if "://" in value:
        return urlsplit(value).hostname or ""
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def check_endpoints(cfg: Config) -> list[str]:
    """Every address is loopback, literally or as the default of an ``${env:...}`` reference."""
    problems: list[str] = []
    found = 0
    for path, value in walk(cfg):
        if not path or path[-1] not in ENDPOINT_KEYS:
            continue
        found += 1
        where = ".".join(path)
        if not isinstance(value, str):
            problems.append(f"{where}: {value!r} is not a string")
            continue
        host = endpoint_host(expand_env(value))
        if host not in LOOPBACK_HOSTS:
            problems.append(f"{where}: {value!r} resolves to host {host!r} when its variable is unset, not loopback")
    if found < 4:
        problems.append(f"only {found} endpoint settings found: the walk no longer sees the config's addresses")
    return problems


def env_refs(cfg: Config) -> list[tuple[str, str, str | None]]:
    """``(where, variable, default)`` for every ``${env:...}`` reference."""
    return [
        (".".join(path), match.group(1), match.group(2))
        for path, value in walk(cfg)
        if isinstance(value, str)
        for match in ENV_REF.finditer(value)
    ]


def check_env_refs(cfg: Config) -> list[str]:
    """Every ``${...}`` is ``${env:NAME:-default}``, and one variable has one default."""
    problems: list[str] = []
    for path, value in walk(cfg):
        if isinstance(value, str) and value.count("${") != len(ENV_REF.findall(value)):
            problems.append(f"{'.'.join(path)}: {value!r} has a ${{...}} that is not ${{env:NAME:-default}}")
    defaults: dict[str, set[str | None]] = {}
    for where, name, default in env_refs(cfg):
        if not default:
            problems.append(f"{where}: ${{env:{name}}} has no default")
        defaults.setdefault(name, set()).add(default)
    problems += [
        f"${{env:{name}}} has different defaults: {sorted(map(str, seen))}"
        for name, seen in defaults.items()
        if len(seen) > 1
    ]
    return problems


# --- checks: contract names in OTTL and metric dimensions --------------------------------------


def check_ottl_names(cfg: Config) -> list[str]:
    problems: list[str] = []
    for where, text in ottl_strings(cfg):
        for field, name in NAME_COMPARISON.findall(text):
            if name not in CONTRACT_EVENT_NAMES:
                problems.append(f"{where}: {field} compared with {name!r}, not an event name of the contract")
        for attribute in ATTRIBUTE_REF.findall(text):
            if attribute not in CONTRACT_ATTRIBUTES:
                problems.append(f"{where}: attribute {attribute!r} is not in the telemetry contract")
        for attribute, value in ATTRIBUTE_VALUE.findall(text):
            allowed = CONTRACT_VALUES.get(attribute)
            if allowed is not None and value not in allowed:
                problems.append(f"{where}: {attribute} compared with {value!r}, not one of {sorted(allowed)}")
        for literal in CONTRACT_LITERAL.findall(text):
            if literal not in CONTRACT_EVENT_NAMES | CONTRACT_ATTRIBUTES:
                problems.append(f"{where}: string {literal!r} names nothing in the telemetry contract")
        for field, pattern in NAME_MATCH.findall(text):
            regex = re.compile(ottl_unescape(pattern))
            if not any(regex.search(name) for name in CONTRACT_EVENT_NAMES):
                problems.append(f"{where}: IsMatch({field}, {pattern!r}) matches no event name of the contract")
    return problems


def check_metric_attribute_keys(cfg: Config) -> list[str]:
    """The dimensions of derived metrics are attributes the contract puts on records, events and spans."""
    problems: list[str] = []
    for component_id, body in section(cfg, "connectors").items():
        type_ = component_type(component_id)
        if type_ == "count" and isinstance(body, dict):
            infos = [
                (f"{kind}.{metric}", info or {})
                for kind, metrics in body.items()
                for metric, info in (metrics or {}).items()
            ]
        elif type_ == "signal_to_metrics" and isinstance(body, dict):
            infos = [(f"{kind}.{info.get('name')}", info) for kind, metrics in body.items() for info in metrics or []]
        else:
            continue
        for where, info in infos:
            for attribute in info.get("attributes") or []:
                key = attribute.get("key")
                if key not in CONTRACT_ATTRIBUTES:
                    problems.append(
                        f"connectors.{component_id}.{where}: dimension {key!r} is not in the telemetry contract"
                    )
    return problems


def check_progress_parsing(cfg: Config) -> list[str]:
    """ParseJSON reads only progress-signal keys, behind guards that real progress payloads pass."""
    problems: list[str] = []
    for where, text in ottl_strings(cfg):
        if not PARSE_JSON.search(text):
            continue
        keys = PAYLOAD_KEY.findall(text)
        if len(keys) != len(PARSE_JSON.findall(text)):
            problems.append(f"{where}: ParseJSON of something other than attributes[{semconv.PAYLOAD!r}][key]")
        problems += [
            f"{where}: payload key {key!r} is not part of a progress signal {sorted(PROGRESS_KEYS)}"
            for key in keys
            if key not in PROGRESS_KEYS
        ]
    for where, text in ottl_strings(cfg):
        for pattern in PAYLOAD_MATCH.findall(text):
            regex = re.compile(ottl_unescape(pattern))
            for payload in PROGRESS_PAYLOADS:
                if not regex.search(payload):
                    problems.append(f"{where}: IsMatch guard {pattern!r} rejects the progress payload {payload}")
    for payload in PROGRESS_PAYLOADS:  # what the guards assume of otelstream's encoding
        decoded = json.loads(payload)
        if not isinstance(decoded, dict) or not isinstance(decoded.get("progress"), (int, float)):
            problems.append(f"otelstream encodes a progress signal as {payload}: not an object with a numeric progress")
    return problems


def check_ottl_functions_documented(cfg: Config) -> list[str]:
    """Each OTTL function the config calls is in the README's table (with the release that added it)."""
    readme = readme_text()
    called = {name for _, text in ottl_strings(cfg) for name in FUNCTION_CALL.findall(text)}
    return [
        f"OTTL function {name!r} is used but not listed in {README_PATH.name}"
        for name in sorted(called)
        if f"`{name}`" not in readme
    ]


# --- checks: pipeline semantics -----------------------------------------------------------------


def check_derivation_sees_raw_data(cfg: Config) -> list[str]:
    """Metrics are derived from what the application sent: no filter or transform before a connector that counts."""
    problems: list[str] = []
    for name, pipeline in pipelines(cfg).items():
        feeds = [
            item
            for item in pipeline_list(pipeline, "exporters")
            if item in section(cfg, "connectors") and component_type(item) in METRIC_DERIVING_CONNECTORS
        ]
        mutating = [
            item
            for item in pipeline_list(pipeline, "processors")
            if component_type(item) not in NON_MUTATING_PROCESSORS
        ]
        if feeds and mutating:
            problems.append(
                f"pipeline {name!r} runs {mutating} before {feeds}: count before filtering (forward connector)"
            )
    return problems


def check_count_before_filter(cfg: Config) -> list[str]:
    """A pipeline that filters is fed by a forward connector whose source pipelines also feed a counter."""
    problems: list[str] = []
    for name, pipeline in pipelines(cfg).items():
        if not any(component_type(item) == "filter" for item in pipeline_list(pipeline, "processors")):
            continue
        for receiver in pipeline_list(pipeline, "receivers"):
            if component_type(receiver) != "forward" or receiver not in section(cfg, "connectors"):
                problems.append(
                    f"pipeline {name!r} filters data received straight from {receiver!r}; nothing counted it first"
                )
                continue
            for source_name, source in pipelines(cfg).items():
                exporters = pipeline_list(source, "exporters")
                if receiver in exporters and not any(
                    component_type(item) in METRIC_DERIVING_CONNECTORS for item in exporters
                ):
                    problems.append(
                        f"pipeline {source_name!r} forwards to the filtering pipeline {name!r} without counting"
                    )
    return problems


def check_delta_before_prometheus(cfg: Config) -> list[str]:
    problems: list[str] = []
    for name, pipeline in pipelines(cfg).items():
        derived = [
            item for item in pipeline_list(pipeline, "receivers") if component_type(item) in METRIC_DERIVING_CONNECTORS
        ]
        to_prometheus = [
            item for item in pipeline_list(pipeline, "exporters") if component_type(item) in PROMETHEUS_EXPORTERS
        ]
        has_delta = any(component_type(item) == "delta_to_cumulative" for item in pipeline_list(pipeline, "processors"))
        if derived and to_prometheus and not has_delta:
            problems.append(
                f"pipeline {name!r} sends the delta sums of {derived} to {to_prometheus} without delta_to_cumulative"
            )
    return problems


def check_count_sections(cfg: Config) -> list[str]:
    """A count connector defines its own metrics for every section its pipelines feed (no default metrics)."""
    problems: list[str] = []
    for connector_id, body in section(cfg, "connectors").items():
        if component_type(connector_id) != "count":
            continue
        exported_from, _ = connector_usage(cfg, connector_id)
        for signal in sorted(exported_from):
            for wanted in COUNT_SECTIONS.get(signal, ()):
                if not isinstance(body, dict) or not body.get(wanted):
                    problems.append(
                        f"connector {connector_id!r} counts {signal} without {wanted!r} metrics: it emits a default one"
                    )
    return problems


def check_metric_names(cfg: Config) -> list[str]:
    """Derived metrics are named otelstream.derived.*, once each, never like otelstream's own metrics."""
    problems: list[str] = []
    names = [name for _, name in derived_metrics(cfg)]
    if not names:
        problems.append("no derived metrics found")
    for component_id, name in derived_metrics(cfg):
        if not name.startswith(DERIVED_METRIC_PREFIX):
            problems.append(f"connectors.{component_id}: metric {name!r} does not start with {DERIVED_METRIC_PREFIX!r}")
        if names.count(name) > 1:
            problems.append(f"connectors.{component_id}: metric {name!r} is defined more than once")
        if name in app_metric_names():
            problems.append(f"connectors.{component_id}: metric {name!r} is one otelstream emits itself")
    return problems


def check_requirements(cfg: Config) -> list[str]:
    """What the config is for: custom events counted from both carriers, progress gauges from payloads."""
    custom = semconv.event_name("custom")
    texts = ottl_strings(cfg)
    problems: list[str] = []
    counted = [(where, text) for where, text in texts if where.startswith("connectors.count/")]
    if not any(".spanevents." in where and f'name == "{custom}"' in text for where, text in counted):
        problems.append("no count connector counts custom span events")
    if not any(".logs." in where and f'event_name == "{custom}"' in text for where, text in counted):
        problems.append("no count connector counts custom log records")
    if not any(".gauge.value" in where and PAYLOAD_KEY.search(text) for where, text in texts):
        problems.append("no gauge reads a progress signal's payload")
    return problems


STRUCTURE_CHECKS: tuple[Check, ...] = (
    check_top_level,
    check_references_defined,
    check_all_defined_used,
    check_connectors,
    check_pinned_types,
    check_no_deprecated,
    check_exporter_batching,
    check_endpoints,
    check_env_refs,
    check_ottl_names,
    check_metric_attribute_keys,
    check_progress_parsing,
    check_ottl_functions_documented,
    check_derivation_sees_raw_data,
    check_count_before_filter,
    check_delta_before_prometheus,
    check_count_sections,
    check_metric_names,
    check_requirements,
)


# --- tests on the real config -------------------------------------------------------------------


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config()


def test_config_is_yaml_mapping(config: Config) -> None:
    assert set(config) <= TOP_LEVEL_KEYS


@pytest.mark.parametrize("check", STRUCTURE_CHECKS, ids=lambda check: check.__name__)
def test_config_passes(check: Check, config: Config) -> None:
    assert check(config) == []


def test_ottl_scraping_sees_the_config(config: Config) -> None:
    """The regexes find what they check, so a passing name check is not a vacuous one."""
    texts = ottl_strings(config)
    compared = {name for _, text in texts for _, name in NAME_COMPARISON.findall(text)}
    referenced = {attribute for _, text in texts for attribute in ATTRIBUTE_REF.findall(text)}
    assert semconv.event_name("custom") in compared
    assert semconv.RUN_END_EVENT in compared
    assert {semconv.PAYLOAD, semconv.PAYLOAD_SIZE, semconv.PAYLOAD_TRUNCATED} <= referenced
    assert {where.split(".")[1] for where, _ in texts} >= {
        "filter/drop_debug_span_events",
        "transform/cap_span_event_payloads",
        "count/otelstream_traces",
        "count/otelstream_logs",
        "signal_to_metrics/progress",
    }


def test_components_list_has_no_deprecated_names() -> None:
    pinned = pinned_components()
    assert not [(kind, type_) for kind in KINDS for type_ in pinned[kind] if type_ in DEPRECATED[kind]]


def test_readme_documents_variables_and_metrics(config: Config) -> None:
    readme = readme_text()
    for _, name, default in env_refs(config):
        assert f"`{name}`" in readme, f"{name} is not documented in {README_PATH.name}"
        assert f"`{default}`" in readme, f"the default of {name} ({default}) is not documented in {README_PATH.name}"
    for _, metric in derived_metrics(config):
        assert f"`{metric}`" in readme, f"metric {metric} is not documented in {README_PATH.name}"


def test_readme_names_how_to_run_and_validate() -> None:
    readme = readme_text()
    assert "otelcol-contrib --config collector/otelcol.yaml" in readme
    assert "otelcol-contrib validate --config=collector/otelcol.yaml" in readme
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in readme
    assert "OTELSTREAM_SPAN_EVENT_MODES" in readme


# --- each check fails on a config broken on purpose ---------------------------------------------


def rename_component(cfg: Config, kind: str, old: str, new: str) -> None:
    """Rename a component's definition and every pipeline reference to it."""
    cfg[kind][new] = cfg[kind].pop(old)
    for pipeline in pipelines(cfg).values():
        for role in ("receivers", "processors", "exporters"):
            if old in pipeline.get(role, []):
                pipeline[role] = [new if item == old else item for item in pipeline[role]]


def replace_in_strings(node: Any, old: str, new: str) -> Any:
    if isinstance(node, dict):
        return {key: replace_in_strings(value, old, new) for key, value in node.items()}
    if isinstance(node, list):
        return [replace_in_strings(value, old, new) for value in node]
    return node.replace(old, new) if isinstance(node, str) else node


def mutate_connector(cfg: Config, connector_id: str, old: str, new: str) -> None:
    cfg["connectors"][connector_id] = replace_in_strings(cfg["connectors"][connector_id], old, new)


def mutate_processor(cfg: Config, processor_id: str, old: str, new: str) -> None:
    cfg["processors"][processor_id] = replace_in_strings(cfg["processors"][processor_id], old, new)


def _undefined_exporter(cfg: Config) -> None:
    cfg["service"]["pipelines"]["traces/store"]["exporters"].append("otlp_grpc/zipkin")


def _unused_processor(cfg: Config) -> None:
    cfg["processors"]["transform/unused"] = {"trace_statements": []}


def _connector_dead_end(cfg: Config) -> None:
    cfg["service"]["pipelines"]["metrics/derived"]["receivers"].remove("signal_to_metrics/progress")


def _forward_across_signals(cfg: Config) -> None:
    cfg["service"]["pipelines"]["logs/store"]["receivers"] = ["forward/traces", "forward/logs"]


def _unpinned_type(cfg: Config) -> None:
    rename_component(cfg, "exporters", "prometheus", "prometheus_remote_write")


def _deprecated_exporter(cfg: Config) -> None:
    rename_component(cfg, "exporters", "otlp_grpc/tempo", "otlp/tempo")


def _deprecated_processor(cfg: Config) -> None:
    rename_component(cfg, "processors", "delta_to_cumulative", "deltatocumulative")


def _batch_processor(cfg: Config) -> None:
    cfg["processors"]["batch"] = {}
    cfg["service"]["pipelines"]["traces/store"]["processors"].append("batch")


def _exporter_without_batching(cfg: Config) -> None:
    del cfg["exporters"]["otlp_http/loki"]["sending_queue"]


def _wildcard_listener(cfg: Config) -> None:
    cfg["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] = "0.0.0.0:4317"


def _remote_default(cfg: Config) -> None:
    cfg["exporters"]["otlp_grpc/tempo"]["endpoint"] = "${env:TEMPO_OTLP_GRPC_ENDPOINT:-tempo.example.com:4317}"


def _env_without_default(cfg: Config) -> None:
    cfg["exporters"]["otlp_grpc/tempo"]["endpoint"] = "${env:TEMPO_OTLP_GRPC_ENDPOINT}"


def _unknown_event_name(cfg: Config) -> None:
    mutate_connector(cfg, "count/otelstream_traces", 'name == "otelstream.custom"', 'name == "otelstream.progress"')


def _unknown_log_event_name(cfg: Config) -> None:
    mutate_connector(
        cfg, "count/otelstream_logs", 'event_name == "otelstream.run.end"', 'event_name == "otelstream.run_end"'
    )


def _unknown_attribute(cfg: Config) -> None:
    mutate_processor(cfg, "transform/cap_span_event_payloads", '"otelstream.payload.size"', '"otelstream.payload_size"')


def _unknown_operation(cfg: Config) -> None:
    mutate_connector(cfg, "count/otelstream_traces", '== "invoke_node"', '== "invoke_task"')


def _unknown_name_pattern(cfg: Config) -> None:
    conditions = cfg["connectors"]["count/otelstream_traces"]["spanevents"]["otelstream.derived.span_events.custom"][
        "conditions"
    ]
    conditions.append('IsMatch(name, "^graph\\\\.progress")')


def _unknown_dimension(cfg: Config) -> None:
    mutate_connector(cfg, "count/otelstream_logs", "otelstream.graph", "otelstream.graph_name")


def _wrong_progress_key(cfg: Config) -> None:
    mutate_connector(cfg, "signal_to_metrics/progress", '["progress"])', '["done"])')


def _guard_rejects_progress(cfg: Config) -> None:
    mutate_connector(cfg, "signal_to_metrics/progress", '"^[{]"', '"^[\\\\[]"')


def _undocumented_function(cfg: Config) -> None:
    statements = cfg["processors"]["transform/cap_log_payloads"]["log_statements"][0]["statements"]
    statements.append('replace_pattern(attributes["otelstream.payload"], "secret", "***")')


def _filter_before_count(cfg: Config) -> None:
    cfg["service"]["pipelines"]["traces/in"]["processors"].append("filter/drop_debug_span_events")


def _filter_without_forward(cfg: Config) -> None:
    store = cfg["service"]["pipelines"]["traces/store"]
    store["receivers"] = ["otlp"]
    cfg["service"]["pipelines"]["traces/in"]["exporters"].remove("forward/traces")
    del cfg["connectors"]["forward/traces"]


def _no_delta(cfg: Config) -> None:
    cfg["service"]["pipelines"]["metrics/derived"]["processors"] = []


def _default_count_metrics(cfg: Config) -> None:
    del cfg["connectors"]["count/otelstream_traces"]["spans"]


def _metric_name_collision(cfg: Config) -> None:
    spanevents = cfg["connectors"]["count/otelstream_traces"]["spanevents"]
    spanevents["otelstream.custom.events"] = spanevents.pop("otelstream.derived.span_events.custom")


def _duplicate_metric(cfg: Config) -> None:
    logs = cfg["connectors"]["count/otelstream_logs"]["logs"]
    logs["otelstream.derived.span_events.custom"] = logs.pop("otelstream.derived.log_records.custom")


def _unknown_top_level(cfg: Config) -> None:
    cfg["procesors"] = {}


def _custom_no_longer_counted(cfg: Config) -> None:
    del cfg["connectors"]["count/otelstream_logs"]["logs"]["otelstream.derived.log_records.custom"]
    mutate_connector(cfg, "count/otelstream_logs", '"otelstream.custom"', '"otelstream.updates"')


BROKEN: list[tuple[str, Callable[[Config], None], Check, str]] = [
    ("undefined exporter", _undefined_exporter, check_references_defined, "otlp_grpc/zipkin"),
    ("unused processor", _unused_processor, check_all_defined_used, "transform/unused"),
    ("connector with no receiver pipeline", _connector_dead_end, check_connectors, "signal_to_metrics/progress"),
    ("forward from traces into logs", _forward_across_signals, check_connectors, "forward/traces"),
    ("type outside the pinned list", _unpinned_type, check_pinned_types, "prometheus_remote_write"),
    ("deprecated exporter name", _deprecated_exporter, check_no_deprecated, "otlp/tempo"),
    ("deprecated processor name", _deprecated_processor, check_no_deprecated, "deltatocumulative"),
    ("batch processor", _batch_processor, check_no_deprecated, "batch"),
    ("exporter without batching", _exporter_without_batching, check_exporter_batching, "otlp_http/loki"),
    ("listener on all interfaces", _wildcard_listener, check_endpoints, "0.0.0.0"),
    ("remote default endpoint", _remote_default, check_endpoints, "tempo.example.com"),
    ("env var without default", _env_without_default, check_env_refs, "TEMPO_OTLP_GRPC_ENDPOINT"),
    ("unknown span event name", _unknown_event_name, check_ottl_names, "otelstream.progress"),
    ("unknown log event name", _unknown_log_event_name, check_ottl_names, "otelstream.run_end"),
    ("unknown attribute", _unknown_attribute, check_ottl_names, "otelstream.payload_size"),
    ("unknown operation value", _unknown_operation, check_ottl_names, "invoke_task"),
    ("name pattern matching no event", _unknown_name_pattern, check_ottl_names, "IsMatch"),
    ("unknown metric dimension", _unknown_dimension, check_metric_attribute_keys, "otelstream.graph_name"),
    ("payload key outside progress signals", _wrong_progress_key, check_progress_parsing, "'done'"),
    ("guard rejecting progress payloads", _guard_rejects_progress, check_progress_parsing, "rejects"),
    ("undocumented OTTL function", _undocumented_function, check_ottl_functions_documented, "replace_pattern"),
    ("filter before counting", _filter_before_count, check_derivation_sees_raw_data, "traces/in"),
    ("filter on unforwarded data", _filter_without_forward, check_count_before_filter, "otlp"),
    ("delta sums straight to Prometheus", _no_delta, check_delta_before_prometheus, "metrics/derived"),
    ("count connector default metrics", _default_count_metrics, check_count_sections, "'spans'"),
    ("metric named like otelstream's own", _metric_name_collision, check_metric_names, "otelstream.custom.events"),
    ("metric defined twice", _duplicate_metric, check_metric_names, "more than once"),
    ("misspelt top-level key", _unknown_top_level, check_top_level, "procesors"),
    ("custom log records no longer counted", _custom_no_longer_counted, check_requirements, "custom log records"),
]


@pytest.mark.parametrize(
    ("mutate", "check", "expected"), [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN]
)
def test_check_catches_broken_config(
    mutate: Callable[[Config], None], check: Check, expected: str, config: Config
) -> None:
    broken = copy.deepcopy(config)
    mutate(broken)
    problems = check(broken)
    assert problems, f"{check.__name__} found nothing wrong"
    assert any(expected in problem for problem in problems), problems


def test_every_check_has_a_broken_case() -> None:
    assert {case[2] for case in BROKEN} == set(STRUCTURE_CHECKS)
