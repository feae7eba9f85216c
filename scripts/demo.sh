#!/usr/bin/env bash
# The main job: streams an example graph with several modes; telemetry goes to a local
# OTLP-JSON file, or to OTEL_EXPORTER_OTLP_ENDPOINT when that is set.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
exec .venv/bin/otelstream demo "$@"
