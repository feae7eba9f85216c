"""The Prometheus rules in dashboards/alerts: promtool checks and unit tests, and the metrics contract.

``promtool`` (Debian package ``prometheus``) must be installed: without it these tests fail, never
skip. Metric and label names are checked against the metrics table of ``docs/telemetry.md``, parsed
here, so renaming a metric there breaks these tests until the rules follow. The helpers at the top
are shared with ``tests/test_dashboards.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ALERTS_DIR = ROOT / "dashboards" / "alerts"
TELEMETRY_DOC = ROOT / "docs" / "telemetry.md"
RULE_FILES = sorted(ALERTS_DIR.glob("*.rules.yml"))
EXAMPLE_RULE_FILES = sorted(ALERTS_DIR.glob("*.example.yml"))
TEST_FILES = sorted(ALERTS_DIR.glob("*.test.yml"))

APT_INSTALL = "apt-get update && apt-get install -y --no-install-recommends prometheus prometheus-alertmanager"
PROMTOOL_TIMEOUT_S = 60.0

SEVERITIES = frozenset({"critical", "warning", "info"})
# labels every scraped or remote-written series may carry, and the histogram bucket label
TARGET_LABELS = frozenset({"job", "instance", "le"})

# GenAI client metrics (OpenTelemetry GenAI semantic conventions) in Prometheus spelling; otelstream
# records them once its ``messages`` stream mode lands. Labels: the conventions' attributes.
_GENAI_COMMON = frozenset(
    {
        "gen_ai_operation_name",
        "gen_ai_provider_name",
        "gen_ai_request_model",
        "gen_ai_response_model",
        "server_address",
        "server_port",
    }
)


@dataclasses.dataclass(frozen=True)
class Metric:
    """One metric of the contract: its Prometheus name, type and labels."""

    name: str
    type: str
    labels: frozenset[str]

    def series_names(self) -> Iterator[str]:
        """Yield the names its series have in Prometheus (a histogram's ``_bucket``/``_sum``/``_count``)."""
        if self.type == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                yield self.name + suffix
        else:
            yield self.name


GENAI_METRICS = (
    Metric("gen_ai_client_token_usage", "histogram", _GENAI_COMMON | {"gen_ai_token_type"}),
    Metric("gen_ai_client_operation_time_to_first_chunk_seconds", "histogram", _GENAI_COMMON | {"error_type"}),
    Metric("gen_ai_client_operation_duration_seconds", "histogram", _GENAI_COMMON | {"error_type"}),
)


# --- promtool --------------------------------------------------------------------------------------


@functools.cache
def promtool() -> str:
    """Return promtool's path, or fail the test with how to install it."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            f"promtool is not installed: the dashboards and alert-rule tests need it. Install it with `{APT_INSTALL}` "
            "(as root; Debian/Ubuntu), or put a promtool 2.42+ binary on PATH.",
            pytrace=False,
        )
    return path


def run_promtool(*args: str, cwd: Path = ALERTS_DIR) -> subprocess.CompletedProcess[str]:
    """Run promtool with ``args``; return the finished process."""
    return subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=PROMTOOL_TIMEOUT_S, check=False
    )


def assert_promql_parses(expressions: Mapping[str, str]) -> None:
    """Assert every PromQL expression parses, by running ``promtool check rules`` on them as recording rules."""
    assert expressions, "no expressions to check"
    names = {f"expr_{i}": where for i, where in enumerate(expressions)}
    rules = [{"record": name, "expr": expressions[where]} for name, where in names.items()]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "expressions.rules.yml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "expressions", "rules": rules}]}), encoding="utf-8")
        done = run_promtool("check", "rules", str(path), cwd=Path(tmp))
    legend = "\n".join(f"  {name}: {where}: {expressions[where]}" for name, where in names.items())
    assert done.returncode == 0, f"promtool check rules failed:\n{done.stdout}{done.stderr}\nexpressions:\n{legend}"


# --- the metrics contract (docs/telemetry.md) ------------------------------------------------------


@functools.cache
def documented_metrics() -> tuple[Metric, ...]:
    """Parse the metrics table of docs/telemetry.md ("## Metrics": OTel name, Prometheus name, type, labels)."""
    text = TELEMETRY_DOC.read_text(encoding="utf-8")
    match = re.search(r"^## Metrics\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, "docs/telemetry.md has no '## Metrics' section"
    metrics = []
    for line in match.group(1).splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[1].startswith("`"):
            continue
        name = cells[1].strip("`")
        kind = cells[2].split()[0]
        labels = frozenset(re.findall(r"`([^`]+)`", cells[3]))
        metrics.append(Metric(name, "histogram" if kind == "histogram" else kind, labels))
    assert len(metrics) >= 10, f"could not read the metrics table of docs/telemetry.md (found {metrics})"
    return tuple(metrics)


def known_series() -> dict[str, frozenset[str]]:
    """Return every series name the dashboards and rules may use, with the labels it carries."""
    known: dict[str, frozenset[str]] = {}
    for metric in (*documented_metrics(), *GENAI_METRICS):
        for series in metric.series_names():
            known[series] = metric.labels
    return known


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"' + r"|'(?:[^'\\]|\\.)*'" + r"|`[^`]*`")
_TOKEN = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*|\d[\w.]*|\S")
_LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile"}
)
_KEYWORDS = frozenset(
    {"and", "or", "unless", "offset", "bool", "atan2", "inf", "nan", *_LABEL_LIST_KEYWORDS, *_AGGREGATIONS}
)


def promql_names(expr: str) -> tuple[set[str], set[str]]:
    """Return the metric names and the label names a PromQL expression uses."""
    tokens = _TOKEN.findall(_STRING.sub('""', expr))
    metrics: set[str] = set()
    labels: set[str] = set()
    depth_braces = 0
    in_range = False
    label_list = False
    for i, token in enumerate(tokens):
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        if token == "{":
            depth_braces += 1
        elif token == "}":
            depth_braces -= 1
        elif token == "[":
            in_range = True
        elif token == "]":
            in_range = False
        elif token == ")":
            label_list = False
        elif in_range or not re.match(r"[A-Za-z_:]", token):
            continue
        elif depth_braces or label_list:
            labels.add(token)
        elif token in _LABEL_LIST_KEYWORDS and following == "(":
            label_list = True
        elif following == "(" or token in _KEYWORDS:
            continue
        else:
            metrics.add(token)
    return metrics, labels


def contract_problems(expr: str, extra: Mapping[str, frozenset[str]] | None = None) -> list[str]:
    """Return what in ``expr`` is not in the metrics contract: unknown metrics, and labels no metric it uses has."""
    known = {**known_series(), **(extra or {})}
    metrics, labels = promql_names(expr)
    problems = [f"metric {name} is neither in docs/telemetry.md nor a GenAI metric" for name in metrics - set(known)]
    allowed = set(TARGET_LABELS).union(*(known.get(name, frozenset()) for name in metrics))
    problems += [f"label {label} belongs to none of {sorted(metrics)}" for label in labels - allowed]
    return problems


# --- the rule files --------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    """Return the parsed YAML file."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules(paths: Iterable[Path] = RULE_FILES) -> list[dict[str, Any]]:
    """Return every rule of the rule files, in order."""
    return [rule for path in paths for group in load_yaml(path)["groups"] for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    """Return the alerting rules."""
    return [rule for rule in rules() if "alert" in rule]


def recorded_series() -> dict[str, frozenset[str]]:
    """Return the series the recording rules write, each with the labels its expression can give it."""
    recorded: dict[str, frozenset[str]] = {}
    for rule in rules([*RULE_FILES, *EXAMPLE_RULE_FILES]):
        if "record" not in rule:
            continue
        known = {**known_series(), **recorded}
        metrics, _ = promql_names(rule["expr"])
        labels = set(TARGET_LABELS).union(*(known.get(name, frozenset()) for name in metrics))
        recorded[rule["record"]] = frozenset(labels | set(rule.get("labels", {})))
    return recorded


def test_rule_files_exist() -> None:
    assert [path.name for path in RULE_FILES] == ["otelstream.rules.yml"]
    assert EXAMPLE_RULE_FILES, "the per-graph deadline example is missing"
    assert TEST_FILES, "no promtool unit tests (dashboards/alerts/*.test.yml)"


def test_promtool_check_rules() -> None:
    done = run_promtool("check", "rules", *(path.name for path in [*RULE_FILES, *EXAMPLE_RULE_FILES]))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_unit_tests() -> None:
    done = run_promtool("test", "rules", *(path.name for path in TEST_FILES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_unit_tests_load_the_shipped_rule_files() -> None:
    for path in TEST_FILES:
        loaded = set(load_yaml(path)["rule_files"])
        assert {p.name for p in RULE_FILES} <= loaded, f"{path.name} does not test every rule file"


def test_every_alert_has_for_severity_and_annotations() -> None:
    found = alerts()
    assert len(found) >= 7
    names = [rule["alert"] for rule in found]
    assert len(names) == len(set(names)), "duplicate alert names"
    for rule in found:
        assert re.fullmatch(r"Otelstream[A-Za-z]+", rule["alert"]), rule["alert"]
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), f"{rule['alert']}: no `for:`"
        assert rule.get("labels", {}).get("severity") in SEVERITIES, f"{rule['alert']}: severity"
        annotations = rule.get("annotations", {})
        assert {"summary", "description"} <= set(annotations), f"{rule['alert']}: summary and description"
        if "absent(" not in rule["expr"]:  # an absent() alert has no labels to name
            assert "{{" in annotations["summary"], f"{rule['alert']}: the summary should name what fired"


def test_recording_rules_follow_the_naming_convention() -> None:
    for rule in rules([*RULE_FILES, *EXAMPLE_RULE_FILES]):
        if "record" in rule:
            assert rule["record"].count(":") >= 1, f"recording rule {rule['record']} is not level:metric:operation"


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for path in TEST_FILES:
        for case in load_yaml(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names - firing == set(), "alerts never tested firing"
    assert names - silent == set(), "alerts never tested not firing"
    assert (firing | silent) - names == set(), "tests of alerts that do not exist"


def test_rules_use_only_documented_metrics_and_labels() -> None:
    recorded = recorded_series()
    problems = []
    for rule in rules([*RULE_FILES, *EXAMPLE_RULE_FILES]):
        name = rule.get("alert") or rule.get("record")
        problems += [f"{name}: {problem}" for problem in contract_problems(rule["expr"], recorded)]
        problems += [
            f"{name}: annotation uses label {label}, which its expression cannot have"
            for text in rule.get("annotations", {}).values()
            for label in re.findall(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)", text)
            if label not in set(TARGET_LABELS).union(*(recorded | known_series()).values())
        ]
    assert problems == []


def test_stall_rule_is_the_documented_expression() -> None:
    # docs/telemetry.md: "no progress for N minutes" is time() - last_signal > N*60, for every active run
    recorded = {rule["record"]: rule["expr"] for rule in rules() if "record" in rule}
    (stalled,) = [rule for rule in alerts() if rule["alert"] == "OtelstreamRunStalled"]
    metric, _, threshold = stalled["expr"].partition(" > ")
    assert re.match(r"\s*time\(\) - max by \([^)]*\) \(otelstream_run_progress_last_signal_seconds\)", recorded[metric])
    assert float(threshold) == 600


def test_slow_run_rule_explains_its_projection() -> None:
    (slow,) = [rule for rule in alerts() if rule["alert"] == "OtelstreamRunTooSlow"]
    description = slow["annotations"]["description"]
    for piece in ("otelstream_run_started_at_seconds", "done / e", "e * (total - done) / done", "e * total / done"):
        assert piece in description


def test_contract_check_catches_renames() -> None:
    # the checker itself: an unknown metric, an unknown label, and a GenAI metric's own labels
    assert contract_problems("rate(otelstream_runs_begun_total[5m])")
    assert contract_problems('sum by (graph) (rate(otelstream_runs_started_total{otelstream_graph="a"}[5m]))')
    assert contract_problems("sum by (otelstream_node) (otelstream_runs_active)")
    assert not contract_problems(
        "histogram_quantile(0.95, sum by (le, gen_ai_request_model) "
        "(rate(gen_ai_client_operation_time_to_first_chunk_seconds_bucket[5m])))"
    )
    assert promql_names('sum by (a, b) (rate(m_total{c="x", d=~"y"}[5m] offset 1h)) / on (e) group_left () n') == (
        {"m_total", "n"},
        {"a", "b", "c", "d", "e"},
    )
