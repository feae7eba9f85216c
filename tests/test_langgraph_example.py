"""``examples/langgraph_app.py``: a plain LangGraph agent, instrumented, replayable from its file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from langchain_core.messages import AIMessageChunk

import otelstream

ROOT = Path(__file__).resolve().parent.parent


def test_the_example_streams_and_its_file_replays_the_run(tmp_path: Path) -> None:
    telemetry = tmp_path / "langgraph.otlp.jsonl"
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "langgraph_app.py"), "--telemetry", str(telemetry)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": ""},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:3] == [
        "[updates] agent",
        "[updates] tools",
        "The weather report says Oslo is sunny at 21 degrees. Enjoy your day!",
    ]
    assert "[progress] report section 3/3" in lines
    run_id = lines[-1].rsplit(" ", 1)[-1]
    replayed = otelstream.replay(str(telemetry), run_id=run_id)
    assert replayed.complete
    chunks = list(replayed)
    assert [mode for mode, _ in chunks].count("custom") == 3
    # LangChain is loaded here, so the messages decode back to its classes
    tokens = [chunk[0] for mode, chunk in chunks if mode == "messages" and isinstance(chunk[0], AIMessageChunk)]
    assert "Oslo is sunny" in "".join(str(t.content) for t in tokens)
