"""Config loading: built-ins, overlays, strict keys (configs/loader.py)."""

from __future__ import annotations

import pytest

from configs import ConfigError, load_config


def test_builtin_configs_load():
    assert load_config().model.horizon_days == 365
    cdnow = load_config("cdnow")
    assert cdnow.dataset == "cdnow" and cdnow.segments.tiers.mode == "share"
    assert cdnow.model.horizon_days == 273


def test_a_folder_or_file_named_like_a_builtin_config(tmp_path, monkeypatch):
    """`mkdir demo && vipcast demo`: "demo: cannot read the config file (Is a directory)"."""
    from configs.loader import BuiltinConfig

    monkeypatch.chdir(tmp_path)
    (tmp_path / "cdnow").mkdir()
    assert load_config("cdnow").model.horizon_days == 273  # a folder is no config: the built-in
    (tmp_path / "demo").write_text("model: {horizon_days: 99}\n")
    assert load_config("demo").model.horizon_days == 99  # --config demo names the file here
    assert load_config(BuiltinConfig("demo")).dataset == "demo"  # implied by built-in --data: the built-in
    assert load_config(BuiltinConfig("demo")).model.horizon_days == 365
    # A flow's parameters are text: the built-in goes to Prefect as its file in the package (with --prefect
    # a file `cdnow` here was read as the config again, the note saying the built-in was used).
    from flows.deployments import absolute_config

    (tmp_path / "cdnow").rmdir()
    (tmp_path / "cdnow").write_text("model: {horizon_days: 99}\n")
    handed = absolute_config(BuiltinConfig("cdnow"))
    assert handed.endswith("cdnow.yaml") and load_config(handed).model.horizon_days == 273


