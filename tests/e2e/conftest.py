"""Real servers for the end-to-end tests, started on 127.0.0.1 by the test suite itself.

- Arize Phoenix (``phoenix serve``): a trace backend; otelstream's replay reads it back through
  its REST API. One per test session (it takes ~8 s to start).
- rotel (``rotel-agent start``): a real OTLP collector between the application and Phoenix
  (app --OTLP/HTTP--> rotel --OTLP/gRPC--> Phoenix). One per test; a test may SIGKILL it and
  start it again on the same ports.

Both live in ``.venv-e2e``, which ``scripts/e2e-setup.sh`` builds. Without it every e2e test
fails (never skips) with a message naming that script. Every process started here is stopped
in teardown, by its PID, whatever the outcome of the test.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TypeVar

import pytest
from opentelemetry import _logs, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider

import otelstream

REPO = Path(__file__).resolve().parents[2]
E2E_BIN = REPO / ".venv-e2e" / "bin"
SETUP_SCRIPT = "scripts/e2e-setup.sh"
LOOPBACK = "127.0.0.1"

PHOENIX_START_TIMEOUT_S = 90.0
COLLECTOR_START_TIMEOUT_S = 15.0
STOP_GRACE_S = 10.0
INGEST_TIMEOUT_S = 30.0
POLL_INTERVAL_S = 0.25

T = TypeVar("T")


def e2e_binary(name: str) -> Path:
    """Return ``.venv-e2e/bin/<name>``, or fail the test with how to get it."""
    path = E2E_BIN / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"{path} is missing: the end-to-end tests need Phoenix and rotel in .venv-e2e; "
            f"run {SETUP_SCRIPT} first (scripts/test.sh does)",
            pytrace=False,
        )
    return path


def free_port() -> int:
    """Return a TCP port nothing listens on, on the loopback and on the wildcard address."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((LOOPBACK, 0))
            port = int(probe.getsockname()[1])
        # Phoenix binds its gRPC port on [::] whatever PHOENIX_HOST says: that must be free too
        # (the bind only checks; nothing is sent)
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as wide:
                wide.bind(("::", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                continue
            # no IPv6 here: the loopback check is all there is
        return port
    raise RuntimeError("no free TCP port found")


def server_env(**extra: str) -> dict[str, str]:
    """The environment for a server process: ours without OTel, proxy or server settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.upper().startswith(("OTEL_", "OTELSTREAM_", "PHOENIX_", "ROTEL_"))
        and not key.lower().endswith("_proxy")
    }
    env["NO_PROXY"] = env["no_proxy"] = f"{LOOPBACK},localhost"
    env.update(extra)
    return env


class Process:
    """One server process: output to a log file, stopped by PID."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self._popen: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The PID of the running process, if one was started."""
        return self._popen.pid if self._popen is not None else None

    def start(self) -> None:
        """Start the process (it must not be running)."""
        assert self._popen is None, f"{self.name} is already running"
        self._log = self.log_path.open("ab")
        self._popen = subprocess.Popen(
            self.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.log_path.parent,
        )

    def running(self) -> bool:
        """Whether the process was started and has not exited."""
        return self._popen is not None and self._popen.poll() is None

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``grace_s``; idempotent."""
        popen = self._popen
        if popen is not None:
            if popen.poll() is None:
                popen.send_signal(signal.SIGTERM)
                try:
                    popen.wait(grace_s)
                except subprocess.TimeoutExpired:
                    popen.kill()
                    popen.wait(grace_s)
        self._forget()

    def kill(self) -> None:
        """SIGKILL the process and reap it: a crash, with no chance to flush anything."""
        popen = self._popen
        if popen is not None:
            if popen.poll() is None:
                popen.kill()
            popen.wait(STOP_GRACE_S)
        self._forget()

    def _forget(self) -> None:
        self._popen = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 40) -> str:
        """The end of the process's output, for failure messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        """Fail if the process died."""
        if self._popen is not None and self._popen.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with code {self._popen.returncode}; its output ends with:\n{self.log_tail()}"
            )


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout_s: float,
    what: str,
    process: Process | None = None,
) -> T:
    """Call ``probe`` until it returns something other than None; fail after ``timeout_s``.

    A bounded poll, kept: every probe reads the state of an external process (a server
    becoming ready, a series or an alert appearing), which cannot signal the test.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None:
            process.check_alive()
        result = probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            detail = f"\n{process.name} output ends with:\n{process.log_tail()}" if process is not None else ""
            raise TimeoutError(f"gave up after {timeout_s:.0f} s waiting for {what}{detail}")
        time.sleep(POLL_INTERVAL_S)


def _http_ok(url: str) -> bool | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return True if response.status == 200 else None
    except (urllib.error.URLError, OSError):
        return None


def _listening(port: int) -> bool | None:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1):
            return True
    except OSError:
        return None


# --- Phoenix --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Phoenix:
    """A running Phoenix server."""

    url: str
    grpc_port: int
    process: Process


@pytest.fixture(scope="session")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phoenix]:
    """Start ``phoenix serve`` on loopback ports, with its storage in a temporary directory."""
    binary = e2e_binary("phoenix")
    workdir = tmp_path_factory.mktemp("phoenix")
    http_port, grpc_port = free_port(), free_port()
    env = server_env(
        PHOENIX_HOST=LOOPBACK,
        PHOENIX_PORT=str(http_port),
        PHOENIX_GRPC_PORT=str(grpc_port),
        PHOENIX_WORKING_DIR=str(workdir),
        PHOENIX_TELEMETRY_ENABLED="false",
        PHOENIX_ALLOW_EXTERNAL_RESOURCES="false",
        PHOENIX_DISABLE_AGENT_ASSISTANT="true",
        PHOENIX_ENABLE_MCP_SERVER="false",
    )
    process = Process("phoenix", [str(binary), "serve"], env, workdir / "phoenix.log")
    url = f"http://{LOOPBACK}:{http_port}"
    try:
        process.start()
        wait_until(
            lambda: _http_ok(f"{url}/healthz"),
            timeout_s=PHOENIX_START_TIMEOUT_S,
            what=f"Phoenix at {url}/healthz",
            process=process,
        )
        wait_until(lambda: _listening(grpc_port), timeout_s=15, what="Phoenix's gRPC port", process=process)
        yield Phoenix(url, grpc_port, process)
    finally:
        process.stop()


# --- rotel ----------------------------------------------------------------------------------


class Collector:
    """A rotel agent receiving OTLP on loopback ports and exporting OTLP/gRPC to Phoenix."""

    def __init__(self, binary: Path, phoenix: Phoenix, workdir: Path) -> None:
        self.http_port = free_port()
        self.grpc_port = free_port()
        argv = [
            str(binary),
            "start",
            "--otlp-http-endpoint",
            f"{LOOPBACK}:{self.http_port}",
            "--otlp-grpc-endpoint",
            f"{LOOPBACK}:{self.grpc_port}",
            "--exporter",
            "otlp",
            "--otlp-exporter-endpoint",
            f"http://{LOOPBACK}:{phoenix.grpc_port}",
            "--otlp-exporter-protocol",
            "grpc",
            "--pid-file",
            str(workdir / "rotel.pid"),
            "--log-file",
            str(workdir / "rotel-daemon.log"),
        ]
        self.process = Process("rotel-agent", argv, server_env(), workdir / "rotel.log")

    @property
    def http_endpoint(self) -> str:
        """The base URL to give ``OTEL_EXPORTER_OTLP_ENDPOINT`` (OTLP/HTTP)."""
        return f"http://{LOOPBACK}:{self.http_port}"

    def start(self) -> None:
        """Start the agent and wait until both receivers accept connections."""
        self.process.start()
        for port in (self.http_port, self.grpc_port):
            wait_until(
                functools.partial(_listening, port),
                timeout_s=COLLECTOR_START_TIMEOUT_S,
                what=f"rotel-agent to listen on {LOOPBACK}:{port}",
                process=self.process,
            )

    def kill(self) -> None:
        """SIGKILL the agent: whatever it holds is lost, and its ports stop answering."""
        self.process.kill()

    def restart(self) -> None:
        """Start the agent again on the same ports."""
        self.start()

    def stop(self) -> None:
        """SIGTERM the agent (SIGKILL after a bound)."""
        self.process.stop()


@pytest.fixture
def collector(phoenix: Phoenix, tmp_path: Path) -> Iterator[Collector]:
    """Start a rotel agent in front of Phoenix; stopped after the test."""
    agent = Collector(e2e_binary("rotel-agent"), phoenix, tmp_path)
    try:
        agent.start()
        yield agent
    finally:
        agent.stop()


# --- the application side -------------------------------------------------------------------


@pytest.fixture
def project() -> str:
    """A Phoenix project of the test's own, so what a test reads back is exactly what it sent."""
    return f"e2e-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def otlp_app(monkeypatch: pytest.MonkeyPatch, collector: Collector, project: str) -> Iterator[None]:
    """Point otelstream's OTLP export at the collector, into ``project``; reset afterwards.

    The variables are the standard ``OTEL_*`` ones, read when otelstream builds its private
    providers (on the first run after ``configure``). A test may set more (a sampler) before
    calling ``otelstream.configure``; this fixture only resets otelstream at the end.
    """
    if isinstance(trace.get_tracer_provider(), TracerProvider) or isinstance(
        _logs.get_logger_provider(), LoggerProvider
    ):
        pytest.fail("a global SDK provider is installed in this process: otelstream would export through it")
    for key in list(os.environ):
        if key.upper().startswith(("OTEL_", "OTELSTREAM_")) and key != "OTELSTREAM_RAISE_INTERNAL":
            monkeypatch.delenv(key)
        elif key.lower().endswith("_proxy"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("NO_PROXY", f"{LOOPBACK},localhost")
    monkeypatch.setenv("no_proxy", f"{LOOPBACK},localhost")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.http_endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", f"openinference.project.name={project}")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "otelstream-e2e")
    # export finished spans every 200 ms instead of every 5 s: the tests wait less
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
    try:
        yield
    finally:
        otelstream.shutdown()
        otelstream.configure()


def wait_for_complete_run(phoenix: Phoenix, project: str, run_id: str) -> otelstream.RunSummary:
    """Poll Phoenix until every chunk ``run_id`` emitted (per its run-end record) is stored."""

    def probe() -> otelstream.RunSummary | None:
        try:
            listed = otelstream.runs(phoenix.url, project=project)
        except otelstream.ReplaySourceError:
            return None  # the project does not exist until its first span is stored
        for run in listed:
            if run.run_id == run_id and run.event_count is not None and run.received == run.event_count:
                return run
        return None

    return wait_until(probe, timeout_s=INGEST_TIMEOUT_S, what=f"run {run_id} in Phoenix project {project}")
