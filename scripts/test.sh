#!/usr/bin/env bash
# Runs every check CI runs: formatting, lint, types, tests. Sets itself up on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev]"
.venv/bin/ruff format --check .
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/lint-imports --no-cache
scripts/e2e-setup.sh
scripts/system-deps.sh
# the lowest and newest OpenTelemetry SDK, the oldest and newest LangGraph the extras allow
scripts/sdk-range.sh
scripts/langgraph-range.sh
.venv/bin/pytest "$@"