def test_overlay_file_and_overrides_merge_deeply(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("segments:\n  grace_days: 30\n  tiers: {gold: 6000}\n")
    config = load_config(path, overrides={"model": {"horizon_days": 90}})
    assert config.segments.grace_days == 30
    assert config.segments.tiers.gold == 6000 and config.segments.tiers.silver == 2000
    assert config.model.horizon_days == 90


def test_a_bad_command_line_value_is_named_as_such_not_as_the_files(tmp_path):
    """`--engine sparkk` read "configs/base.yaml: engine.name: Input should be ..."."""
    path = tmp_path / "mine.yaml"
    path.write_text("segments:\n  grace_days: -1\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path, overrides={"engine": {"name": "sparkk"}})
    assert str(raised.value) == (
        f"{path}: segments.grace_days: Input should be greater than or equal to 0 (got -1); "
        "command line: engine.name: Input should be 'duckdb' or 'spark' (got 'sparkk')"
    )


def test_unknown_key_is_an_error_naming_it(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("segments:\n  grace_dayz: 30\n")
    with pytest.raises(ConfigError, match=r"segments.grace_dayz: Extra inputs are not permitted"):
        load_config(path)


def test_tier_thresholds_must_be_ordered():
    with pytest.raises(ConfigError, match="silver < gold < platinum"):
        load_config(overrides={"segments": {"tiers": {"silver": 6000}}})


@pytest.mark.parametrize(
    "windows, message",
    [([30, 30], r"windows_days has repeated values: \[30, 30\]"), ([0, 90], "positive"), ([], "one or more")],
)
def test_feature_windows_must_be_distinct_positive_days(windows, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides={"features": {"windows_days": windows}})


def test_missing_file_lists_the_builtins():
    with pytest.raises(ConfigError, match="built-in configs: base, demo, cdnow"):
        load_config("nope.yaml")


def test_config_is_frozen():
    config = load_config()
    with pytest.raises(Exception):
        config.model.horizon_days = 3


def test_purchase_and_spend_penalizers_are_separate_keys(tmp_path):
    assert load_config().model.gamma_gamma_penalizer == 0.0
    path = tmp_path / "pen.yaml"
    path.write_text("model: {penalizer: 0.1}\n")
    config = load_config(path)
    assert config.model.penalizer == 0.1 and config.model.gamma_gamma_penalizer == 0.0


def test_every_builtin_config_is_valid():
    for name in ("base", "demo", "cdnow"):
        load_config(name)


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("model: {horizon_days: true}\n", r"model.horizon_days: Input should be a valid integer \(got True\)"),
        ("model: {horizon_days: 90.0}\n", r"model.horizon_days: Input should be a valid integer \(got 90.0\)"),
        ("model: {penalizer: yes}\n", r"model.penalizer: Input should be a valid number \(got True\)"),
        ("model: {penalizer: '0.1'}\n", r"model.penalizer: Input should be a valid number \(got '0.1'\)"),
        ("segments: {grace_days: false}\n", r"segments.grace_days: Input should be a valid integer"),
        ("features: {windows_days: [30, true]}\n", r"features.windows_days.1: Input should be a valid integer"),
        ("as_of: 0\n", "as_of must be a date such as 2025-06-30, got 0"),
    ],
)
def test_booleans_strings_and_numbers_are_not_coerced(tmp_path, yaml_text, message):
    path = tmp_path / "typed.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_integers_are_still_accepted_where_numbers_are_expected():
    config = load_config(overrides={"model": {"penalizer": 1}, "segments": {"tiers": {"silver": 1000, "gold": 3000, "platinum": 9000}}})
    assert config.model.penalizer == 1.0 and config.segments.tiers.platinum == 9000.0


@pytest.mark.parametrize("value", [".inf", ".nan", "-.inf"])
def test_tier_thresholds_must_be_finite(tmp_path, value):
    """platinum: .inf used to pass (silver < gold < inf) and made Platinum unreachable."""
    path = tmp_path / "tiers.yaml"
    path.write_text(f"segments:\n  tiers: {{platinum: {value}}}\n")
    with pytest.raises(ConfigError, match="segments.tiers.platinum: Input should be a finite number"):
        load_config(path)


def test_a_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("dataset: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=f"^{path}: not UTF-8 text \\(byte 0xe9 on line 1\\)"):
        load_config(path)


@pytest.mark.parametrize(
    ("yaml_text", "where"),
    [("model:\n  penalizer: 0.1\n   btyd: pareto\n", "line 3, column 8"), ("model: {horizon_days: 30\nx: [1\n", "line 2, column 2")],
)
def test_invalid_yaml_is_one_line_naming_file_line_and_column(tmp_path, yaml_text, where):
    path = tmp_path / "broken.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{path}, {where}: not valid YAML: ")


def test_label_window_minimum_is_the_models():
    from configs.schema import MIN_LABEL_WINDOW_DAYS
    from models.pipeline import MIN_LABEL_WINDOW_DAYS as MODELS_MINIMUM

    assert MIN_LABEL_WINDOW_DAYS == MODELS_MINIMUM
    with pytest.raises(ConfigError, match=r"model.label_window_days: Input should be greater than or equal to 28 \(got 20\)"):
        load_config(overrides={"model": {"label_window_days": 20}})


def test_grace_days_beyond_100_years_is_a_config_error(tmp_path):
    """90,000 days passed the config and failed at scoring ('Out of bounds nanosecond timestamp')."""
    path = tmp_path / "grace.yaml"
    path.write_text("segments: {grace_days: 90000}\n")
    with pytest.raises(ConfigError, match="segments.grace_days: Input should be less than or equal to 36500"):
        load_config(path)
    assert load_config(overrides={"segments": {"grace_days": 36_500}}).segments.grace_days == 36_500


def test_share_mode_error_shows_the_thresholds_it_got(tmp_path):
    """Only `mode: share` set: the absolute defaults stay, and the message now says so."""
    path = tmp_path / "share.yaml"
    path.write_text("segments: {tiers: {mode: share}}\n")
    with pytest.raises(ConfigError, match=r"got silver=2000, gold=5000, platinum=10000 \(a threshold the config does not set"):
        load_config(path)


def assert_config_error(tmp_path, yaml_text: str, message: str) -> None:
    """Loading a file of `yaml_text` fails with a ConfigError matching `message`."""
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text + "\n")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_cron_nicknames_and_names_prefect_reads_are_accepted(tmp_path):
    path = tmp_path / "schedule.yaml"
    path.write_text('schedule: {score_cron: "@daily", train_cron: "0 6 * * MON", timezone: Europe/Berlin}\n')
    assert load_config(path).schedule.score_cron == "@daily"


