#!/usr/bin/env bash
# Runs the LangGraph instrumentor's tests on the oldest and on the newest LangGraph that the
# `langgraph` extra allows (langgraph>=1.0,<1.3), each in a throwaway venv with otelstream
# installed from this checkout (not editable: the tests import the built package).
#
#   scripts/langgraph-range.sh            # both ends of the range
#   scripts/langgraph-range.sh oldest     # or: newest
#
# Needs the package index. Exits non-zero if any end fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
python=${PYTHON:-python3}
ends=("$@")
[ ${#ends[@]} -gt 0 ] || ends=(oldest newest)

tests=(tests/test_langgraph_differential.py tests/test_langgraph_control.py tests/test_langgraph_telemetry.py
  tests/test_langgraph_instrumentor.py tests/test_langgraph_replay.py)
# what those tests import besides otelstream and LangGraph
test_deps=(pytest pytest-asyncio pytest-timeout hypothesis "pydantic>=2.7,<3" opentelemetry-distro)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
summary=()
for end in "${ends[@]}"; do
  case $end in
    # langgraph 1.0.0 accepts a newer langgraph-prebuilt that needs a newer langgraph: pin the
    # companions it was released with
    oldest) pin="langgraph==1.0.0 langgraph-prebuilt==1.0.0 langgraph-checkpoint==2.1.2"
      # LangGraph 1.0's prebuilt module warns about its own deprecations when imported
      warnings=(-W "ignore::DeprecationWarning") ;;
    newest) pin="langgraph>=1.0,<1.3"; warnings=() ;;
    *) echo "unknown end of the range: $end (oldest or newest)" >&2; exit 2 ;;
  esac
  venv=$work/$end
  started=$SECONDS
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  # shellcheck disable=SC2086 # the pins are words
  "$venv/bin/python" -m pip install --quiet "$root[langgraph,langchain]" $pin "${test_deps[@]}"
  version=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("langgraph"))')
  echo "=== langgraph $version ($end): installed in $((SECONDS - started)) s; testing"
  if (cd "$root" && env -u PYTHONPATH "$venv/bin/python" -m pytest -q -p no:cacheprovider "${warnings[@]}" "${tests[@]}"); then
    summary+=("langgraph $version ($end): passed")
  else
    summary+=("langgraph $version ($end): FAILED")
    status=1
  fi
done
printf '%s\n' "${summary[@]}"
exit $status
