"""The typed schema of a vipcast config file.

Every model is frozen and forbids unknown keys, so a typo in YAML is an error that names the key.
Numbers are strict (YAML's `true` is not 1, "0.1" is not 0.1; an integer is accepted where a float
is expected) and finite (`.inf` and `.nan` are refused). Secrets (API keys, database passwords)
never live here: they come from the environment.
"""

from __future__ import annotations

import functools
import re
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, field_validator, model_validator

# The longest horizon: 100 years (dates past it overflow; no data span that far).
MAX_HORIZON_DAYS = 36_500
# The shortest LightGBM label window (models.pipeline.MIN_LABEL_WINDOW_DAYS; a test keeps them equal).
MIN_LABEL_WINDOW_DAYS = 28


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class ColumnMapping(Strict):
    """Names of the source columns that hold each field of the transactions contract."""

    customer_id: str = "customer_id"
    order_ts: str = "order_ts"
    amount: str = "amount"
    order_id: str | None = None
    category: str | None = None
    quantity: str | None = None

    @field_validator("*")
    @classmethod
    def _named(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("an empty column name: name the source column (optional fields: leave the key out)")
        return value

    @model_validator(mode="after")
    def _one_column_per_field(self) -> ColumnMapping:
        # Source headers match in any letter case, so `Amount` and `amount` are one column too.
        fields: dict[str, list[str]] = {}
        for field, column in self.model_dump().items():
            if column is not None:  # headers match trimmed and in any letter case: so does this check
                fields.setdefault(column.strip().casefold(), []).append(field)
        shared = [names for names in fields.values() if len(names) > 1]
        if shared:
            *first, last = shared[0]
            raise ValueError(f"{', '.join(first)} and {last} name the same source column {getattr(self, last)!r}: "
                             "each field needs a column of its own")
        return self


class SourceConfig(Strict):
    columns: ColumnMapping = ColumnMapping()
    date_format: str | None = Field(
        default=None, description="strptime format for string dates, e.g. '%Y%m%d'; None parses ISO dates"
    )
    table: str | None = Field(default=None, description="table name when the source is a database URL")
    max_invalid_share: StrictFloat = Field(
        default=0.01,
        ge=0,
        le=1,
        description="share of rows with an unparseable date or amount above which the column is an error, not bad rows",
    )


class FeaturesConfig(Strict):
    time_unit: Literal["days", "weeks"] = "days"
    windows_days: tuple[StrictInt, ...] = (30, 90, 180, 365)

    @model_validator(mode="after")
    def _windows(self) -> "FeaturesConfig":
        if not self.windows_days or any(days <= 0 for days in self.windows_days):
            raise ValueError(f"windows_days must be one or more positive numbers of days, got {list(self.windows_days)}")
        if len(set(self.windows_days)) != len(self.windows_days):
            raise ValueError(f"windows_days has repeated values: {list(self.windows_days)}")
        return self


class LightGBMConfig(Strict):
    """LightGBM settings; a key left unset (None) keeps the model's own default (models/pipeline.py)."""

    n_estimators: StrictInt | None = Field(default=None, ge=1)
    learning_rate: StrictFloat | None = Field(default=None, gt=0)
    num_leaves: StrictInt | None = Field(default=None, ge=2)
    min_child_samples: StrictInt | None = Field(default=None, ge=1)
    sample_customers: StrictInt | None = Field(default=500_000, ge=1000, description="cap on training customers")
    seed: StrictInt | None = None


class ModelConfig(Strict):
    horizon_days: StrictInt = Field(default=365, ge=7, le=MAX_HORIZON_DAYS)
    btyd: Literal["bgnbd", "pareto", "mbgnbd"] = "bgnbd"
    penalizer: StrictFloat = Field(
        default=0.0, ge=0, description="L2 penalty of the purchase model (BG/NBD, Pareto/NBD, MBG/NBD); 0 reproduces the papers"
    )
    gamma_gamma_penalizer: StrictFloat = Field(
        default=0.0,
        ge=0,
        description="L2 penalty of the Gamma-Gamma spend model; it pulls q towards 0 (q <= 1: no finite mean), so keep it 0 "
        "unless Gamma-Gamma does not converge",
    )
    discount_rate_annual: StrictFloat = Field(default=0.10, ge=0, lt=1)
    label_window_days: StrictInt | None = Field(
        default=None,
        ge=MIN_LABEL_WINDOW_DAYS,
        description="label window for the LightGBM training split; None = min(max(horizon, 28), history/2)",
    )
    lightgbm: LightGBMConfig = LightGBMConfig()


class TierThresholds(Strict):
    mode: Literal["absolute", "share"] = "absolute"
    silver: StrictFloat = Field(default=2000, gt=0)
    gold: StrictFloat = Field(default=5000, gt=0)
    platinum: StrictFloat = Field(default=10000, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> "TierThresholds":
        got = f"got silver={self.silver:g}, gold={self.gold:g}, platinum={self.platinum:g}"
        if self.mode == "absolute" and not (self.silver < self.gold < self.platinum):
            raise ValueError(f"absolute tier thresholds must satisfy silver < gold < platinum, {got}")
        if self.mode == "share":
            if not (0 < self.platinum < self.gold < self.silver < 1):
                raise ValueError(
                    f"share tier thresholds must satisfy 0 < platinum < gold < silver < 1 (top shares), {got}"
                    " (a threshold the config does not set keeps its absolute default: set all three)"
                )
        return self


class TierBenefits(Strict):
    """What one tier's benefits cost: a discount on spend, shipping per order, a yearly gift."""

    discount_rate: StrictFloat = Field(default=0.0, ge=0, lt=1)
    # Money per order / member: bounded so costs stay finite (1e308 per order gave inf in CSV, null in JSON).
    shipping_per_order: StrictFloat = Field(default=0.0, ge=0, le=1e9)
    gift_per_member: StrictFloat = Field(default=0.0, ge=0, le=1e9)


TIER_BENEFIT_DEFAULTS = {
    "silver": {"discount_rate": 0.05, "shipping_per_order": 0.0, "gift_per_member": 20.0},
    "gold": {"discount_rate": 0.08, "shipping_per_order": 5.0, "gift_per_member": 50.0},
    "platinum": {"discount_rate": 0.10, "shipping_per_order": 8.0, "gift_per_member": 150.0},
}


class EconomicsConfig(Strict):
    gross_margin: StrictFloat = Field(default=0.35, gt=0, le=1)
    silver: TierBenefits = TierBenefits(**TIER_BENEFIT_DEFAULTS["silver"])
    gold: TierBenefits = TierBenefits(**TIER_BENEFIT_DEFAULTS["gold"])
    platinum: TierBenefits = TierBenefits(**TIER_BENEFIT_DEFAULTS["platinum"])

    @model_validator(mode="before")
    @classmethod
    def _tier_defaults_for_keys_left_out(cls, values):
        # `platinum: {gift_per_member: 300}` set Platinum's discount and shipping to 0 (TierBenefits'
        # own defaults): the programme's cost read ~48k low. A key left out keeps the tier's default.
        if not isinstance(values, dict):
            return values
        filled = dict(values)
        for tier, defaults in TIER_BENEFIT_DEFAULTS.items():
            if isinstance(values.get(tier), dict):
                filled[tier] = {**defaults, **values[tier]}
        return filled


class SegmentsConfig(Strict):
    tiers: TierThresholds = TierThresholds()
    # At most 100 years: a grace end must stay a date pandas can hold (90,000 days failed at scoring).
    grace_days: StrictInt = Field(default=90, ge=0, le=36_500)
    churn_threshold: StrictFloat = Field(default=0.5, gt=0, lt=1)
    near_next_tier_amount: StrictFloat = Field(default=250.0, ge=0)
    near_next_tier_share: StrictFloat = Field(default=0.10, ge=0, lt=1)
    vip_share_warning: StrictFloat = Field(default=0.20, gt=0, le=1)
    rising_star_min_p_alive: StrictFloat = Field(default=0.3, ge=0, le=1)
    economics: EconomicsConfig = EconomicsConfig()


# Cron nicknames Prefect accepts, as five-field expressions (the check below reads only those).
CRON_NICKNAMES = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
                  "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}


class ScheduleConfig(Strict):
    """When `vipcast serve` runs the flows; checked on load, so any command names a bad value (not only serve)."""

    score_cron: str = "0 6 * * 1"
    train_cron: str = "0 3 1 * *"
    timezone: str = "UTC"

    @field_validator("score_cron", "train_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from datetime import datetime

        from cronsim import CronSim, CronSimError

        expression = CRON_NICKNAMES.get(value.strip().lower(), value)
        fields = expression.split()
        shape = "five fields, minute hour day-of-month month day-of-week, e.g. '0 6 * * 1'"
        if len(fields) != 5:
            # Six fields read as seconds first here (cronsim) but seconds last in Prefect's scheduler:
            # the same text would run on other days than the ones checked.
            raise ValueError(f"not a cron expression: {len(fields)} field(s), expected {shape}")
        # '?' (no specific value) as the whole day-of-month or day-of-week field is '*' to Prefect's scheduler.
        fields = [("*" if field == "?" and position in (2, 4) else field) for position, field in enumerate(fields)]
        try:
            CronSim(" ".join(fields), datetime(2000, 1, 1))
        except CronSimError as error:
            raise ValueError(f"not a cron expression ({error}): {shape}") from None
        # cronsim reads these; Prefect's scheduler refuses them when `vipcast serve` registers the schedule.
        if "W" in fields[2].upper() or "L" in fields[4].upper():
            raise ValueError(
                "Prefect's scheduler reads no 'W' in the day of the month and no 'L' in the day of the week; "
                "'L' alone as the day of the month (the last day) is read"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        # Prefect's scheduler takes the names of zoneinfo.available_timezones() only: ZoneInfo also opened
        # files such as 'right/UTC' or 'posixrules', which `vipcast serve` then failed on.
        if value not in iana_time_zones():
            raise ValueError("not an IANA time zone name, e.g. 'UTC' or 'Europe/Berlin'")
        return value


@functools.cache
def iana_time_zones() -> frozenset[str]:
    from zoneinfo import available_timezones

    return frozenset(available_timezones())


# Names Spark reads as UTC.
UTC_NAMES = {"UTC", "Z", "GMT", "UCT", "ETC/UTC", "ETC/GMT", "ETC/UCT", "UTC+0", "UTC+00:00", "GMT+0", "GMT+00:00", "+00:00"}


class EngineConfig(Strict):
    name: Literal["duckdb", "spark"] = "duckdb"
    spark_master: str = "local[*]"
    spark_conf: dict[str, str] = {}

    @field_validator("spark_conf")
    @classmethod
    def _utc_sessions(cls, value: dict[str, str]) -> dict[str, str]:
        # vipcast's sessions are always UTC (flows.engine.SPARK_FIXED): another zone was ignored
        # while the MLflow run recorded it as if it had applied.
        zone = value.get("spark.sql.session.timeZone")
        if zone is not None and zone.strip().upper() not in UTC_NAMES:
            raise ValueError(f"spark.sql.session.timeZone is always UTC in vipcast (so naive timestamps mean the same "
                             f"instant on both engines), got {zone!r}: remove the key")
        return value


class OutputsConfig(Strict):
    store_url: str | None = Field(default=None, description="SQLAlchemy URL; None = DuckDB file in the workspace")
    export_formats: tuple[Literal["csv", "parquet"], ...] = ("csv",)

    @field_validator("store_url")
    @classmethod
    def _a_url(cls, value: str | None) -> str | None:
        # A typo (`postgresql//host/db`) or a bare name was taken as a DuckDB file path relative to
        # whatever folder the command ran in: the run "succeeded" into a store nobody reads.
        if value is not None and not re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*://", value):
            raise ValueError(
                "must be a database URL such as postgresql://user@host/db or duckdb:///path/outputs.duckdb "
                "(leave the key out for <workdir>/outputs.duckdb)"
            )
        if value is not None:
            check_url_authority(value)
        return value


def check_url_authority(url: str) -> None:
    """Refuse a URL whose user part holds a bare '@' or whose port is not a number: the driver then
    looked up the password's tail as a host (and printed it), or failed with "invalid literal for int()"."""
    rest = url.split("://", 1)[1]
    # As SQLAlchemy reads a URL: the user part ends at the first '@' (a password may hold '/', not '@').
    user = re.match(r"[^:/]*(?::[^@]*)?@", rest)
    host = re.split(r"[/?]", rest[user.end():] if user else rest, maxsplit=1)[0]
    if "@" in host:
        raise ValueError("the user name or password holds '@': write each '@' in them as %40 (a password p@ss as p%40ss)")
    host = host.rpartition("]")[2]  # after an IPv6 address's brackets
    port = host.partition(":")[2]
    if ":" in host and not port.isdigit():  # SQLAlchemy takes one host: 'h1:5432,h2:5433' fails there too
        raise ValueError(f"the port {port!r} is not a number")


class VipcastConfig(Strict):
    dataset: str = Field(default="demo", description="default source when --data is not given")
    as_of: date | None = None

    @field_validator("dataset")
    @classmethod
    def _dataset_is_named(cls, value: str) -> str:
        if not value.strip():  # it was read as the current folder, and every file under it scanned
            raise ValueError("is empty: name a file, folder, glob, database URL#table or built-in dataset")
        return value

    @field_validator("as_of", mode="before")
    @classmethod
    def _as_of_is_a_date(cls, value):
        # pydantic would read a number as seconds since 1970 (`as_of: 0` -> 1970-01-01).
        if isinstance(value, (bool, int, float)):
            raise ValueError(f"as_of must be a date such as 2025-06-30, got {value!r}")
        return value
    source: SourceConfig = SourceConfig()
    features: FeaturesConfig = FeaturesConfig()
    model: ModelConfig = ModelConfig()
    segments: SegmentsConfig = SegmentsConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    engine: EngineConfig = EngineConfig()
    outputs: OutputsConfig = OutputsConfig()
