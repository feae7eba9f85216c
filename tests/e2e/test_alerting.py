"""A stalled run alerts end to end: app -> Prometheus (scrape, rule) -> Alertmanager -> webhook.

Real components, all on 127.0.0.1 and free ports, each stopped by its PID afterwards:

- the application: a Python process running two graphs at once with
  ``otelstream.configure(prometheus=(host, port))``; run ``run-stuck`` sends two progress signals
  and then none, run ``run-busy`` sends one every 0.2 s; both end after ``RUN_S`` and the process
  stays up, so their per-run series end with the runs, not with the process;
- Prometheus (Debian ``prometheus``) scraping it every second and evaluating the shipped
  ``OtelstreamRunStalled`` rule (dashboards/alerts/otelstream.rules.yml) with its threshold and
  ``for`` scaled from 600 s / 1 m down to 3 s / 2 s;
- Alertmanager (Debian ``prometheus-alertmanager``, gossip off) posting to a webhook served by
  this test process.

The stuck run's alert must arrive firing, the busy run must never alert, and the stuck run's
alert must resolve once the run ends (its gauge series ends, so the rule stops matching).
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import LOOPBACK, Process, free_port, server_env, wait_until
from tests.test_alert_rules import APT_INSTALL, RULE_FILES

RUN_S = 20.0
"""How long both runs last; the stuck run's alert must fire well before and resolve after."""
STALL_THRESHOLD_S = 3
ALERT_TIMEOUT_S = 40.0
START_TIMEOUT_S = 20.0

APP = textwrap.dedent(
    """
    import sys, threading, time
    from typing import TypedDict

    import otelstream
    from otelstream import START, StateGraph, write_progress

    port, run_s = int(sys.argv[1]), float(sys.argv[2])
    otelstream.configure(prometheus=("127.0.0.1", port), service_name="otelstream-alerting-e2e")


    class State(TypedDict):
        n: int


    def worker(stall: bool):
        def work(state):
            deadline = time.monotonic() + run_s
            done = 0
            while time.monotonic() < deadline:
                if not stall or done < 2:
                    done += 1
                    write_progress(done, 10_000, unit="steps")
                time.sleep(0.2)  # kept: paced progress (or a stall) over real time is what the alert sees
            return {"n": done}

        return work


    def run(graph: str, run_id: str, stall: bool) -> None:
        builder = StateGraph(State)
        builder.add_node("work", worker(stall))
        builder.add_edge(START, "work")
        for _ in builder.compile(name=graph).stream({"n": 0}, {"run_id": run_id}):
            pass


    threads = [
        threading.Thread(target=run, args=("stuck", "run-stuck", True)),
        threading.Thread(target=run, args=("busy", "run-busy", False)),
    ]
    for thread in threads:
        thread.start()
    print("runs started", flush=True)
    for thread in threads:
        thread.join()
    print("runs ended", flush=True)
    time.sleep(300)  # stay scrapeable: the runs' series must end with the runs, not with the process
    """
)


