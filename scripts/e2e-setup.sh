#!/usr/bin/env bash
# Builds .venv-e2e: a venv of its own (its pins stay out of .venv) holding the real servers the
# end-to-end tests in tests/e2e start on 127.0.0.1: Arize Phoenix (a trace backend) and rotel (an
# OTLP collector). Idempotent: returns at once when the pinned versions are installed. Quiet on
# success; on failure pip's output goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-e2e
PINS=(arize-phoenix==20.26.1 rotel==0.0.1a15)
STAMP="$VENV/.e2e-pins"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "${PINS[*]}" ] \
  && [ -x "$VENV/bin/phoenix" ] && [ -x "$VENV/bin/rotel-agent" ]; then
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
# pip's output (including warnings about this machine's pip config) is shown only on failure
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "${PINS[@]}" >"$log" 2>&1; then
  cat "$log" >&2
  echo "e2e-setup: pip install ${PINS[*]} into $VENV failed" >&2
  exit 1
fi

# the rotel wheel ships its binary inside the package, not in bin/: link it where the tests look
agent="$("$VENV/bin/python" -c 'import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), "rotel-agent"))')"
if [ ! -x "$agent" ]; then
  echo "e2e-setup: rotel installed but $agent is missing" >&2
  exit 1
fi
ln -sfn "$(realpath --relative-to="$VENV/bin" "$agent")" "$VENV/bin/rotel-agent"

printf '%s' "${PINS[*]}" >"$STAMP"
