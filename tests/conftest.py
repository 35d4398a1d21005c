"""Fixtures shared across the suite."""

from __future__ import annotations

import time

import pytest

# One local Spark session serves every Spark test: Spark keeps one session per process, so the
# first one created decides the master, the Python workers and the config for all the others.
TEST_SPARK_CONF = {
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.memory": "1g",
}


@pytest.fixture(scope="session")
def spark_backend(tmp_path_factory):
    """An Ibis backend on a local[2] Spark session built by vipcast's own engine code.

    Tables the tests create go to a warehouse folder of this test session: in the default
    ./spark-warehouse they would outlive the session, and the next session's catalog (a new one,
    in memory) would refuse to create a table over the old table's folder.
    """
    from flows.engine import connect

    started = time.perf_counter()
    conf = {**TEST_SPARK_CONF, "spark.sql.warehouse.dir": str(tmp_path_factory.mktemp("spark-warehouse"))}
    backend = connect("spark", "local[2]", conf)
    print(f"\nSpark session started in {time.perf_counter() - started:.1f} s")
    return backend
