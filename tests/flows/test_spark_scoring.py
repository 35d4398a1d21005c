"""Distributed scoring (flows/spark_scoring.py): spark_udf gives the pyfunc model's scores for every customer."""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pandas as pd
import pytest

from flows.tracking import PREDICTION_COLUMNS

pytestmark = pytest.mark.spark

AS_OF = dt.date(2025, 12, 31)




@pytest.fixture(scope="module")
def registered_model(tmp_path_factory):
    """The real scoring model, fitted on small synthetic data and registered via flows.tracking.log_training."""
    from features.synthetic import generate_transactions
    from flows.tracking import log_training
    from flows.workspace import Workspace
    from models.pipeline import CustomerValueModel

    transactions, _ = generate_transactions(1500, 21)
    table = ibis.duckdb.connect().create_table("transactions", transactions)
    model = CustomerValueModel(horizon_days=180, n_estimators=40, num_threads=1, random_state=3).fit(table, AS_OF)
    workspace = Workspace.resolve(tmp_path_factory.mktemp("ws"))
    logged = log_training(
        workspace, "spark-parity", model, params={"horizon_days": 180}, backtest=None,
        data_info={"as_of": AS_OF.isoformat()}, figures={},
    )
    return model, f"models:/{logged.name}/{logged.version}", transactions


def test_spark_udf_scores_equal_pyfunc_scores_and_land_partitioned_by_date(spark_backend, registered_model, tmp_path):
    import mlflow.pyfunc

    from flows.spark_scoring import features_frame, score_frame, score_on_spark

    model, model_uri, transactions = registered_model
    spark_transactions = spark_backend.create_view("scoring_transactions", ibis.memtable(transactions), overwrite=True)
    features = features_frame(spark_backend, spark_transactions, AS_OF, time_unit=model.time_unit, windows_days=model.windows_days)
    # Several partitions: the UDF scores batches, the answers must not depend on the batching.
    by_udf = score_frame(features.repartition(3), model_uri).toPandas().set_index("customer_id").sort_index()
    expected = (
        mlflow.pyfunc.load_model(model_uri).predict(features.toPandas()).set_index("customer_id").sort_index()
    )
    assert len(by_udf) == len(expected) > 1000
    assert list(by_udf.index) == list(expected.index)
    for column in PREDICTION_COLUMNS:
        np.testing.assert_allclose(by_udf[column], expected[column], rtol=1e-9, atol=1e-9, err_msg=column)
    assert expected["predicted_spend"].std() > 0

    out = score_on_spark(spark_backend, spark_transactions, AS_OF, model_uri, model, tmp_path / "scores")
    assert [p.name for p in (tmp_path / "scores").iterdir() if p.is_dir()] == ["as_of=2025-12-31"]
    written = pd.read_parquet(tmp_path / "scores" / "as_of=2025-12-31").set_index("customer_id").sort_index()
    assert out == str(tmp_path / "scores")
    np.testing.assert_allclose(written["predicted_ltv"], expected["predicted_ltv"], rtol=1e-9, atol=1e-9)
