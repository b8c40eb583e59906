"""The Dagster instance for local runs: a project-local ``DAGSTER_HOME`` with SQLite storage.

Production instances (Postgres) are configured by ``docker/dagster.yaml``; this module only makes sure a local
run has a home with telemetry off, and never overwrites a ``dagster.yaml`` someone put there.
"""

from __future__ import annotations

import os
from pathlib import Path

LOCAL_INSTANCE_YAML = """\
# Written by videorft for local runs (SQLite under this folder). Replace it with a copy of
# docker/dagster.yaml to use PostgreSQL instead.
telemetry:
  enabled: false
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 4
"""


def ensure_dagster_home(default: Path) -> Path:
    """Use ``$DAGSTER_HOME`` or ``default``; create it with a local ``dagster.yaml`` if it has none."""
    home = Path(os.environ.get("DAGSTER_HOME") or default).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(LOCAL_INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home
