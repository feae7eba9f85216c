#!/usr/bin/env bash
# Debian packages the tests use: Prometheus, promtool and Alertmanager (alert rules, e2e alerting), and
# chromium with chromium-driver (the gateway's web page in a real browser, tests/e2e/test_serve_browser.py).
# Installed only when missing; apt's policy-rc.d keeps the services from starting.
set -euo pipefail
missing=()
for tool in promtool prometheus prometheus-alertmanager chromium chromedriver; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/system-deps.sh: ${missing[*]} missing; run as root, or: sudo apt-get install prometheus prometheus-alertmanager chromium chromium-driver" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager chromium chromium-driver >/dev/null
fi
