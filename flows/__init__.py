"""Everything that touches files, databases, Prefect, MLflow and config: ingest, flows, the CLI."""

import os

# Prefect's server reports usage to Prefect unless told not to; offline (or behind a firewall) it
# logs an ERROR line on every run ("Failed to send telemetry"). Off unless the environment says so,
# set before any module of this package imports Prefect.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
