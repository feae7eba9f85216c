"""Build otelstream's Grafana dashboards as code and write them as committed JSON.

Usage (from the repository root, with the ``dev`` extra installed)::

    python dashboards/build.py          # (re)write dashboards/*.json
    python dashboards/build.py --check  # exit 1 if the committed JSON differs from the builder's

The dashboards are built with ``grafana-foundation-sdk`` pinned to its Grafana 11.6 line
(``1769699379!11.6.0``, classic dashboard JSON, ``schemaVersion`` 41), one module per dashboard
(``runs``, ``llm``, ``explore``) over the shared builders in ``_panels`` and ``_links``. Metric names
and labels are the contract in ``docs/telemetry.md`` ("Metrics"); the GenAI panels use the
OpenTelemetry GenAI client metrics. Datasources are template variables (``prometheus``, ``tempo``,
``loki``) whose defaults are the uids ``dashboards/provisioning/datasources.yaml`` provisions.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent

if not __package__:
    # run as a script, Python puts dashboards/ itself on sys.path: add the repository root so that
    # the dashboard modules import as the dashboards package, as they do under pytest
    sys.path.insert(0, str(HERE.parent))

from grafana_foundation_sdk.builders import dashboard as db  # noqa: E402
from grafana_foundation_sdk.cog.encoder import JSONEncoder  # noqa: E402

from dashboards import explore, llm, runs  # noqa: E402

BUILDERS: dict[str, Callable[[], db.Dashboard]] = {
    "otelstream-runs.json": runs.dashboard,
    "otelstream-llm.json": llm.dashboard,
    "otelstream-explore.json": explore.dashboard,
}
"""File name in ``dashboards/`` -> the function building that dashboard."""

INTERVAL_ONLY_KEYS = ("auto", "auto_count", "auto_min")
"""Keys the SDK writes on every variable but only interval variables have (Grafana's schema rejects them)."""


def to_json(dashboard: db.Dashboard) -> str:
    """Return the dashboard's JSON text: sorted keys, two-space indent, final newline."""
    model = json.loads(JSONEncoder().encode(dashboard.build()))
    for variable in model.get("templating", {}).get("list", []):
        if variable.get("type") != "interval":
            for key in INTERVAL_ONLY_KEYS:
                variable.pop(key, None)
    return json.dumps(model, sort_keys=True, indent=2) + "\n"


def render() -> dict[str, str]:
    """Return each dashboard file's name and JSON text, as written to ``dashboards/``."""
    return {name: to_json(build()) for name, build in BUILDERS.items()}


def main(argv: list[str] | None = None) -> int:
    """Write the dashboards, or with ``--check`` report the ones whose committed JSON is stale."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed dashboard differs")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = HERE / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(HERE.parent)}")
    if stale:
        print(
            f"stale dashboards (run python dashboards/build.py and commit): {', '.join(stale)}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