@pytest.mark.parametrize(
    "cron", ["0 6 * * 1", "0 6 L * *", "0 6 * * 1#2", "*/15 6 * JAN-MAR MON-FRI", "@weekly", "0 6 ? * 1", "0 6 15 * ?"]
)
def test_every_cron_the_config_accepts_prefect_schedules_on_the_same_days(cron):
    """The config's check (cronsim) and Prefect's scheduler (croniter) agree on the next run times."""
    from datetime import datetime

    from cronsim import CronSim
    from prefect._vendor.croniter import croniter  # what Prefect's CronSchedule computes run times with
    from prefect.client.schemas.schedules import CronSchedule

    from configs.schema import CRON_NICKNAMES

    config = load_config(overrides={"schedule": {"score_cron": cron}})
    CronSchedule(cron=config.schedule.score_cron)  # the schedule object serve registers accepts it
    start = datetime(2025, 1, 1)
    checked = CronSim(CRON_NICKNAMES.get(cron, cron).replace("?", "*"), start)  # '?' is Quartz's "any" day
    scheduled = croniter(config.schedule.score_cron, start)
    assert [scheduled.get_next(datetime) for _ in range(6)] == [next(checked) for _ in range(6)]


def test_a_key_written_twice_is_an_error_naming_it_and_its_lines(tmp_path):
    """PyYAML keeps the last of two equal keys: a second `model:` block silently dropped horizon_days 90."""
    path = tmp_path / "twice.yaml"
    path.write_text("model:\n  horizon_days: 90\nsegments:\n  grace_days: 30\nmodel:\n  btyd: bgnbd\n")
    with pytest.raises(ConfigError, match=r"line 5, column 1: not valid YAML: the key 'model' is written twice \(lines 1 and 5\)"):
        load_config(path)
    path.write_text("segments:\n  tiers: {silver: 100, silver: 200, gold: 300, platinum: 400}\n")
    with pytest.raises(ConfigError, match=r"the key 'silver' is written twice \(line 2\)"):
        load_config(path)


def test_yaml_merge_keys_may_be_overridden_without_a_duplicate_error(tmp_path):
    path = tmp_path / "merge.yaml"
    path.write_text("segments: &s {grace_days: 30}\nmodel:\n  horizon_days: 90\n")
    assert load_config(path).segments.grace_days == 30
    from configs.loader import _read_yaml

    assert _read_yaml("a: &x {b: 1}\nc:\n  <<: *x\n  b: 2\n", "x") == {"a": {"b": 1}, "c": {"b": 2}}


