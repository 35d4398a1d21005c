"""Everything that touches files, databases, Prefect, MLflow and config: ingest, flows, the CLI."""

import os

# Prefect's server reports usage to Prefect unless told not to; offline (or behind a firewall) it
# logs an ERROR line on every run ("Failed to send telemetry"). Off unless the environment says so,
# set before any module of this package imports Prefect.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Prefect's temporary (ephemeral) server must answer within 20 s by default; on a busy 2-core
# machine (Spark running beside it) it did not, and the run failed with a uvicorn traceback.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")

# A PREFECT_HOME it cannot create is named by flows.orchestration.check_prefect_home in one line;
# Prefect's own warning at import (two lines with a source line) only came first.
import warnings  # noqa: E402

warnings.filterwarnings("ignore", message="Failed to create the Prefect home directory", category=UserWarning)
