"""The canonical transactions table every feature reads, after ingest has mapped and validated it.

Columns (Ibis / DuckDB types):
- customer_id: string, never null
- order_ts:    timestamp (date-only sources land at midnight), never null, on or before the as-of date
- amount:      float64 net revenue, never null; zero and negative (refund) rows are legal
- order_id:    string, may be null (absent in the source -> all null)
- category:    string, may be null (absent in the source -> all null)
- quantity:    float64, may be null
"""

from __future__ import annotations

CUSTOMER_ID = "customer_id"
ORDER_TS = "order_ts"
AMOUNT = "amount"
ORDER_ID = "order_id"
CATEGORY = "category"
QUANTITY = "quantity"

REQUIRED_COLUMNS = (CUSTOMER_ID, ORDER_TS, AMOUNT)
OPTIONAL_COLUMNS = (ORDER_ID, CATEGORY, QUANTITY)
