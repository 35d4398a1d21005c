"""Batch scoring on Spark: the registered scoring model applied with `mlflow.pyfunc.spark_udf`.

The features are built where the data is (Ibis on the PySpark backend), each executor scores its
partitions with the same pyfunc model the DuckDB path uses, and the scores are written as Parquet
partitioned by as-of date. Nothing per-customer is collected on the driver.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from flows.tracking import PREDICTION_COLUMNS

FEATURES_VIEW = "vipcast_scoring_features"
# The struct the UDF returns: the pyfunc model's output columns, in order.
PREDICTION_SCHEMA = "customer_id string, " + ", ".join(f"{name} double" for name in PREDICTION_COLUMNS)


def features_frame(backend, transactions, as_of: dt.date, *, time_unit: str, windows_days: Sequence[int]):
    """Per-customer features as of `as_of`, as a Spark DataFrame (computed on the cluster)."""
    from features.build import customer_features
    from flows.engine import active_spark_session

    features = customer_features(transactions, as_of, time_unit=time_unit, windows_days=tuple(windows_days))
    backend.create_view(FEATURES_VIEW, features, overwrite=True)
    return active_spark_session().table(FEATURES_VIEW)


def scoring_udf(model_uri: str, env_manager: str = "local"):
    """The registered pyfunc model as a Spark UDF returning the prediction struct.

    `env_manager="local"`: executors use the Python environment vipcast runs in (install vipcast on
    the cluster's nodes); "virtualenv" or "conda" rebuild the model's logged environment instead.
    """
    from flows import tracking
    from flows.engine import active_spark_session

    return tracking.spark_udf(active_spark_session(), model_uri, PREDICTION_SCHEMA, env_manager)


def score_frame(features, model_uri: str, env_manager: str = "local"):
    """One row of predictions per customer of a Spark features DataFrame: `customer_id` and PREDICTION_COLUMNS."""
    from pyspark.sql import functions as F

    predict = scoring_udf(model_uri, env_manager)
    # A struct keeps the column names, so the model gets the same frame as on DuckDB.
    inputs = F.struct(*[F.col(f"`{name}`") for name in features.columns])
    return features.select(predict(inputs).alias("prediction")).select("prediction.*")


def write_scores(scores, out_dir: str | Path, as_of: dt.date) -> str:
    """Write scores under `out_dir/as_of=YYYY-MM-DD/`; re-scoring a date replaces only that date's partition."""
    from pyspark.sql import functions as F

    target = str(out_dir)
    (
        scores.withColumn("as_of", F.lit(as_of.isoformat()))
        .write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy("as_of")
        .parquet(target)
    )
    return target


def score_on_spark(backend, transactions, as_of: dt.date, model_uri: str, model, out_dir: str | Path) -> str:
    """Features on Spark, spark_udf scoring with the registered model, Parquet partitioned by as-of date.

    `model` is the unwrapped scoring model (for its feature spec: `time_unit`, `windows_days`);
    `model_uri` is the same model in the registry (e.g. `models:/vipcast-shop@champion`).
    """
    features = features_frame(backend, transactions, as_of, time_unit=model.time_unit, windows_days=model.windows_days)
    return write_scores(score_frame(features, model_uri), out_dir, as_of)
