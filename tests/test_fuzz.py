"""Bounded coverage-guided fuzzing of replay's decoder with atheris, in its own process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEEDS = [
    b'{"$t":"tuple","v":[1,{"$t":"set","v":[2]}]}',
    b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"eventName":"otelstream.custom","attributes":'
    b'[{"key":"otelstream.run_id","value":{"stringValue":"r"}},{"key":"otelstream.seq","value":{"intValue":"0"}},'
    b'{"key":"otelstream.payload","value":{"stringValue":"{\\"$t\\":\\"exc\\",\\"type\\":\\"builtins:ValueError\\",\\"args\\":[1]}"}}]}]}]}]}',
]


def test_atheris_finds_no_crash_in_20000_inputs(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, seed in enumerate(SEEDS):
        (corpus / f"seed{i}").write_bytes(seed)
    done = subprocess.run(
        [sys.executable, "-m", "tests.fuzz_decoder", "-runs=20000", "-max_total_time=60", "-seed=1", str(corpus)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Done 20000 runs" in done.stderr or "max_total_time" in done.stderr, done.stderr[-2000:]
