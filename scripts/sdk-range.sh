#!/usr/bin/env bash
# Runs the SDK-internals and export tests on the lowest and on the newest OpenTelemetry releases
# that pyproject.toml allows (opentelemetry-*>=1.45,<2), each in a throwaway venv with otelstream
# installed from this checkout (not editable: the tests import the built package).
#
#   scripts/sdk-range.sh                 # both ends of the range
#   scripts/sdk-range.sh lowest          # or: newest
#   PYTHON=python3.12 scripts/sdk-range.sh
#
# Needs network access to the package index. Exits non-zero if any end fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
python=${PYTHON:-python3}
ends=("$@")
[ ${#ends[@]} -gt 0 ] || ends=(lowest newest)

tests=(
  tests/test_sdk_internals.py
  tests/test_suppression.py
  tests/test_environment.py
  tests/test_export.py
  tests/test_otlp_wire.py
  tests/test_otlp_export.py
  tests/test_providers.py
)
# what those tests import besides otelstream; opentelemetry-distro for `opentelemetry-instrument`
test_deps=(pytest pytest-asyncio pytest-timeout)

# The lowest release of each OpenTelemetry package the declared range allows, and the contrib
# release line made for it (contrib pins the API and SDK it was built with).
lowest=(
  opentelemetry-api==1.45.0
  opentelemetry-sdk==1.45.0
  opentelemetry-proto==1.45.0
  opentelemetry-exporter-otlp==1.45.0
  opentelemetry-exporter-otlp-proto-common==1.45.0
  opentelemetry-exporter-otlp-proto-http==1.45.0
  opentelemetry-exporter-otlp-proto-grpc==1.45.0
  opentelemetry-semantic-conventions==0.66b0
  opentelemetry-instrumentation==0.66b0
  opentelemetry-distro==0.66b0
)
# The newest releases within the range (a contrib specifier with a beta lets pip pick betas).
newest=(
  "opentelemetry-api>=1.45,<2"
  "opentelemetry-sdk>=1.45,<2"
  "opentelemetry-exporter-otlp>=1.45,<2"
  "opentelemetry-instrumentation>=0.66b0"
  "opentelemetry-distro>=0.66b0"
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
summary=()

for end in "${ends[@]}"; do
  case $end in
    lowest) pins=("${lowest[@]}") ;;
    newest) pins=("${newest[@]}") ;;
    *) echo "unknown end of the range: $end (lowest or newest)" >&2; exit 2 ;;
  esac
  venv=$work/$end
  echo "=== $end: creating $venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  printf '%s\n' "${pins[@]}" >"$work/$end-constraints.txt"
  # constraints pin what otelstream's own requirements resolve to; the pins are installed too
  "$venv/bin/python" -m pip install --quiet --upgrade --upgrade-strategy eager \
    -c "$work/$end-constraints.txt" "${pins[@]}" "$root[openai]" "${test_deps[@]}"
  versions=$("$venv/bin/python" -m pip list --format=freeze 2>/dev/null \
    | grep -E '^opentelemetry-(api|sdk|exporter-otlp-proto-(common|http)|instrumentation|distro)==' | tr '\n' ' ')
  echo "=== $end: $versions"
  echo "=== $end: testing $(cd "$work" && env -u PYTHONPATH "$venv/bin/python" -c 'import otelstream; print(otelstream.__file__)')"
  # from a folder outside the checkout's src/, with no PYTHONPATH: the installed otelstream is tested
  if (cd "$root" && env -u PYTHONPATH "$venv/bin/python" -m pytest -q -p no:cacheprovider "${tests[@]}"); then
    summary+=("$end: passed ($versions)")
  else
    summary+=("$end: FAILED ($versions)")
    status=1
  fi
done

printf '%s\n' "${summary[@]}"
exit $status
