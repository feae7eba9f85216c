"""Coverage-guided fuzzing (atheris) of what replay reads: payloads and OTLP JSON documents.

Run by tests/test_fuzz.py as ``python -m tests.fuzz_decoder -runs=N``; any exception other
than the documented errors is a crash and makes atheris exit non-zero.
"""

from __future__ import annotations

import json
import sys

import atheris

with atheris.instrument_imports():
    import otelstream
    from otelstream.telemetry.codec import DecodeError, decode


def one_input(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    try:
        decode(text)
    except DecodeError:
        pass
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return
    if not isinstance(document, dict):
        return
    try:
        for run in otelstream.runs(document):
            list(otelstream.replay(document, run_id=run.run_id))
    except (otelstream.ReplayError, otelstream.ReplaySourceError):
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