def binary(*names: str) -> str:
    """Return the first of ``names`` on PATH, or fail with how to install the Debian packages."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(f"{names[0]} is not installed: install it with `{APT_INSTALL}` (as root)", pytrace=False)


def stall_rules() -> dict[str, Any]:
    """Return the shipped stall rule and its recording rule, with the threshold and `for` scaled down."""
    (path,) = RULE_FILES
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    group = next(g for g in loaded["groups"] if g["name"] == "otelstream-runs")
    by_name = {rule.get("alert") or rule.get("record"): rule for rule in group["rules"]}
    recording = by_name["otelstream:run_seconds_since_progress"]
    alert = dict(by_name["OtelstreamRunStalled"])
    assert alert["expr"].strip() == "otelstream:run_seconds_since_progress > 600", "the rule changed: update this test"
    alert["expr"] = f"otelstream:run_seconds_since_progress > {STALL_THRESHOLD_S}"
    alert["for"] = "2s"
    return {"groups": [{"name": "otelstream-runs", "rules": [recording, alert]}]}


class Webhook:
    """An HTTP server in this process collecting Alertmanager's webhook posts."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with hook._lock:
                    hook.posts.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.url = f"http://{LOOPBACK}:{self._server.server_address[1]}/alert"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def alerts(self, status: str) -> list[dict[str, Any]]:
        """Return every alert received with ``status`` (firing or resolved)."""
        with self._lock:
            return [alert for post in self.posts for alert in post["alerts"] if alert["status"] == status]

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def http_ok(url: str) -> bool | None:
    """Return True if ``url`` answers 200, else None."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return True if response.status == 200 else None
    except OSError:
        return None


def prometheus_query(base: str, query: str) -> list[dict[str, Any]]:
    """Return the result of an instant PromQL query."""
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=5) as response:
        result: list[dict[str, Any]] = json.loads(response.read())["data"]["result"]
    return result


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    try:
        yield hook
    finally:
        hook.close()


def test_stalled_run_alert_fires_and_resolves(tmp_path: Path, webhook: Webhook) -> None:
    prometheus_bin = binary("prometheus")
    alertmanager_bin = binary("prometheus-alertmanager", "alertmanager")
    app_port, prom_port, am_port = free_port(), free_port(), free_port()
    prom_url, am_url = f"http://{LOOPBACK}:{prom_port}", f"http://{LOOPBACK}:{am_port}"

    (tmp_path / "rules.yml").write_text(yaml.safe_dump(stall_rules()), encoding="utf-8")
    (tmp_path / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(tmp_path / "rules.yml")],
                "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"{LOOPBACK}:{am_port}"]}]}]},
                "scrape_configs": [
                    {"job_name": "otelstream-app", "static_configs": [{"targets": [f"{LOOPBACK}:{app_port}"]}]}
                ],
            }
        ),
        encoding="utf-8",
    )
    (tmp_path / "alertmanager.yml").write_text(
        yaml.safe_dump(
            {
                "route": {
                    "receiver": "webhook",
                    "group_by": ["alertname", "otelstream_run_id"],
                    "group_wait": "1s",
                    "group_interval": "1s",
                    "repeat_interval": "1h",
                },
                "receivers": [{"name": "webhook", "webhook_configs": [{"url": webhook.url, "send_resolved": True}]}],
            }
        ),
        encoding="utf-8",
    )
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")

    alertmanager = Process(
        "alertmanager",
        [
            alertmanager_bin,
            f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address={LOOPBACK}:{am_port}",
            "--cluster.listen-address=",
        ],
        server_env(),
        tmp_path / "alertmanager.log",
    )
    prometheus = Process(
        "prometheus",
        [
            prometheus_bin,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'prom-data'}",
            f"--web.listen-address={LOOPBACK}:{prom_port}",
            "--rules.alert.resend-delay=1s",
        ],
        server_env(),
        tmp_path / "prometheus.log",
    )
    app = Process(
        "app", [sys.executable, str(tmp_path / "app.py"), str(app_port), str(RUN_S)], server_env(), tmp_path / "app.log"
    )
    try:
        alertmanager.start()
        prometheus.start()
        wait_until(
            lambda: http_ok(f"{am_url}/-/ready"), timeout_s=START_TIMEOUT_S, what="Alertmanager", process=alertmanager
        )
        wait_until(
            lambda: http_ok(f"{prom_url}/-/ready"), timeout_s=START_TIMEOUT_S, what="Prometheus", process=prometheus
        )
        app.start()

        # both runs are scraped under the documented names and labels
        def both_runs() -> list[dict[str, Any]] | None:
            found = prometheus_query(prom_url, "otelstream_run_progress_last_signal_seconds")
            runs = {(s["metric"].get("otelstream_graph"), s["metric"].get("otelstream_run_id")) for s in found}
            return found if {("stuck", "run-stuck"), ("busy", "run-busy")} <= runs else None

        wait_until(both_runs, timeout_s=START_TIMEOUT_S, what="both runs' gauges in Prometheus", process=app)

        firing = wait_until(
            lambda: webhook.alerts("firing") or None,
            timeout_s=ALERT_TIMEOUT_S,
            what="the OtelstreamRunStalled alert at the webhook",
            process=app,
        )
        (alert,) = {json.dumps(a["labels"], sort_keys=True): a for a in firing}.values()
        assert alert["labels"]["alertname"] == "OtelstreamRunStalled"
        assert alert["labels"]["otelstream_run_id"] == "run-stuck"
        assert alert["labels"]["otelstream_graph"] == "stuck"
        assert alert["labels"]["severity"] == "critical"
        assert alert["labels"]["job"] == "otelstream-app"
        assert alert["annotations"]["summary"].startswith("Run run-stuck of graph stuck made no progress for ")

        # the stuck run ends after RUN_S: its series ends, the rule stops matching, the alert resolves
        resolved = wait_until(
            lambda: webhook.alerts("resolved") or None,
            timeout_s=RUN_S + ALERT_TIMEOUT_S,
            what="the resolved notification after the stuck run ended",
            process=app,
        )
        assert {a["labels"]["otelstream_run_id"] for a in resolved} == {"run-stuck"}
        assert "runs ended" in app.log_tail()
        # the busy run never alerted
        every = webhook.alerts("firing") + webhook.alerts("resolved")
        assert {a["labels"]["otelstream_run_id"] for a in every} == {"run-stuck"}
    finally:
        app.stop()
        prometheus.stop()
        alertmanager.stop()