@pytest.mark.parametrize("field", ["customer_id", "order_id"])
def test_an_empty_column_name_is_a_config_error(tmp_path, field):
    """`order_id: ""` was an internal error (IbisTypeError: Column '' is not found), exit 1."""
    path = tmp_path / "columns.yaml"
    path.write_text(f'source:\n  columns: {{{field}: " "}}\n')
    with pytest.raises(ConfigError, match=rf"source.columns.{field}: an empty column name"):
        load_config(path)


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        # Amounts were read as customer ids: 4 orders became 3 "customers" 10, 20 and 30, exit 0.
        ("source:\n  columns: {customer_id: amount}\n",
         r"source.columns: customer_id and amount name the same source column 'amount'"),
        ("source:\n  columns: {customer_id: 'amount '}\n",  # ... and trimmed: ids became the amounts, exit 0
         r"source.columns: customer_id and amount name the same source column 'amount'"),
        ("source:\n  columns: {order_id: Amount, category: AMOUNT}\n",  # headers match in any letter case
         r"source.columns: amount, order_id and category name the same source column 'AMOUNT'"),
        # Schedules are checked on load, not only by serve.
        ('schedule: {score_cron: "61 6 * * 1"}', r"schedule.score_cron: not a cron expression \(Bad minute\)"),
        ('schedule: {train_cron: "0 3 1 *"}', r"schedule.train_cron: not a cron expression: 4 field\(s\), expected five"),
        ("schedule: {timezone: Mars/Olympus}", r"schedule.timezone: not an IANA time zone name"),
        # An empty dataset was read as the current folder: every file under it scanned, or one used in silence.
        ('dataset: ""', r"dataset: is empty: name a file"),
        ("dataset: '  '", r"dataset: is empty: name a file"),
        # ZoneInfo opens these files; Prefect's scheduler refused them when serve registered the deployment.
        ("schedule: {timezone: right/UTC}", r"schedule.timezone: not an IANA time zone name"),
        ("schedule: {timezone: posixrules}", r"schedule.timezone: not an IANA time zone name"),
        # Six fields: seconds first for cronsim ("Mondays 06:00"), seconds last for Prefect ("the 6th at 00:00:01").
        ('schedule: {score_cron: "0 0 6 * * 1"}', r"schedule.score_cron: not a cron expression: 6 field\(s\)"),
        # cronsim reads these, Prefect's scheduler refuses them when serve registers the deployment.
        ('schedule: {score_cron: "0 6 * * 5L"}', r"schedule.score_cron: Prefect's scheduler reads no 'W' .* no 'L' in the day of the week"),
        ('schedule: {train_cron: "0 6 LW * *"}', r"schedule.train_cron: Prefect's scheduler reads no 'W' in the day of the month"),
        # A typo in the URL became a DuckDB file ./postgresql/localhost/shop under the current folder.
        ('outputs: {store_url: "postgresql//localhost/shop"}', r"outputs.store_url: must be a database URL"),
        ("outputs: {store_url: outputs.duckdb}", r"outputs.store_url: must be a database URL"),
        # A bare '@' in the password: the driver looked up the password's tail as the host, and printed it.
        ('outputs: {store_url: "postgresql://admin:pa@ssW0RD@127.0.0.1:5433/vip"}', r"outputs.store_url: the user name or "
         r"password holds '@': write each '@' in them as %40"),
        ('outputs: {store_url: "postgresql://admin:pw@127.0.0.1:notaport/vip"}', r"outputs.store_url: the port 'notaport' is not a number"),
        # PyYAML's own "month must be in 1..12" named neither the file nor the key.
        ("as_of: 2025-13-01", r"as_of: Input should be a valid date .*month value is outside expected range"),
        ("as_of: 2025-02-30", r"as_of: Input should be a valid date .*day value is outside expected range"),
        # YAML 1.1 reads 1e6 (no point, no sign) as text: "Input should be a valid number (got '1e6')".
        ("segments: {tiers: {silver: 2e3}}", r"segments.tiers.silver: .*YAML reads 2e3 as text: write it with a point"),
    ],
)
def test_values_that_cannot_mean_what_they_say_are_named(tmp_path, yaml_text, message):
    assert_config_error(tmp_path, yaml_text, message)


def test_store_urls_and_dates_that_are_right_still_load(tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text("as_of: 2024-02-29\nsource:\n  table: 2025-13-01\noutputs: {store_url: 'duckdb:///x/outputs.duckdb'}\n")
    config = load_config(path)
    assert (str(config.as_of), config.source.table, config.outputs.store_url) == (
        "2024-02-29", "2025-13-01", "duckdb:///x/outputs.duckdb")


def test_a_spark_session_time_zone_other_than_utc_is_refused(tmp_path):
    """It was overridden to UTC without a word, while MLflow recorded the zone as if it had applied."""
    assert_config_error(tmp_path, "engine: {spark_conf: {spark.sql.session.timeZone: America/New_York}}",
                        r"engine.spark_conf: spark.sql.session.timeZone is always UTC in vipcast")
    path = tmp_path / "utc.yaml"
    for zone in ("UTC", "GMT", "Etc/UTC", "+00:00"):
        path.write_text(f"engine: {{spark_conf: {{spark.sql.session.timeZone: '{zone}'}}}}\n")
        assert load_config(path).engine.spark_conf == {"spark.sql.session.timeZone": zone}


def test_one_benefit_of_a_tier_overrides_only_that_benefit(tmp_path):
    """`platinum: {gift_per_member: 300}` zeroed Platinum's discount and shipping: costs read ~48k low."""
    from configs.schema import EconomicsConfig

    path = tmp_path / "gift.yaml"
    path.write_text("segments:\n  economics:\n    platinum: {gift_per_member: 300}\n")
    platinum = load_config(path).segments.economics.platinum
    assert (platinum.discount_rate, platinum.shipping_per_order, platinum.gift_per_member) == (0.10, 8.0, 300.0)
    # The same without base.yaml underneath (a config built in code).
    assert EconomicsConfig(gold={"shipping_per_order": 0.0}).gold.model_dump() == {
        "discount_rate": 0.08, "shipping_per_order": 0.0, "gift_per_member": 50.0}
    assert EconomicsConfig().model_dump() == load_config().segments.economics.model_dump()  # base.yaml = defaults
